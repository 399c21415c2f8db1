import XCTest
@testable import ConcurrentRmap

typealias COWKernel = Kernel<COWContextRmap, RealPlatform>

extension Machine {
    /// The cow-context machine's kernel.
    var cowKernel: COWKernel { (core as! COWContextMachine).kernel }
}

extension Kernel where R == COWContextRmap {
    func context(of mm: UInt32) -> UInt32 { rmap.context(of: mm) }
    func parentContext(_ c: UInt32) -> UInt32 { rmap.ctx(c).pointee.parent.load(ordering: .relaxed) }
    func contextLive(_ c: UInt32) -> Bool { rmap.slab.load(c) == SlotState.live }
    func contextLinked(_ c: UInt32) -> Bool { rmap.ctx(c).pointee.linked.load(ordering: .relaxed) != 0 }

    /// The children of context `c`, in walk order.
    func children(_ c: UInt32) -> [UInt32] {
        var out: [UInt32] = []
        var x = rmap.ctx(c).pointee.firstChild.load(ordering: .acquiring)
        while x != 0 && out.count <= rmap.slab.capacity {
            out.append(x)
            x = rmap.ctx(x).pointee.next.load(ordering: .acquiring)
        }
        return out
    }

    /// Every (mm, vpn) a walk of `f` visits, and the contexts it passed.
    func walked(_ f: UInt32, _ cpu: CPU) -> (visits: [UInt32: UInt64], contexts: Int) {
        var v: [UInt32: UInt64] = [:]
        let n = rmap.walk(self, frame: f, cpu: cpu) { mm, vpn in v[mm] = vpn }
        return (v, n)
    }

    func exitCOW(_ mm: UInt32, _ cpu: CPU) throws {
        guard let s = slot(of: mm), exitProcess(slot: s, mm: mm, cpu) else { throw TestFailure("exit of \(mm) failed") }
    }
}

/// The cow-context scheme, one operation at a time: the context tree after
/// fork, exit and exec; pages named by their first mapper's context; walks
/// over the subtree at the right address (also after mremap); contexts
/// kept while pages or descendants need them; the planted bugs that can be
/// shown without a race.
final class COWContextTests: XCTestCase {
    private func config(injection: Injection = .none, sync: ListSync = .rcu, maxProcesses: Int = 64,
                        frames: Int = 512) -> MachineConfig {
        MachineConfig.small(frames: frames, maxProcesses: maxProcesses, vmaPages: 16, vmasPerProcess: 2,
                            sync: sync, injection: injection, scheme: .cowContext)
    }

    /// Builds a tree `levels` deep below `root`, each mm forking `fanout`
    /// children; returns every mm, root first.
    private func tree(_ k: COWKernel, root: UInt32, fanout: Int, levels: Int, _ cpu: CPU) throws -> [UInt32] {
        var all = [root], layer = [root]
        for _ in 0..<levels {
            var next: [UInt32] = []
            for p in layer { for _ in 0..<fanout { next.append(try k.forkChild(p, cpu)) } }
            all += next
            layer = next
        }
        return all
    }

    func testContextTreeAfterForkExitAndExec() throws {
        try withMachine(config()) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let cp = k.context(of: p)
            XCTAssertEqual(k.parentContext(cp), 0, "a new image is a root")
            let a = try k.forkChild(p, cpu), b = try k.forkChild(p, cpu)
            let ca = k.context(of: a), cb = k.context(of: b)
            XCTAssertEqual(k.children(cp), [ca, cb], "children in fork order")
            XCTAssertEqual(k.parentContext(ca), cp)
            let g = try k.forkChild(a, cpu)
            let cg = k.context(of: g)
            XCTAssertEqual(k.children(ca), [cg])
            assertAuditClean(m, "after forks")
            // a exits: its context stays, for its child.
            try k.exitCOW(a, cpu)
            XCTAssertTrue(k.contextLinked(ca), "an exited mm's context stays while it has children")
            XCTAssertEqual(k.children(cp), [ca, cb])
            assertAuditClean(m, "after the middle exit")
            // g exits: no pages, no children: g's and a's contexts go.
            try k.exitCOW(g, cpu)
            XCTAssertFalse(k.contextLive(cg))
            XCTAssertFalse(k.contextLive(ca), "the exited parent goes with its last child")
            XCTAssertEqual(k.children(cp), [cb])
            // exec: b gets a new tree; its old context leaves p's.
            let sb = try XCTUnwrap(k.slot(of: b))
            XCTAssertTrue(k.execProcess(slot: sb, mm: b, cpu))
            let nb = k.processes.entry(sb).pointee.load(ordering: .acquiring)
            XCTAssertEqual(k.parentContext(k.context(of: nb)), 0, "exec starts a new tree")
            XCTAssertEqual(k.children(cp), [])
            assertAuditClean(m, "after exec")
        }
    }

    /// A page names the context of the mm that first mapped it; a COW copy
    /// the child's own. A walk of a page shared by a 2 x 3 tree visits all
    /// 15 contexts and each mm at the page's address; the child's copy,
    /// only the child's subtree.
    func testPagesNameTheirFirstMapperAndWalksCoverTheSubtree() throws {
        try withMachine(config()) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b + 2, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, b + 2))
            let all = try tree(k, root: p, fanout: 2, levels: 3, cpu)
            XCTAssertEqual(all.count, 15)
            XCTAssertEqual(k.mapping(f), k.context(of: p))
            XCTAssertEqual(k.mapcount(f), 15)
            let w = k.walked(f, cpu)
            XCTAssertEqual(w.contexts, 15)
            XCTAssertEqual(Set(w.visits.keys), Set(all))
            XCTAssertTrue(w.visits.values.allSatisfy { $0 == b + 2 })
            // The first child COWs: its copy names its own context, walked
            // over its subtree (itself and its 6 descendants).
            let c = all[1]
            XCTAssertEqual(k.fault(c, vpn: b + 2, write: true, cpu), .ok)
            let n = try XCTUnwrap(k.frame(c, b + 2))
            XCTAssertNotEqual(n, f)
            XCTAssertEqual(k.mapping(n), k.context(of: c))
            let wn = k.walked(n, cpu)
            XCTAssertEqual(wn.contexts, 7, "the child's subtree")
            XCTAssertEqual(k.mapcount(n), 1, "forked before the copy: its children still map the old page")
            // Migration finds every mapping of the shared page.
            let t = try XCTUnwrap(k.migrate(frame: f, cpu))
            for mm in all where mm != c { XCTAssertEqual(k.frame(mm, b + 2), t) }
            let meta = m.rmapMetadata()
            XCTAssertEqual(meta.contexts, 15)
            XCTAssertEqual(meta.links, 14)
            XCTAssertEqual(meta.maxChain, 4)
            assertAuditClean(m)
        }
    }

    /// mremap: an exclusive page keeps its frame and takes the new address
    /// as its index; a page still shared keeps its frame and index behind a
    /// remap record. Walks find the mover at the new address, the parent at
    /// the old.
    func testMremapReindexesExclusiveAndKeepsShared() throws {
        try withMachine(config()) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.fault(c, vpn: b + 1, write: true, cpu), .ok)  // the child's own
            let shared = try XCTUnwrap(k.frame(c, b))
            let own = try XCTUnwrap(k.frame(c, b + 1))
            let to = k.unusedStart(c)
            XCTAssertTrue(k.mremap(c, vma: 0, to: to, cpu))
            XCTAssertEqual(k.frame(c, to + 1), own, "exclusive: moved")
            XCTAssertEqual(k.index(own), to + 1)
            XCTAssertEqual(k.frame(c, to), shared, "shared: kept")
            XCTAssertEqual(k.index(shared), b)
            XCTAssertEqual(k.walked(own, cpu).visits, [c: to + 1])
            XCTAssertEqual(k.walked(shared, cpu).visits, [p: b, c: to])
            XCTAssertEqual(k.frame(p, b), shared)
            assertAuditClean(m)
        }
    }

    /// The table entry of `mm`'s VMA starting at `start`.
    private func entry(_ k: COWKernel, _ mm: UInt32, at start: UInt64) throws -> Int {
        try XCTUnwrap((0..<MachineConfig.maxVMAs).first { k.vmaHandle(mm, $0) != 0 && k.vmaStart(k.vmaHandle(mm, $0)) == start })
    }

    private func records(_ k: COWKernel, _ mm: UInt32) -> UInt32 {
        k.rmap.ctx(k.context(of: mm)).pointee.records.load(ordering: .relaxed)
    }

    /// Remap records (ARCHITECTURE 5.7): a child moves a range of pages it
    /// shares with its parent without a copy; each walk finds every mm at
    /// its own address: the parent and a grandchild forked before the move
    /// at the old one, the mover and a grandchild forked after at the new.
    /// A page the mover faults later at the old range is found where it is
    /// (its epoch), and so is an exclusive page a later move re-anchored.
    /// With `COWRecord.max` records the copy rule comes back.
    func testRemapRecordsFindMovedSharedPagesWithoutCopies() throws {
        try withMachine(config()) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0), b1 = k.base(p, vma: 1)
            for v in [b, b + 1, b1] { XCTAssertEqual(k.fault(p, vpn: v, write: true, cpu), .ok) }
            let f0 = try XCTUnwrap(k.frame(p, b)), f1 = try XCTUnwrap(k.frame(p, b1))
            let c = try k.forkChild(p, cpu)
            let before = try k.forkChild(c, cpu)
            XCTAssertEqual(k.fault(c, vpn: b1 + 3, write: true, cpu), .ok)  // the child's own
            let own = try XCTUnwrap(k.frame(c, b1 + 3))
            let copies = cpu.pointee.eventCount(.mremapCopy)
            let to = k.unusedStart(c)
            XCTAssertTrue(k.mremap(c, vma: try entry(k, c, at: b), to: to, cpu))
            XCTAssertEqual(cpu.pointee.eventCount(.mremapCopy), copies, "no copy")
            XCTAssertEqual(k.frame(c, to), f0)
            XCTAssertEqual(k.frame(c, to + 1), k.frame(p, b + 1))
            XCTAssertEqual(records(k, c), 1)
            let after = try k.forkChild(c, cpu)
            XCTAssertEqual(k.walked(f0, cpu).visits, [p: b, c: to, before: b, after: to])
            XCTAssertEqual(k.walked(f0, cpu).contexts, 4)
            assertAuditClean(m, "after the first move")
            // The other VMA moves into the old range: its shared page gets a
            // second record, the child's own page is re-anchored.
            XCTAssertTrue(k.mremap(c, vma: try entry(k, c, at: b1), to: b, cpu))
            XCTAssertEqual(cpu.pointee.eventCount(.mremapCopy), copies)
            XCTAssertEqual(records(k, c), 2)
            XCTAssertEqual(k.frame(c, b), f1)
            XCTAssertEqual(k.walked(f1, cpu).visits, [p: b1, c: b, before: b1, after: b1])
            XCTAssertEqual(k.frame(c, b + 3), own)
            XCTAssertEqual(k.mapping(own), k.context(of: c))
            XCTAssertEqual(k.walked(own, cpu).visits[c], b + 3)
            // A page faulted now at the old range: no older record applies.
            XCTAssertEqual(k.fault(c, vpn: b + 5, write: true, cpu), .ok)
            let late = try XCTUnwrap(k.frame(c, b + 5))
            XCTAssertEqual(k.walked(late, cpu).visits[c], b + 5)
            // Migration finds every mapping of the moved shared page.
            let t = try XCTUnwrap(k.migrate(frame: f0, cpu))
            XCTAssertEqual(k.frame(p, b), t)
            XCTAssertEqual(k.frame(c, to), t)
            XCTAssertEqual(k.frame(before, b), t)
            XCTAssertEqual(k.frame(after, to), t)
            assertAuditClean(m, "after the second move")
            // Move the range holding the shared page until the records are
            // full; then the seed's copy rule.
            var at = to
            while records(k, c) < UInt32(COWRecord.max) {
                let next = k.unusedStart(c)
                XCTAssertTrue(k.mremap(c, vma: try entry(k, c, at: at), to: next, cpu))
                at = next
                XCTAssertEqual(k.frame(c, at), t)
                XCTAssertEqual(k.walked(t, cpu).visits[c], at)
            }
            XCTAssertEqual(cpu.pointee.eventCount(.mremapCopy), copies)
            let next = k.unusedStart(c)
            XCTAssertTrue(k.mremap(c, vma: try entry(k, c, at: at), to: next, cpu))
            XCTAssertGreaterThan(cpu.pointee.eventCount(.mremapCopy), copies, "records full: copied")
            XCTAssertEqual(cpu.pointee.eventCount(.remapRecordFull), 1)
            XCTAssertNotEqual(k.frame(c, next), t)
            XCTAssertEqual(k.walked(t, cpu).visits.filter { $0.key != c }, [p: b, before: b, after: to])
            assertAuditClean(m, "records full")
        }
    }

    /// The remap planted bugs that show without a race.
    func testPlantedRemapBugsWithoutARace() throws {
        // No fork bound: the grandchild forked before the move is looked for
        // at the new address.
        try withMachine(config(injection: .cowRemapNoForkBound), expectNoViolations: false) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            let g = try k.forkChild(c, cpu)
            let to = k.unusedStart(c)
            XCTAssertTrue(k.mremap(c, vma: 0, to: to, cpu))
            let f = try XCTUnwrap(k.frame(p, b))
            XCTAssertEqual(k.walked(f, cpu).visits[g], to)
            XCTAssertTrue(m.audit().kinds.contains(.location))
        }
        // Epoch ignored: a page faulted later at the old range is looked
        // for at the new one.
        try withMachine(config(injection: .cowRemapIgnoresEpoch), expectNoViolations: false) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0), b1 = k.base(p, vma: 1)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            let to = k.unusedStart(c)
            XCTAssertTrue(k.mremap(c, vma: try entry(k, c, at: b), to: to, cpu))
            XCTAssertTrue(k.mremap(c, vma: try entry(k, c, at: b1), to: b, cpu))
            XCTAssertEqual(k.fault(c, vpn: b + 2, write: true, cpu), .ok)
            let late = try XCTUnwrap(k.frame(c, b + 2))
            XCTAssertEqual(k.walked(late, cpu).visits, [c: to + 2])
            XCTAssertTrue(m.audit().kinds.contains(.location))
        }
        // Done early: the record is published done, so it never pends.
        try withMachine(config(injection: .cowRemapDoneEarly)) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            k.mmapWrite(c)
            k.rmap.rangeMoveBegin(k, mm: c, oldStart: b, newStart: k.unusedStart(c), pages: 16, cpu: cpu)
            XCTAssertEqual(k.rmap.pageMove(k, frame: try XCTUnwrap(k.frame(c, b)), mm: c), .keep)
            let meta = k.rmap.record(k.context(of: c), 0)[2].load(ordering: .relaxed)
            XCTAssertEqual(meta >> 32, COWRecord.done, "published done while no PTE moved")
            k.rmap.rangeMoveEnd(k, mm: c, moved: false, cpu: cpu)
            k.mmapUnlock(c)
        }
    }

    /// A fork chain whose parents exit keeps every ancestor's context (the
    /// tail's ancestry); all go when the tail exits.
    func testForkChainKeepsAncestorsWhileNeeded() throws {
        let generations = 40
        try withMachine(config()) { m, cpu in
            let k = m.cowKernel
            var cur = try k.startProcess(cpu)
            XCTAssertEqual(k.fault(cur, vpn: k.base(cur, vma: 0), write: true, cpu), .ok)
            for _ in 0..<generations {
                let child = try k.forkChild(cur, cpu)
                XCTAssertEqual(k.fault(child, vpn: k.base(child, vma: 0) + 1, write: true, cpu), .ok)
                try k.exitCOW(cur, cpu)
                cur = child
            }
            let meta = m.rmapMetadata()
            XCTAssertEqual(meta.contexts, generations + 1, "one context per generation")
            XCTAssertEqual(meta.maxChain, generations + 1)
            assertAuditClean(m)
            try k.exitCOW(cur, cpu)
            XCTAssertEqual(m.rmapMetadata().contexts, 0, "the chain goes with its last mm and pages")
        }
    }

    /// A page read back from swap by a child names the child's context: its
    /// parent, outside that subtree, gets a copy (the planted bug maps it,
    /// and a walk from the child's context misses the parent).
    func testSwapInOutsideTheSubtreeCopies() throws {
        for bug in [false, true] {
            try withMachine(config(injection: bug ? .cowSwapinOutsideSubtree : .none), expectNoViolations: !bug) { m, cpu in
                let k = m.cowKernel
                let p = try k.startProcess(cpu)
                let b = k.base(p, vma: 0)
                XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
                let c = try k.forkChild(p, cpu)
                k.swapOutAll(cpu)
                XCTAssertTrue(k.pte(p, b).isSwap); XCTAssertTrue(k.pte(c, b).isSwap)
                XCTAssertEqual(k.fault(c, vpn: b, write: false, cpu), .ok)
                let n = try XCTUnwrap(k.frame(c, b))
                XCTAssertEqual(k.mapping(n), k.context(of: c))
                XCTAssertTrue(k.inSwapCache(n))
                XCTAssertEqual(k.fault(p, vpn: b, write: false, cpu), .ok)
                if bug {
                    XCTAssertEqual(k.frame(p, b), n)
                    XCTAssertEqual(k.walked(n, cpu).visits, [c: b], "the walk misses the parent")
                    XCTAssertTrue(m.audit().kinds.contains(.location) || m.violations.kinds.contains(.location))
                } else {
                    XCTAssertNotEqual(k.frame(p, b), n, "the parent gets a copy")
                    assertAuditClean(m)
                }
            }
        }
    }

    /// The planted bugs that show without a race: each breaks what the
    /// checks say it breaks.
    func testPlantedBugsWithoutARace() throws {
        // Depth one: a grandchild's mapping is missed.
        try withMachine(config(injection: .cowWalkDepthOne), expectNoViolations: false) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let all = try tree(k, root: p, fanout: 1, levels: 2, cpu)
            let f = try XCTUnwrap(k.frame(p, b))
            XCTAssertEqual(Set(k.walked(f, cpu).visits.keys), Set(all.prefix(2)))
            _ = k.migrate(frame: f, cpu)
            XCTAssertTrue(m.violations.kinds.contains(.incompleteWalk))
        }
        // Exit leaves children: the grandchild is out of the walk, and the
        // child's later exit meets a detached parent.
        try withMachine(config(injection: .cowExitLeavesChildren), expectNoViolations: false) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            let g = try k.forkChild(c, cpu)
            try k.exitCOW(c, cpu)
            let f = try XCTUnwrap(k.frame(p, b))
            XCTAssertEqual(Set(k.walked(f, cpu).visits.keys), [p])
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
            try k.exitCOW(g, cpu)
            XCTAssertTrue(m.violations.kinds.contains(.groupList))
        }
        // Pages take no reference: the audit's recount disagrees.
        try withMachine(config(injection: .cowContextFreedWhilePages), expectNoViolations: false) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            XCTAssertEqual(k.fault(p, vpn: k.base(p, vma: 0), write: true, cpu), .ok)
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
        }
        // mremap re-indexes a shared page: the parent's PTE is off its index.
        try withMachine(config(injection: .cowMremapNoCopy), expectNoViolations: false) { m, cpu in
            let k = m.cowKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            XCTAssertTrue(k.mremap(c, vma: 0, to: k.unusedStart(c), cpu))
            XCTAssertTrue(m.audit().kinds.contains(.location))
        }
        // Fork links after the copy: the scheme says so.
        try withMachine(config(injection: .cowForkLinkAfterCopy)) { m, _ in
            XCTAssertEqual(m.cowKernel.rmap.forkLinkPhase(m.cowKernel), .afterCopy)
        }
    }

    /// Out of context slots, fork backs off cleanly: a fork chain longer
    /// than the slab fails fork rather than the machine.
    func testForkFailsCleanlyWithoutContextSlots() throws {
        try withMachine(config(maxProcesses: 16, frames: 64)) { m, cpu in
            let k = m.cowKernel
            var cur = try k.startProcess(cpu)
            XCTAssertEqual(k.fault(cur, vpn: k.base(cur, vma: 0), write: true, cpu), .ok)
            var failed = false
            for _ in 0..<(k.rmap.slab.capacity + 8) {
                k.betweenOperations(cpu)  // exited mms' slots come back after grace periods
                var r = k.fork(cur, cpu)
                if r.result != .ok { k.expediteGracePeriod(cpu); r = k.fork(cur, cpu) }
                if r.result != .ok { failed = true; XCTAssertEqual(r.result, .outOfMemory); break }
                k.mmPut(r.child, cpu)
                try k.exitCOW(cur, cpu)
                cur = r.child
            }
            XCTAssertTrue(failed, "a chain longer than the context slab must fail fork")
            XCTAssertGreaterThan(m.rmapMetadata().contexts, k.rmap.slab.capacity / 2, "it failed for want of contexts")
            assertAuditClean(m)
        }
    }

    /// The reviewers' deep tree (2 children x 6 levels): a walk of the
    /// root's page visits all 127 contexts and finds all 127 mappings; the
    /// deepest sharer's COW copy, only its own (a leaf). Timings: `stress
    /// schemes --trees 2x6` (ARCHITECTURE 5.7).
    func testDeepTreeWalks() throws {
        for walk in AnonVMAWalk.allCases {
            var c = MachineConfig.small(frames: 512, maxProcesses: 256, vmaPages: 16, scheme: .cowContext)
            c.anonVmaWalk = walk
            try withMachine(c) { m, cpu in
                let t = try XCTUnwrap(m.benchForkTree(children: 2, depth: 6, exec: false, walkVisits: 1000, cpu: cpu))
                XCTAssertEqual(t.mms, 127)
                XCTAssertEqual(t.shared.visited, 127, walk.rawValue)
                XCTAssertEqual(t.shared.found, 127)
                XCTAssertEqual(t.privateCOW.visited, 1)
                XCTAssertEqual(t.privateCOW.found, 1)
                XCTAssertEqual(m.rmapMetadata().maxChain, 7)
            }
        }
    }
}
