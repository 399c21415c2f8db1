import XCTest
@testable import ConcurrentRmap

/// Shared anonymous memory as pages of shmem inodes: sharing at fork, the
/// i_mmap walk under every scheme, eviction with the last mapping, pool
/// exhaustion, reclaim and refault, and the two planted bugs.
final class ShmemTests: XCTestCase {
    func eachScheme(injection: Injection = .none, shmem: Int = 4, expectNoViolations: Bool = true,
                    _ body: (any FileTestKernel, Machine, CPU) throws -> Void) throws {
        for scheme in SchemeKind.allCases {
            var c = MachineConfig.small(frames: 512, injection: injection, scheme: scheme)
            c.shmemInodes = shmem
            try withMachine(c, expectNoViolations: expectNoViolations) { m, cpu in
                let k: any FileTestKernel
                switch scheme {
                case .anongroup: k = (m.core as! AnonGroupMachine).kernel
                case .anonVma: k = (m.core as! AnonVMAMachine).kernel
                case .anonVMAChain: k = (m.core as! AnonVMAChainMachine).kernel
                case .pteChains: k = (m.core as! PTEChainsMachine).kernel
                case .cowContext: k = (m.core as! COWContextMachine).kernel
                }
                try body(k, m, cpu)
            }
        }
    }

    /// A parent's write to a shared anonymous mapping is seen by its
    /// forked child: one page cache page of the shmem inode, not anonymous;
    /// the walk of that page finds both mms through i_mmap.
    func testForkedChildSeesTheParentsWrite() throws {
        try eachScheme { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapShmem(p, pages: 8, cpu)
            XCTAssertNotEqual(v, 0)
            let ino = VMAFile.inode(k.vmaFile(v))
            XCTAssertTrue(k.files.isShmem(ino))
            XCTAssertTrue(VMAFile.isShared(k.vmaFile(v)))
            XCTAssertEqual(k.files.inode[Int(ino)].size.load(ordering: .relaxed), 8)
            let base = k.vmaStart(v)
            XCTAssertEqual(k.fault(p, vpn: base + 3, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, base + 3))
            XCTAssertFalse(k.isAnon(f), "a shmem page is a page cache page")
            let written = k.content(f)
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.files.inode[Int(ino)].mappings.load(ordering: .relaxed), 2)
            XCTAssertNil(k.frame(c, base + 3), "fork copies no PTE of a shared mapping")
            XCTAssertEqual(k.fault(c, vpn: base + 3, write: false, cpu), .ok)
            XCTAssertEqual(k.frame(c, base + 3), f, "the child maps the parent's page")
            XCTAssertEqual(k.visibleContent(c, base + 3), written)
            XCTAssertEqual(Set(k.walkedMMs(f, cpu)), [p, c])
            // A child's write is the parent's too.
            XCTAssertEqual(k.fault(c, vpn: base + 3, write: true, cpu), .ok)
            XCTAssertEqual(k.frame(c, base + 3), f)
            XCTAssertEqual(k.visibleContent(p, base + 3), k.content(f))
            assertAuditClean(m)
        }
    }

    /// The inode lives while any VMA maps it: the parent's exit leaves it
    /// to the child; the child's munmap of the last mapping evicts it
    /// (no cache page, no backing, size 0, back on the pool).
    func testLastUnmapEvicts() throws {
        try eachScheme { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapShmem(p, pages: 4, cpu)
            let ino = VMAFile.inode(k.vmaFile(v))
            let base = k.vmaStart(v)
            for d: UInt64 in 0..<4 { XCTAssertEqual(k.fault(p, vpn: base + d, write: true, cpu), .ok) }
            let f = try XCTUnwrap(k.frame(p, base))
            _ = k.shrinkFilePage(f, cpu); _ = k.shrinkFilePage(f, cpu)  // page 0 goes to its backing
            XCTAssertNotEqual(k.files.diskWord(ino, 0).pointee.load(ordering: .relaxed), 0)
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.shmemInUse, 1)
            try k.exitMM(p, cpu)
            XCTAssertEqual(k.shmemInUse, 1, "the child still maps it")
            XCTAssertEqual(k.files.inode[Int(ino)].nrpages.load(ordering: .relaxed), 3)
            assertAuditClean(m)
            XCTAssertTrue(k.munmapVMA(c, base, cpu))
            XCTAssertEqual(k.shmemInUse, 0)
            XCTAssertEqual(k.files.inode[Int(ino)].shmemState.load(ordering: .relaxed), ShmemState.free)
            XCTAssertEqual(k.files.inode[Int(ino)].nrpages.load(ordering: .relaxed), 0)
            XCTAssertEqual(k.files.inode[Int(ino)].mappings.load(ordering: .relaxed), 0)
            XCTAssertEqual(k.files.inode[Int(ino)].size.load(ordering: .relaxed), 0)
            for i: UInt64 in 0..<4 {
                XCTAssertEqual(k.files.slot(ino, i).pointee.load(ordering: .relaxed), 0)
                XCTAssertEqual(k.files.diskWord(ino, i).pointee.load(ordering: .relaxed), 0)
            }
            assertAuditClean(m)
        }
    }

    /// An empty pool fails the mmap cleanly (counted), and an evicted
    /// inode is reused, empty.
    func testPoolExhaustionFailsCleanly() throws {
        try eachScheme(shmem: 2) { k, m, cpu in
            let p = try k.startProcess(cpu), q = try k.startProcess(cpu)
            let a = k.mmapShmem(p, pages: 2, cpu), b = k.mmapShmem(q, pages: 2, cpu)
            XCTAssertNotEqual(a, 0); XCTAssertNotEqual(b, 0)
            XCTAssertEqual(k.fault(p, vpn: k.vmaStart(a), write: true, cpu), .ok)
            XCTAssertEqual(k.mmapShmem(q, pages: 2, cpu), 0, "the pool is empty")
            XCTAssertEqual(cpu.pointee.eventCount(.shmemAllocFailed), 1)
            XCTAssertEqual(k.shmemInUse, 2)
            let old = VMAFile.inode(k.vmaFile(a))
            try k.exitMM(p, cpu)
            let again = k.mmapShmem(q, pages: 3, cpu)
            XCTAssertNotEqual(again, 0)
            XCTAssertEqual(VMAFile.inode(k.vmaFile(again)), old, "the freed inode is the only one left")
            XCTAssertNil(k.frame(q, k.vmaStart(again)))
            XCTAssertEqual(k.fault(q, vpn: k.vmaStart(again), write: false, cpu), .ok)
            XCTAssertEqual(k.visibleContent(q, k.vmaStart(again)), 0, "a new incarnation reads zeroes")
            assertAuditClean(m)
        }
    }

    /// Reclaim writes a dirty shmem page to its backing (the swap copy)
    /// before it drops it; the refault reads the content back.
    func testReclaimAndRefaultKeepContent() throws {
        try eachScheme { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapShmem(p, pages: 4, cpu)
            let ino = VMAFile.inode(k.vmaFile(v))
            let base = k.vmaStart(v)
            XCTAssertEqual(k.fault(p, vpn: base + 2, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.fault(c, vpn: base + 2, write: false, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, base + 2))
            let written = k.content(f)
            for _ in 0..<2 { _ = k.shrinkFilePage(f, cpu) }
            XCTAssertNil(k.frame(p, base + 2)); XCTAssertNil(k.frame(c, base + 2))
            XCTAssertEqual(k.files.slot(ino, 2).pointee.load(ordering: .relaxed), 0)
            XCTAssertEqual(k.files.diskWord(ino, 2).pointee.load(ordering: .relaxed), written)
            XCTAssertEqual(cpu.pointee.eventCount(.shmemWriteback), 1)
            XCTAssertEqual(k.fault(c, vpn: base + 2, write: false, cpu), .ok)
            XCTAssertEqual(k.visibleContent(c, base + 2), written)
            XCTAssertEqual(k.fault(p, vpn: base + 2, write: false, cpu), .ok)
            XCTAssertEqual(k.frame(p, base + 2), k.frame(c, base + 2))
            assertAuditClean(m)
        }
    }

    // MARK: The planted bugs

    func testEvictWhileMappedIsCaught() throws {
        try eachScheme(injection: .shmemEvictWhileMapped, expectNoViolations: false) { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapShmem(p, pages: 4, cpu)
            XCTAssertEqual(k.fault(p, vpn: k.vmaStart(v), write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            try k.exitMM(c, cpu)
            let kinds = Set(m.violations.map(\.kind))
            XCTAssertFalse(kinds.isEmpty)
            XCTAssertTrue(kinds.isSubset(of: Injection.shmemEvictWhileMapped.caughtBy), "\(kinds)")
            // Teardown of the parent meets the inode again; its findings are the bug's.
        }
    }

    func testEvictKeepingPagesIsCaught() throws {
        try eachScheme(injection: .shmemEvictKeepsPages, shmem: 1, expectNoViolations: false) { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapShmem(p, pages: 4, cpu)
            XCTAssertEqual(k.fault(p, vpn: k.vmaStart(v), write: true, cpu), .ok)
            XCTAssertTrue(k.munmapVMA(p, k.vmaStart(v), cpu))
            let kinds = Set(m.audit().map(\.kind))
            XCTAssertTrue(kinds.contains(.leak), "\(kinds)")
            XCTAssertTrue(kinds.isSubset(of: Injection.shmemEvictKeepsPages.caughtBy), "\(kinds)")
            XCTAssertNotEqual(k.mmapShmem(p, pages: 4, cpu), 0)
            XCTAssertTrue(Set(m.violations.map(\.kind)).isSubset(of: Injection.shmemEvictKeepsPages.caughtBy))
            XCTAssertTrue(m.violations.contains { $0.kind == .leak })
        }
    }
}

extension Kernel {
    /// The mms an rmap walk of locked page `f` visits at a PTE that maps it.
    func walkedMMs(_ f: UInt32, _ cpu: CPU) -> [UInt32] {
        var out: [UInt32] = []
        guard tryPin(f) else { return out }
        lockPage(f)
        _ = rmapWalk(f, trylock: false, cpu) { mm, _, i in
            let hit = pte(at: i).mappedFrame == f
            if hit { out.append(mm) }
            return hit
        }
        unlockPage(f)
        put(f, cpu)
        return out
    }

    func exitMM(_ mm: UInt32, _ cpu: CPU) throws {
        guard let s = slot(of: mm), exitProcess(slot: s, mm: mm, cpu) else { throw TestFailure("exit of \(mm) failed") }
    }

    /// munmap of the whole VMA of `mm` at `start`.
    func munmapVMA(_ mm: UInt32, _ start: UInt64, _ cpu: CPU) -> Bool {
        let v = findVMA(mm, start)
        guard v != 0 else { return false }
        return unmapVMA(mm, vma: v, cpu)
    }
}
