import XCTest
@testable import ConcurrentRmap

/// The anon_vma scheme, one operation at a time: what each VMA event does
/// to the lists, where pages point, and the planted bugs that can be shown
/// without a race.
final class AnonVMATests: XCTestCase {
    private func config(vmaPages: Int = 16, vmasPerProcess: Int = 2, injection: Injection = .none) -> MachineConfig {
        .small(vmaPages: vmaPages, vmasPerProcess: vmasPerProcess, injection: injection, scheme: .anonVma)
    }

    func testFirstFaultPreparesAnAnonVMAPerVMA() throws {
        try withMachine(config()) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            let v0 = k.vmaHandle(p, 0), v1 = k.vmaHandle(p, 1)
            XCTAssertEqual(k.vmaCtx(v0), 0, "no anon_vma before the first fault")
            let b = k.vmaStart(v0)
            XCTAssertEqual(k.fault(p, vpn: b + 5, write: true, cpu), .ok)
            let av = k.vmaCtx(v0)
            XCTAssertNotEqual(av, 0)
            XCTAssertEqual(k.listed(av), [v0])
            let f = try XCTUnwrap(k.frame(p, b + 5))
            XCTAssertEqual(k.mapping(f), av)
            XCTAssertEqual(k.index(f), k.vmaPgoff(v0) + 5, "page.index is the linear page offset")
            XCTAssertEqual(k.fault(p, vpn: b + 6, write: false, cpu), .ok)
            XCTAssertEqual(k.vmaCtx(v0), av, "one anon_vma per VMA")
            XCTAssertEqual(k.fault(p, vpn: k.vmaStart(v1), write: true, cpu), .ok)
            XCTAssertNotEqual(k.vmaCtx(v1), av, "another VMA, another anon_vma")
            XCTAssertEqual(m.contextsInUse, 2)
            assertAuditClean(m)
        }
    }

    /// fork puts each child VMA on its parent VMA's anon_vma; one walk
    /// visits both and migration replaces both PTEs.
    func testForkSharesTheAnonVMAAndMigrationFindsEveryCopy() throws {
        try withMachine(config()) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            for d: UInt64 in 0..<4 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
            let av = k.vmaCtx(k.vmaHandle(p, 0))
            let c = try k.forkChild(p, cpu)
            let cv = k.vmaHandle(c, 0)
            XCTAssertEqual(k.vmaCtx(cv), av)
            XCTAssertEqual(k.listed(av), [k.vmaHandle(p, 0), cv], "the child's VMA follows its parent's")
            XCTAssertEqual(k.vmaCtx(k.vmaHandle(c, 1)), 0, "a VMA without pages has no anon_vma to share")
            let f = try XCTUnwrap(k.frame(p, b + 2))
            XCTAssertEqual(k.frame(c, b + 2), f)
            let before = cpu.pointee.eventCount(.walkVisited)
            let t = try XCTUnwrap(k.migrate(frame: f, cpu))
            XCTAssertEqual(k.frame(p, b + 2), t)
            XCTAssertEqual(k.frame(c, b + 2), t)
            XCTAssertEqual(cpu.pointee.eventCount(.walkVisited) - before, 4, "two walks over two VMAs")
            XCTAssertEqual(m.violations.map(\.description), [])
            assertAuditClean(m)
        }
    }

    /// mremap after fork: Andrea's answer to the seed's special case. The
    /// moved VMA keeps its page offset, so shared pages move without a copy
    /// and stay findable from both mms.
    func testMremapAfterForkMovesSharedPagesWithoutCopying() throws {
        try withMachine(config()) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            for d: UInt64 in 0..<6 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
            let c = try k.forkChild(p, cpu)
            let av = k.vmaCtx(k.vmaHandle(c, 0))
            let frames = try (0..<6).map { d in try XCTUnwrap(k.frame(c, b + UInt64(d))) }
            let indexes = frames.map { k.index($0) }
            let to = k.unusedStart(c)
            XCTAssertTrue(k.mremap(c, vma: 0, to: to, cpu))
            XCTAssertEqual(cpu.pointee.eventCount(.mremapCopy), 0, "no copy")
            XCTAssertEqual(cpu.pointee.eventCount(.mremapKeep), 6)
            let nv = k.findVMA(c, to)
            XCTAssertNotEqual(nv, 0)
            XCTAssertEqual(k.vmaPgoff(nv), b, "the moved VMA keeps its page offset")
            XCTAssertEqual(k.listed(av), [k.vmaHandle(p, 0), nv], "the old VMA left the list, the new one joined it")
            for d in 0..<6 {
                XCTAssertEqual(k.frame(c, to + UInt64(d)), frames[d], "page \(d) moved, not copied")
                XCTAssertEqual(k.frame(p, b + UInt64(d)), frames[d], "and is still the parent's")
                XCTAssertEqual(k.index(frames[d]), indexes[d], "its index did not change")
                XCTAssertEqual(k.mapcount(frames[d]), 2)
            }
            assertAuditClean(m, "after mremap")
            // One walk finds the page at two different addresses.
            let t = try XCTUnwrap(k.migrate(frame: frames[3], cpu))
            XCTAssertEqual(k.frame(p, b + 3), t)
            XCTAssertEqual(k.frame(c, to + 3), t)
            XCTAssertEqual(m.violations.map(\.description), [])
            assertAuditClean(m, "after migration")
        }
    }

    func testMremapWithANewPageOffsetIsCaught() throws {
        try withMachine(config(injection: .anonVmaMremapPgoff), expectNoViolations: false) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b + 1, write: true, cpu), .ok)
            XCTAssertTrue(k.mremap(p, vma: 0, to: k.unusedStart(p), cpu))
            XCTAssertTrue(m.audit().kinds.contains(.location), "page.index no longer names the PTE")
        }
    }

    /// A split puts the upper half on the list before the lower half
    /// shrinks; the pages of the upper half stay findable.
    func testSplitLinksTheUpperHalf() throws {
        for injection in [Injection.none, .anonVmaSplitUnlinked] {
            try withMachine(config(injection: injection), expectNoViolations: injection == .none) { m, cpu in
                let k = m.anonVMAKernel
                let p = try k.startProcess(cpu)
                let v = k.vmaHandle(p, 0)
                let b = k.vmaStart(v)
                for d: UInt64 in 0..<16 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
                let av = k.vmaCtx(v)
                k.mmapWrite(p)
                XCTAssertTrue(k.splitLocked(p, v, at: 10, cpu))
                k.mmapUnlock(p)
                let upper = k.findVMA(p, b + 12)
                XCTAssertNotEqual(upper, v)
                XCTAssertEqual(k.vmaPages(v), 10)
                XCTAssertEqual(k.vmaStart(upper), b + 10)
                XCTAssertEqual(k.vmaPgoff(upper), k.vmaPgoff(v) + 10)
                XCTAssertEqual(k.vmaCtx(upper), av)
                let f = try XCTUnwrap(k.frame(p, b + 12))
                if injection == .none {
                    XCTAssertEqual(k.listed(av), [v, upper])
                    XCTAssertNotNil(k.migrate(frame: f, cpu))
                    XCTAssertEqual(m.violations.map(\.description), [])
                    assertAuditClean(m)
                } else {
                    XCTAssertEqual(k.listed(av), [v])
                    XCTAssertTrue(m.audit().kinds.contains(.groupList), "a VMA off its anon_vma's list")
                    _ = k.migrate(frame: f, cpu)
                    XCTAssertTrue(m.violations.kinds.contains(.incompleteWalk), "the upper half's page was not found")
                }
            }
        }
    }

    /// The anon_vma dies with its last VMA, after a grace period.
    func testAnonVMAIsFreedAfterItsLastVMA() throws {
        try withMachine(config()) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            XCTAssertEqual(k.fault(p, vpn: k.base(p, vma: 0), write: true, cpu), .ok)
            let av = k.vmaCtx(k.vmaHandle(p, 0))
            let c = try k.forkChild(p, cpu)
            XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: p)), mm: p, cpu))
            XCTAssertEqual(k.rmap.slab.load(av), SlotState.live, "the child's VMA keeps it")
            XCTAssertEqual(k.listed(av), [k.vmaHandle(c, 0)])
            XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: c)), mm: c, cpu))
            XCTAssertEqual(k.rmap.slab.load(av), SlotState.rcuPending, "empty: waiting for a grace period")
            k.quiesce(cpu)
            XCTAssertEqual(k.rmap.slab.load(av), SlotState.free)
        }
    }

    /// A walker that pinned and locked a page which then lost its last
    /// mapping finds it unmapped after the lookup and walks nothing; without
    /// that re-check it walks an anon_vma that is already dead, and the walk
    /// reports it.
    func testWalkRechecksThatThePageIsStillMapped() throws {
        for injection in [Injection.none, .anonVmaNoRecheck] {
            try withMachine(config(injection: injection), expectNoViolations: injection == .none) { m, cpu in
                let k = m.anonVMAKernel
                let p = try k.startProcess(cpu)
                XCTAssertEqual(k.fault(p, vpn: k.base(p, vma: 0), write: true, cpu), .ok)
                let f = try XCTUnwrap(k.frame(p, k.base(p, vma: 0)))
                XCTAssertTrue(k.isolate(f, cpu))
                XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: p)), mm: p, cpu))
                XCTAssertEqual(k.mapcount(f), 0)
                let stats = k.rmapWalk(f, trylock: false, cpu) { _, _, _ in true }
                k.putBack(f, cpu)
                if injection == .none {
                    XCTAssertEqual(stats.visited, 0)
                } else {
                    XCTAssertTrue(m.violations.kinds.contains(.lifetime), "\(m.violations)")
                }
            }
        }
    }

    func testAuditReportsBrokenLists() throws {
        try withMachine(config(), expectNoViolations: false) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            XCTAssertEqual(k.fault(p, vpn: k.base(p, vma: 0), write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            let pv = k.vmaHandle(p, 0), cv = k.vmaHandle(c, 0)
            let av = k.vmaCtx(pv)
            assertAuditClean(m, "baseline")
            // The list loses the child's VMA.
            k.rmap.links[Int(pv)].next.store(0, ordering: .relaxed)
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
            k.rmap.links[Int(pv)].next.store(cv, ordering: .relaxed)
            // The count disagrees.
            k.rmap.heads[Int(av)].pointee.count.add(1, ordering: .relaxed)
            XCTAssertTrue(m.audit().kinds.contains(.groupList))
            k.rmap.heads[Int(av)].pointee.count.subtract(1, ordering: .relaxed)
            // A VMA points to another anon_vma than the one it is listed on.
            k.vmaRecord(cv).pointee.ctx.store(0, ordering: .relaxed)
            XCTAssertFalse(m.audit().isEmpty)
            k.vmaRecord(cv).pointee.ctx.store(av, ordering: .relaxed)
            let before = m.violations.count
            assertAuditClean(m, "restored")
            XCTAssertEqual(m.violations.count, before)
        }
    }
}
