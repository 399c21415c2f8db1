import XCTest
@testable import ConcurrentRmap

typealias AVCKernel = Kernel<AnonVMAChainRmap, RealPlatform>

extension Machine {
    /// The anon_vma_chain machine's kernel.
    var avcKernel: AVCKernel { (core as! AnonVMAChainMachine).kernel }
}

extension Kernel where R == AnonVMAChainRmap {
    /// The anon_vmas on VMA `v`'s chain, newest first.
    func chain(_ v: UInt32) -> [UInt32] {
        var out: [UInt32] = []
        var c = rmap.chains[Int(v)].head.load(ordering: .relaxed)
        while c != 0 && out.count <= rmap.avcSlab.capacity {
            out.append(rmap.avcs[Int(c)].anonVma.load(ordering: .relaxed))
            c = rmap.avcs[Int(c)].vmaNext.load(ordering: .relaxed)
        }
        return out
    }

    /// The VMAs in anon_vma `av`'s set, in walk order.
    func set(_ av: UInt32) -> [UInt32] {
        var out: [UInt32] = []
        var c = rmap.anonVMAs[Int(av)].pointee.first.load(ordering: .acquiring)
        while c != 0 && out.count <= rmap.avcSlab.capacity {
            out.append(rmap.avcs[Int(c)].vma.load(ordering: .relaxed))
            c = rmap.avcs[Int(c)].next.load(ordering: .acquiring)
        }
        return out
    }

    func exit(_ mm: UInt32, _ cpu: CPU) throws {
        guard let s = slot(of: mm), exitProcess(slot: s, mm: mm, cpu) else { throw TestFailure("exit of \(mm) failed") }
    }
}

/// The anon_vma_chain scheme, one operation at a time: chains and sets
/// after each VMA event, the reuse rule on fork chains, page_move_anon_rmap,
/// and the planted bugs that can be shown without a race.
final class AnonVMAChainTests: XCTestCase {
    private func config(vmaPages: Int = 16, vmasPerProcess: Int = 2, injection: Injection = .none,
                        reuse: Bool = true, sync: ListSync = .rcu) -> MachineConfig {
        var c = MachineConfig.small(maxProcesses: 64, vmaPages: vmaPages, vmasPerProcess: vmasPerProcess,
                                    sync: sync, injection: injection, scheme: .anonVMAChain)
        c.anonVmaReuse = reuse
        return c
    }

    /// fork: the child's VMA chains to the parent's anon_vma and gets its
    /// own, child of the parent's; the shared page stays on the parent's
    /// anon_vma, whose set lists both VMAs, parent first; a COW copy goes
    /// to the child's own.
    func testForkChainsToTheParentAndCOWGoesToTheChildsOwn() throws {
        try withMachine(config()) { m, cpu in
            let k = m.avcKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            XCTAssertEqual(k.fault(p, vpn: b + 1, write: true, cpu), .ok)
            let pv = k.vmaHandle(p, 0)
            let a0 = k.vmaCtx(pv)
            XCTAssertEqual(k.chain(pv), [a0])
            let c = try k.forkChild(p, cpu)
            let cv = k.vmaHandle(c, 0)
            let a1 = k.vmaCtx(cv)
            XCTAssertNotEqual(a1, 0)
            XCTAssertNotEqual(a1, a0, "the parent's anon_vma is active: not reused")
            XCTAssertEqual(k.chain(cv), [a1, a0], "own first, root last")
            XCTAssertEqual(k.set(a0), [pv, cv], "the child follows its parent in the walk order")
            XCTAssertEqual(k.set(a1), [cv])
            XCTAssertEqual(k.chain(k.vmaHandle(c, 1)), [], "a VMA without pages has no chain")
            let f = try XCTUnwrap(k.frame(c, b))
            XCTAssertEqual(k.mapping(f), a0)
            XCTAssertEqual(k.fault(c, vpn: b, write: true, cpu), .ok)
            let n = try XCTUnwrap(k.frame(c, b))
            XCTAssertNotEqual(n, f, "COW copied")
            XCTAssertEqual(k.mapping(n), a1, "the copy is on the child's own anon_vma")
            // A walk of the parent's page visits both VMAs; of the child's copy, one.
            let t = try XCTUnwrap(k.migrate(frame: try XCTUnwrap(k.frame(p, b + 1)), cpu))
            XCTAssertEqual(k.frame(p, b + 1), t)
            XCTAssertEqual(k.frame(c, b + 1), t)
            let meta = m.rmapMetadata()
            XCTAssertEqual(meta.contexts, 2)
            XCTAssertEqual(meta.links, 3)
            XCTAssertEqual(meta.maxChain, 2)
            XCTAssertEqual(meta.bytes, 2 * 96 + 3 * 64)
            assertAuditClean(m)
        }
    }

    /// Each child forks the next and its parent exits: with reuse the
    /// chain and the live anon_vmas stay bounded (the child adopts its
    /// ancestor's anon_vma once that has no active VMA and one child);
    /// without, every generation adds one of each.
    func testForkChainIsBoundedWithReuseAndGrowsWithout() throws {
        let generations = 24
        for reuse in [true, false] {
            try withMachine(config(reuse: reuse)) { m, cpu in
                let k = m.avcKernel
                var cur = try k.startProcess(cpu)
                XCTAssertEqual(k.fault(cur, vpn: k.base(cur, vma: 0), write: true, cpu), .ok)
                for _ in 0..<generations {
                    let child = try k.forkChild(cur, cpu)
                    // The child writes its own page, as the workload does.
                    XCTAssertEqual(k.fault(child, vpn: k.base(child, vma: 0) + 1, write: true, cpu), .ok)
                    try k.exit(cur, cpu)
                    cur = child
                }
                let chain = k.chain(k.vmaHandle(cur, 0)).count
                let meta = m.rmapMetadata()
                if reuse {
                    XCTAssertLessThanOrEqual(chain, 3, "reuse bounds the chain")
                    XCTAssertLessThanOrEqual(meta.contexts, 3, "and the live anon_vmas")
                } else {
                    XCTAssertEqual(chain, generations + 1, "one anon_vma per generation")
                    XCTAssertEqual(meta.contexts, generations + 1)
                }
                XCTAssertEqual(meta.maxChain, chain)
                assertAuditClean(m, "reuse \(reuse)")
            }
        }
    }

    /// do_wp_page reusing a page that names an ancestor's anon_vma moves
    /// it to the VMA's own (the parent that shared it exited).
    func testCOWReuseMovesThePageToTheOwnAnonVMA() throws {
        try withMachine(config()) { m, cpu in
            let k = m.avcKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let a0 = k.vmaCtx(k.vmaHandle(p, 0))
            let c = try k.forkChild(p, cpu)
            try k.exit(p, cpu)
            let f = try XCTUnwrap(k.frame(c, b))
            XCTAssertEqual(k.mapping(f), a0)
            XCTAssertEqual(k.mapcount(f), 1)
            XCTAssertEqual(k.fault(c, vpn: b, write: true, cpu), .ok)
            XCTAssertEqual(k.frame(c, b), f, "reused in place")
            XCTAssertEqual(k.mapping(f), k.vmaCtx(k.vmaHandle(c, 0)), "moved to the child's own anon_vma")
            XCTAssertNotEqual(k.mapping(f), a0)
            assertAuditClean(m)
        }
    }

    /// The planted bug leaves the page on the ancestor's anon_vma: a
    /// writable page outside its VMA's own is a location violation.
    func testSkippedPageMoveIsALocationViolation() throws {
        try withMachine(config(injection: .avcMoveAnonRmapSkipped), expectNoViolations: false) { m, cpu in
            let k = m.avcKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            try k.exit(p, cpu)
            XCTAssertEqual(k.fault(c, vpn: b, write: true, cpu), .ok)
            XCTAssertTrue(m.audit().kinds.contains(.location))
        }
    }

    /// Split, mremap of the upper half, and a merge back: every page of
    /// parent and child stays reachable (migration finds every PTE), the
    /// chains and counts audit clean.
    func testSplitMremapAndMergeKeepPagesReachable() throws {
        for sync in ListSync.allCases {
            try withMachine(config(sync: sync)) { m, cpu in
                let k = m.avcKernel
                let p = try k.startProcess(cpu)
                let b = k.base(p, vma: 0)
                for d: UInt64 in 0..<8 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
                let c = try k.forkChild(p, cpu)
                k.mmapWrite(c)
                let cv = k.vmaHandle(c, 0)
                XCTAssertTrue(k.splitLocked(c, cv, at: 4, cpu))
                let upper = k.findVMA(c, b + 4)
                XCTAssertNotEqual(upper, cv)
                XCTAssertEqual(k.chain(upper), k.chain(cv), "the new half clones the chain")
                XCTAssertEqual(k.vmaCtx(upper), k.vmaCtx(cv))
                XCTAssertTrue(k.rmap.canMergeVMAs(k, lower: cv, upper: upper))
                k.mmapUnlock(c)
                assertAuditClean(m, "\(sync) after split")
                // mremap the upper half away: the pages keep their offsets.
                let t = try XCTUnwrap((0..<MachineConfig.maxVMAs).first { k.vmaHandle(c, $0) == upper })
                let to = k.unusedStart(c)
                XCTAssertTrue(k.mremap(c, vma: t, to: to, cpu))
                let moved = k.findVMA(c, to)
                XCTAssertEqual(k.vmaPgoff(moved), k.vmaPgoff(cv) + 4, "pgoff kept")
                assertAuditClean(m, "\(sync) after mremap")
                for d: UInt64 in 4..<8 {
                    let f = try XCTUnwrap(k.frame(p, b + d))
                    XCTAssertEqual(k.frame(c, to + d - 4), f)
                    let n = try XCTUnwrap(k.migrate(frame: f, cpu))
                    XCTAssertEqual(k.frame(p, b + d), n)
                    XCTAssertEqual(k.frame(c, to + d - 4), n, "\(sync): the moved VMA is walked")
                }
                // A merge of two VMAs of one anon_vma: the lower absorbs a
                // fresh split of itself.
                k.mmapWrite(c)
                XCTAssertTrue(k.splitLocked(c, cv, at: 2, cpu))
                let hi = k.findVMA(c, b + 2)
                XCTAssertTrue(k.rmap.canMergeVMAs(k, lower: cv, upper: hi))
                k.resizeVMA(c, cv, pages: 4)
                XCTAssertTrue(k.rmap.vmaMerged(k, kept: cv, removed: hi, cpu: cpu))
                k.unmapVMA(c, hi, cpu)
                k.mmapUnlock(c)
                assertAuditClean(m, "\(sync) after merge")
                for d: UInt64 in 0..<4 {
                    let f = try XCTUnwrap(k.frame(c, b + d))
                    let n = try XCTUnwrap(k.migrate(frame: f, cpu))
                    XCTAssertEqual(k.frame(c, b + d), n, "\(sync): the merged VMA is walked")
                }
                XCTAssertEqual(m.violations.map(\.description), [])
            }
        }
    }

    /// Two halves of one anon_vma merge under the locked walk; the RCU-only
    /// what-if refuses it (a lockless walker on the lower half's AVC would
    /// miss the upper half's pages when its AVC is unlinked).
    func testRCUOnlyWalkRefusesMergingTwoVMAsOfOneAnonVMA() throws {
        for walk in [AnonVMAWalk.locked, .rcuOnly] {
            var c = config()
            c.anonVmaWalk = walk
            try withMachine(c) { m, cpu in
                let k = m.avcKernel
                let p = try k.startProcess(cpu)
                let v = k.vmaHandle(p, 0)
                XCTAssertEqual(k.fault(p, vpn: k.base(p, vma: 0), write: true, cpu), .ok)
                k.mmapWrite(p)
                XCTAssertTrue(k.splitLocked(p, v, at: 4, cpu))
                let upper = k.findVMA(p, k.base(p, vma: 0) + 4)
                XCTAssertEqual(k.vmaCtx(upper), k.vmaCtx(v))
                XCTAssertEqual(k.rmap.canMergeVMAs(k, lower: v, upper: upper), walk == .locked, "\(walk)")
                k.mmapUnlock(p)
                assertAuditClean(m, "\(walk)")
            }
        }
    }

    /// A VMA with no anon_vma merges with one whose chain is only its own
    /// anon_vma and gets AVCs of its own on that chain (dup_anon_vma); one
    /// with ancestry does not merge. Between the merge's rmap step and the
    /// grow, the absorbed VMA's pages stay reachable through it.
    func testMergeRuleAndDupAnonVMA() throws {
        try withMachine(config()) { m, cpu in
            let k = m.avcKernel
            let p = try k.startProcess(cpu)
            let v0 = k.vmaHandle(p, 0), v1 = k.vmaHandle(p, 1)
            let at = k.base(p, vma: 1)
            XCTAssertEqual(k.fault(p, vpn: at, write: true, cpu), .ok)
            let a = k.vmaCtx(v1)
            k.mmapWrite(p)
            XCTAssertTrue(k.rmap.canMergeVMAs(k, lower: v0, upper: v1))
            XCTAssertTrue(k.rmap.vmaMerged(k, kept: v0, removed: v1, cpu: cpu))
            XCTAssertEqual(k.vmaCtx(v0), a)
            XCTAssertEqual(k.chain(v0), [a])
            XCTAssertEqual(Set(k.set(a)), [v0, v1], "both VMAs are in the set until the absorbed one is unlinked")
            XCTAssertEqual(k.vmaCtx(v1), a)
            k.mmapUnlock(p)
            // v0 does not cover the page yet: the walk must still find it
            // through v1 (the old re-pointing of v1's AVCs lost it here).
            let f = try XCTUnwrap(k.frame(p, at))
            let n = try XCTUnwrap(k.migrate(frame: f, cpu))
            XCTAssertEqual(k.frame(p, at), n, "the page is found while the merge is half done")
            XCTAssertEqual(m.violations.map(\.description), [])
            // Undo: v0, which maps nothing, leaves the set again.
            k.mmapWrite(p)
            k.rmap.vmaUnmapped(k, vma: v0, cpu: cpu)
            k.mmapUnlock(p)
            XCTAssertEqual(k.vmaCtx(v0), 0)
            XCTAssertEqual(k.set(a), [v1])
            assertAuditClean(m)
            let c = try k.forkChild(p, cpu)
            let cv1 = k.vmaHandle(c, 1), cv0 = k.vmaHandle(c, 0)
            XCTAssertEqual(k.chain(cv1).count, 2)
            XCTAssertFalse(k.rmap.canMergeVMAs(k, lower: cv0, upper: cv1), "a chain with ancestry is not singular")
        }
    }

    /// Planted bugs that need no race: the audit names them.
    func testPlantedBugsTheAuditCatches() throws {
        // split-no-clone: the new half is in no set.
        try withMachine(config(injection: .avcSplitNoClone), expectNoViolations: false) { m, cpu in
            let k = m.avcKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b + 8, write: true, cpu), .ok)
            k.mmapWrite(p)
            XCTAssertTrue(k.splitLocked(p, k.vmaHandle(p, 0), at: 4, cpu))
            k.mmapUnlock(p)
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
            // The walk of the page visits only the lower half, which no longer covers it.
            _ = k.migrate(frame: try XCTUnwrap(k.frame(p, b + 8)), cpu)
            XCTAssertTrue(m.violations.kinds.contains(.incompleteWalk), "\(m.violations.map(\.description))")
        }
        // reuse-degree: the reuse is not counted as an active VMA.
        try withMachine(config(injection: .avcReuseDegree), expectNoViolations: false) { m, cpu in
            let k = m.avcKernel
            var cur = try k.startProcess(cpu)
            XCTAssertEqual(k.fault(cur, vpn: k.base(cur, vma: 0), write: true, cpu), .ok)
            for _ in 0..<4 {
                let child = try k.forkChild(cur, cpu)
                try k.exit(cur, cpu)
                cur = child
            }
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
        }
        // unlink-free-in-use: the child's exit frees its own anon_vma, which
        // its grandchild still links to and their shared page names.
        try withMachine(config(injection: .avcUnlinkFreeInUse), expectNoViolations: false) { m, cpu in
            let k = m.avcKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.fault(c, vpn: b + 1, write: true, cpu), .ok)
            _ = try k.forkChild(c, cpu)
            try k.exit(c, cpu)
            let kinds = m.audit().kinds
            XCTAssertTrue(kinds.contains(.lifetime), "\(m.audit().map(\.description))")
        }
    }

    /// Out of AVCs, fork backs off cleanly: the child is dropped and the
    /// parent's chain and counts are as before.
    func testForkOutOfAVCsBacksOff() throws {
        try withMachine(config()) { m, cpu in
            let k = m.avcKernel
            let p = try k.startProcess(cpu)
            XCTAssertEqual(k.fault(p, vpn: k.base(p, vma: 0), write: true, cpu), .ok)
            // Take every free AVC.
            var taken: [UInt32] = []
            while true {
                let c = k.rmap.allocAVC()
                if c == 0 { break }
                taken.append(c)
            }
            let r = k.fork(p, cpu)
            XCTAssertEqual(r.result, .outOfMemory)
            for c in taken { k.rmap.avcSlab.freeUnpublished(c) }
            assertAuditClean(m)
            _ = try k.forkChild(p, cpu)
            assertAuditClean(m)
        }
    }
}
