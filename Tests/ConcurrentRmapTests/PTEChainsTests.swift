import XCTest
@testable import ConcurrentRmap

typealias PTEChainsKernel = Kernel<PTEChainsRmap, RealPlatform>

extension Machine {
    /// The pte_chains machine's kernel.
    var pteChainsKernel: PTEChainsKernel { (core as! PTEChainsMachine).kernel }
}

/// A chain entry as the tests compare them.
struct ChainEntry: Hashable, CustomStringConvertible {
    let mm: UInt32
    let vpn: UInt64
    var description: String { "(\(mm), 0x\(String(vpn, radix: 16)))" }
}

extension Kernel where R == PTEChainsRmap {
    /// Frame `f`'s chain entries (read with every operation paused).
    func chain(_ f: UInt32) -> Set<ChainEntry> {
        var seen = [Bool](repeating: false, count: rmap.pool.capacity + 1)
        let list = rmap.entries(self, f, seen: &seen) { XCTFail("broken chain: \($0)") } ?? []
        return Set(list.map { ChainEntry(mm: PTEChainsRmap.mm(of: $0), vpn: PTEChainsRmap.vpn(of: $0)) })
    }

    func exit(_ mm: UInt32, _ cpu: CPU) throws {
        guard let s = slot(of: mm), exitProcess(slot: s, mm: mm, cpu) else { throw TestFailure("exit of \(mm) failed") }
    }

    /// Whether `f` is still direct (no block).
    func isDirect(_ f: UInt32) -> Bool { rmap.heads[Int(f)].block.load(ordering: .relaxed) == 0 }
}

/// The pte_chains scheme one operation at a time: the chain after fault,
/// fork, COW, mremap, swap-out, migration and exit; the walk visiting
/// exactly the mappings; the blocks' bytes; the planted bugs that need no race.
final class PTEChainsTests: XCTestCase {
    private func config(injection: Injection = .none, sync: ListSync = .rcu) -> MachineConfig {
        MachineConfig.small(maxProcesses: 64, vmaPages: 16, vmasPerProcess: 2, sync: sync,
                            injection: injection, scheme: .pteChains)
    }

    /// A page is direct while mapped once, chained from its second mapping
    /// (a 64-byte block per 7 entries), and each fork adds one entry per
    /// copied PTE; COW moves the writer's entry to the copy; exit takes its
    /// entries off; the last entry gone, the page is unchained.
    func testChainFollowsFaultForkCOWAndExit() throws {
        try withMachine(config()) { m, cpu in
            let k = m.pteChainsKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, b))
            XCTAssertEqual(k.chain(f), [ChainEntry(mm: p, vpn: b)])
            XCTAssertTrue(k.isDirect(f))
            XCTAssertEqual(m.rmapMetadata().bytes, 0, "a direct entry costs no block")
            var children: [UInt32] = []
            for _ in 0..<7 { children.append(try k.forkChild(p, cpu)) }
            XCTAssertFalse(k.isDirect(f))
            XCTAssertEqual(k.chain(f), Set([p] + children).reduce(into: Set<ChainEntry>()) { $0.insert(ChainEntry(mm: $1, vpn: b)) })
            XCTAssertEqual(Int(k.mapcount(f)), 8)
            var meta = m.rmapMetadata()
            XCTAssertEqual(meta.links, 8)
            XCTAssertEqual(meta.maxChain, 8)
            XCTAssertEqual(meta.contexts, 1)
            XCTAssertEqual(meta.bytes, 2 * 64, "8 entries take two blocks of 7")
            assertAuditClean(m)
            // COW in one child: its entry moves to the copy.
            let c0 = children[0]
            XCTAssertEqual(k.fault(c0, vpn: b, write: true, cpu), .ok)
            let n = try XCTUnwrap(k.frame(c0, b))
            XCTAssertNotEqual(n, f)
            XCTAssertEqual(k.chain(n), [ChainEntry(mm: c0, vpn: b)])
            XCTAssertFalse(k.chain(f).contains(ChainEntry(mm: c0, vpn: b)))
            XCTAssertEqual(k.chain(f).count, 7)
            meta = m.rmapMetadata()
            XCTAssertEqual(meta.bytes, 64, "7 entries fit one block again")
            assertAuditClean(m)
            for c in children { try k.exit(c, cpu) }
            XCTAssertEqual(k.chain(f), [ChainEntry(mm: p, vpn: b)])
            XCTAssertFalse(k.isDirect(f), "a chained page stays chained until its last entry goes")
            try k.exit(p, cpu)
            XCTAssertEqual(m.rmapMetadata(), RmapMetadata())
        }
    }

    /// mremap moves each PTE's entry to the new address (clear, install),
    /// in the mover's chain only.
    func testMremapMovesTheEntries() throws {
        try withMachine(config()) { m, cpu in
            let k = m.pteChainsKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            for v in 0..<4 { XCTAssertEqual(k.fault(p, vpn: b + UInt64(v), write: true, cpu), .ok) }
            let c = try k.forkChild(p, cpu)
            let f = try XCTUnwrap(k.frame(p, b + 2))
            let to = k.unusedStart(c)
            XCTAssertTrue(k.mremap(c, vma: 0, to: to, cpu))
            XCTAssertEqual(k.frame(c, to + 2), f)
            XCTAssertEqual(k.chain(f), [ChainEntry(mm: p, vpn: b + 2), ChainEntry(mm: c, vpn: to + 2)])
            assertAuditClean(m)
            try k.exit(c, cpu)
            try k.exit(p, cpu)
        }
    }

    /// The walk visits exactly the mappings: as many objects as the
    /// mapcount, each a PTE of the page. Migration moves every entry to
    /// the new page; swap-out empties the chains and swap-in refills them.
    func testWalkVisitsExactlyTheMappings() throws {
        try withMachine(config()) { m, cpu in
            let k = m.pteChainsKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            var mms = [p]
            for _ in 0..<9 { mms.append(try k.forkChild(p, cpu)) }
            let f = try XCTUnwrap(k.frame(p, b))
            XCTAssertTrue(k.tryLockPage(f))
            let stats = k.rmapWalk(f, trylock: false, cpu) { _, _, i in k.pte(at: i).mappedFrame == f }
            k.unlockPage(f)
            XCTAssertEqual(stats.visited, 10)
            XCTAssertEqual(stats.found, 10)
            XCTAssertEqual(stats.trylockFailed, 0)
            let before = k.chain(f)
            let t = try XCTUnwrap(k.migrate(frame: f, cpu))
            XCTAssertEqual(k.chain(t), before)
            for mm in mms { XCTAssertEqual(k.frame(mm, b), t) }
            assertAuditClean(m)
            XCTAssertGreaterThan(k.swapOutAll(cpu), 0)
            XCTAssertEqual(m.rmapMetadata().links, 0, "every page swapped out: no entries")
            assertAuditClean(m)
            XCTAssertEqual(k.fault(mms[3], vpn: b, write: false, cpu), .ok)
            let s = try XCTUnwrap(k.frame(mms[3], b))
            XCTAssertEqual(k.chain(s), [ChainEntry(mm: mms[3], vpn: b)])
            assertAuditClean(m)
            for mm in mms.reversed() { try k.exit(mm, cpu) }
        }
    }

    /// The planted bugs that need no race: the audit, the walk or the
    /// clear that finds no entry names them.
    func testPlantedBugsWithoutARace() throws {
        try withMachine(config(injection: .pteChainsForkNoEntry), expectNoViolations: false) { m, cpu in
            let k = m.pteChainsKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            _ = try k.forkChild(p, cpu)
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
            _ = k.migrate(frame: try XCTUnwrap(k.frame(p, b)), cpu)
            XCTAssertTrue(m.violations.kinds.contains(.incompleteWalk), "\(m.violations.map(\.description))")
        }
        try withMachine(config(injection: .pteChainsZapKeepsEntry), expectNoViolations: false) { m, cpu in
            let k = m.pteChainsKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            try k.exit(c, cpu)
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
        }
        try withMachine(config(injection: .pteChainsCowKeepsOldEntry), expectNoViolations: false) { m, cpu in
            let k = m.pteChainsKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.fault(c, vpn: b, write: true, cpu), .ok)
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
            _ = k.migrate(frame: try XCTUnwrap(k.frame(p, b)), cpu)
            XCTAssertTrue(m.violations.kinds.contains(.groupList), "the walk visits the stale entry")
        }
    }

    /// The catalogue: the scheme's five bugs and the shared ones an RCU-less
    /// walk can meet.
    func testCatalogue() {
        let cat = Injection.catalogue(for: .pteChains)
        XCTAssertEqual(cat.filter { $0.scheme == .pteChains }.count, 5)
        XCTAssertFalse(cat.contains(.rcuReaderStall))
        XCTAssertFalse(cat.contains(.mmFreeNoGrace))
        XCTAssertTrue(cat.contains(.walkNoPageTableLock))
        XCTAssertFalse(Injection.catalogue(for: .anonVma).contains(.pteChainsNoChainLock))
        XCTAssertFalse(SchemeKind.pteChains.hasAnonVMAWalk)
    }
}
