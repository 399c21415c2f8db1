import Foundation
import Synchronization
import XCTest
@testable import ConcurrentRmap

/// The anon_vma of 2.6.7 as the kernel ran it: vma_merge, anon_vma reuse
/// (find_mergeable_anon_vma), the planted merge bug, and the walk taking
/// the anon_vma's lock under --sync rcu unless the RCU-only what-if is asked.
final class AnonVMAMergeTests: XCTestCase {
    private func config(walk: AnonVMAWalk = .locked, reuse: Bool = true, injection: Injection = .none) -> MachineConfig {
        var c = MachineConfig.small(vmaPages: 16, vmasPerProcess: 2, injection: injection, scheme: .anonVma)
        c.anonVmaWalk = walk
        c.anonVmaMerge = reuse
        return c
    }

    /// mprotect back: two split halves on one anon_vma merge; the kept VMA
    /// covers both ranges, the other leaves the list, every page is still
    /// found by a walk at its own offset.
    func testSplitHalvesMergeBack() throws {
        try withMachine(config()) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            let v = k.vmaHandle(p, 0), b = k.vmaStart(v)
            for d: UInt64 in 0..<12 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
            let av = k.vmaCtx(v)
            k.mmapWrite(p)
            XCTAssertTrue(k.splitLocked(p, v, at: 5, cpu))
            k.mmapUnlock(p)
            let upper = k.findVMA(p, b + 5)
            XCTAssertNotEqual(upper, v)
            XCTAssertEqual(k.listed(av), [v, upper])
            XCTAssertEqual(k.mergeVMA(p, vma: upper, cpu), v, "the lower half is kept")
            XCTAssertEqual(k.vmaPages(v), 16)
            XCTAssertEqual(k.findVMA(p, b + 10), v)
            XCTAssertEqual(k.listed(av), [v], "the absorbed half left the list")
            XCTAssertEqual(k.vmaCount(p), 2)
            XCTAssertEqual(cpu.pointee.eventCount(.vmaMerge), 1)
            // A page of the absorbed half: its anchor names the kept VMA.
            let f = try XCTUnwrap(k.frame(p, b + 9))
            XCTAssertTrue(k.rmap.locationOK(k, frame: f, mm: p, vpn: b + 9))
            let t = try XCTUnwrap(k.migrate(frame: f, cpu))
            XCTAssertEqual(k.frame(p, b + 9), t, "the walk found the PTE through the kept VMA")
            XCTAssertEqual(k.mergeVMA(p, vma: v, cpu), 0, "nothing left to merge with")
            assertAuditClean(m)
        }
    }

    /// A VMA with no anon_vma absorbing one with pages adopts its anon_vma
    /// (__anon_vma_merge); the planted bug skips that and is caught with
    /// one of its declared classes.
    func testMergeAdoptsTheAnonVMAAndThePlantedBugIsCaught() throws {
        for injection in [Injection.none, .anonVmaMergeDropsAnonVma] {
            try withMachine(config(reuse: false, injection: injection), expectNoViolations: injection == .none) { m, cpu in
                let k = m.anonVMAKernel
                let p = try k.startProcess(cpu)
                let v = k.vmaHandle(p, 0), b = k.vmaStart(v)
                k.mmapWrite(p)
                XCTAssertTrue(k.splitLocked(p, v, at: 4, cpu))
                k.mmapUnlock(p)
                let upper = k.findVMA(p, b + 4)
                for d: UInt64 in 4..<8 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
                let av = k.vmaCtx(upper)
                XCTAssertEqual(k.vmaCtx(v), 0, "the lower half never faulted")
                XCTAssertNotEqual(av, 0)
                XCTAssertEqual(k.mergeVMA(p, vma: v, cpu), v)
                let f = try XCTUnwrap(k.frame(p, b + 6))
                if injection == .none {
                    XCTAssertEqual(k.vmaCtx(v), av, "the kept VMA adopted the anon_vma")
                    XCTAssertEqual(k.listed(av), [v])
                    XCTAssertEqual(k.migrate(frame: f, cpu).map { k.frame(p, b + 6) == $0 }, true)
                    assertAuditClean(m)
                } else {
                    XCTAssertEqual(k.vmaCtx(v), 0)
                    let audit = m.audit()
                    XCTAssertFalse(audit.isEmpty, "the audit sees pages under a VMA off their anon_vma")
                    XCTAssertTrue(audit.kinds.isSubset(of: injection.caughtBy), "\(audit)")
                    _ = k.fault(p, vpn: b + 6, write: false, cpu)  // checkMapped: the anchor names no VMA here
                    XCTAssertFalse(m.violations.isEmpty)
                    XCTAssertTrue(m.violations.kinds.isSubset(of: injection.caughtBy), "\(m.violations)")
                }
            }
        }
    }

    /// find_mergeable_anon_vma: a VMA's first fault takes its neighbour's
    /// anon_vma when the offsets continue, and the two then merge; with
    /// reuse off each gets its own, and two anon_vmas never merge.
    func testFirstFaultReusesTheNeighboursAnonVMA() throws {
        for reuse in [true, false] {
            try withMachine(config(reuse: reuse)) { m, cpu in
                let k = m.anonVMAKernel
                let p = try k.startProcess(cpu)
                let v = k.vmaHandle(p, 0), b = k.vmaStart(v)
                k.mmapWrite(p)
                XCTAssertTrue(k.splitLocked(p, v, at: 8, cpu))
                k.mmapUnlock(p)
                let upper = k.findVMA(p, b + 8)
                XCTAssertEqual(k.fault(p, vpn: b + 1, write: true, cpu), .ok)
                let av = k.vmaCtx(v)
                XCTAssertEqual(k.fault(p, vpn: b + 9, write: true, cpu), .ok)
                if reuse {
                    XCTAssertEqual(k.vmaCtx(upper), av, "the neighbour's anon_vma reused")
                    XCTAssertEqual(k.listed(av), [v, upper])
                    XCTAssertEqual(cpu.pointee.eventCount(.anonVmaReused), 1)
                    XCTAssertEqual(m.contextsInUse, 1)
                    XCTAssertEqual(k.mergeVMA(p, vma: upper, cpu), v)
                    XCTAssertEqual(k.listed(av), [v])
                } else {
                    XCTAssertNotEqual(k.vmaCtx(upper), av)
                    XCTAssertEqual(cpu.pointee.eventCount(.anonVmaReused), 0)
                    XCTAssertEqual(m.contextsInUse, 2)
                    XCTAssertEqual(k.mergeVMA(p, vma: upper, cpu), 0, "two anon_vmas do not merge")
                }
                assertAuditClean(m)
            }
        }
    }

    /// No reuse when the offsets do not continue (a VMA mremap moved keeps
    /// its old offset), even for adjacent VMAs.
    func testNoReuseWithoutContinuousOffsets() throws {
        try withMachine(config()) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            let to = k.unusedStart(p)
            k.mmapWrite(p)
            let below = k.newVMA(p, start: to, pages: 8, pgoff: to, ctx: 0, cpu)
            let moved = k.newVMA(p, start: to + 8, pages: 8, pgoff: to + 1000, ctx: 0, cpu)
            XCTAssertTrue(k.insertVMA(p, below))
            XCTAssertTrue(k.insertVMA(p, moved))
            XCTAssertFalse(k.canMerge(p, lower: below, upper: moved), "offsets do not continue")
            k.mmapUnlock(p)
            XCTAssertEqual(k.fault(p, vpn: to + 8, write: true, cpu), .ok)
            XCTAssertEqual(k.fault(p, vpn: to, write: true, cpu), .ok)
            XCTAssertNotEqual(k.vmaCtx(below), k.vmaCtx(moved))
            XCTAssertEqual(cpu.pointee.eventCount(.anonVmaReused), 0)
            assertAuditClean(m)
        }
    }

    /// The RCU-only what-if cannot merge two VMAs on one list (a walker
    /// could pass both); it still merges when one has no anon_vma.
    func testRCUOnlyRefusesMergingTwoListedVMAs() throws {
        try withMachine(config(walk: .rcuOnly)) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            let v = k.vmaHandle(p, 0), b = k.vmaStart(v)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            k.mmapWrite(p)
            XCTAssertTrue(k.splitLocked(p, v, at: 8, cpu))
            k.mmapUnlock(p)
            let upper = k.findVMA(p, b + 8)
            XCTAssertEqual(k.mergeVMA(p, vma: upper, cpu), 0)
            let w = k.vmaHandle(p, 1), c = k.vmaStart(w)
            k.mmapWrite(p)
            XCTAssertTrue(k.splitLocked(p, w, at: 8, cpu))
            k.mmapUnlock(p)
            XCTAssertEqual(k.fault(p, vpn: c + 8, write: true, cpu), .ok)
            XCTAssertEqual(k.mergeVMA(p, vma: w, cpu), w, "the lower half had no anon_vma")
            assertAuditClean(m)
        }
    }

    /// The walk under --sync rcu holds the anon_vma's lock (locked), or
    /// does not (rcu-only): a migration started while the test holds that
    /// lock waits for it only in the first case.
    func testLockedWalkWaitsForTheAnonVMALock() throws {
        for walk in AnonVMAWalk.allCases {
            try withMachine(config(walk: walk)) { m, cpu in
                let k = m.anonVMAKernel
                let p = try k.startProcess(cpu)
                let b = k.base(p, vma: 0)
                XCTAssertEqual(k.fault(p, vpn: b + 3, write: true, cpu), .ok)
                let av = k.vmaCtx(k.vmaHandle(p, 0))
                let f = try XCTUnwrap(k.frame(p, b + 3))
                let lock = k.rmap.s.pointee.lock.locks[Int(av)]
                pthread_mutex_lock(lock)
                let finished = DispatchSemaphore(value: 0)
                let t = Thread {
                    RCU.registerThread()
                    let other = m.makeCPU(id: 1, seed: 2)
                    _ = m.anonVMAKernel.migrate(frame: f, other)
                    m.releaseCPU(other)
                    RCU.unregisterThread()
                    finished.signal()
                }
                t.start()
                if walk == .locked {
                    XCTAssertEqual(finished.wait(timeout: .now() + 0.3), .timedOut, "the walk did not wait for the anon_vma lock")
                    pthread_mutex_unlock(lock)
                    XCTAssertEqual(finished.wait(timeout: .now() + 30), .success)
                } else {
                    XCTAssertEqual(finished.wait(timeout: .now() + 30), .success, "the RCU-only walk took the lock")
                    pthread_mutex_unlock(lock)
                }
                XCTAssertNotEqual(k.frame(p, b + 3), f, "migrated")
                assertAuditClean(m)
            }
        }
    }

    /// The random operations merge and reuse on their own: split undoes a
    /// split half the time, munmap maps again in place.
    func testRandomOperationsMergeAndReuse() throws {
        try withMachine(config()) { m, cpu in
            for _ in 0..<8 { XCTAssertTrue(m.spawn(cpu: cpu)) }
            for i in 0..<6000 {
                let op: OpKind = [.fault, .fault, .fault, .split, .munmap, .fault, .reclaim, .migrate][i % 8]
                _ = m.perform(op, cpu: cpu)
            }
            XCTAssertGreaterThan(cpu.pointee.eventCount(.vmaMerge), 0)
            XCTAssertGreaterThan(cpu.pointee.eventCount(.anonVmaReused), 0)
            assertAuditClean(m)
        }
    }

    func testConfigRefusesRCUOnlyOutsideItsScope() {
        var c = config(walk: .rcuOnly)
        XCTAssertNil(c.validate())
        c.sync = .mutex
        XCTAssertNotNil(c.validate())
        c.sync = .rcu
        c.scheme = .anongroup
        XCTAssertNotNil(c.validate())
        XCTAssertEqual(Injection.anonVmaFreeNoGrace.selftestAnonVmaWalk, .rcuOnly)
        XCTAssertEqual(Injection.anonVmaMergeDropsAnonVma.scheme, .anonVma)
        XCTAssertTrue(Injection.catalogue(for: .anonVma).contains(.anonVmaMergeDropsAnonVma))
    }
}
