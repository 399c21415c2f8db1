import XCTest
import Foundation
import Synchronization
@testable import ConcurrentRmap
#if canImport(Glibc)
import Glibc
#endif

/// Regression tests for races found in the model, each aimed at one window.
/// The threaded ones are probabilistic (perturbed race windows); they caught
/// their bug within the run time on a 2-core machine with the fix reverted.
final class RaceRegressionTests: XCTestCase {
    /// fork while a page is being migrated: a writable migration entry must
    /// be copied read-only into both mms, or migration ends with two writable
    /// PTEs on one page (Linux copy_nonpresent_pte). Deterministic: step 1 of
    /// migration is done by hand, then fork, then migration completes.
    func testForkCopiesMigrationEntryReadOnly() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 1)) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let v = k.base(p, vma: 0) + 2
            XCTAssertEqual(k.fault(p, vpn: v, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, v))
            XCTAssertTrue(k.pte(p, v).isWritable)
            let x = k.content(f)
            // Migration step 1 on p's writable PTE.
            let target = k.allocFrame(cpu)
            XCTAssertTrue(k.tryPin(f))
            XCTAssertTrue(k.tryLockPage(f))
            k.ptes[k.pteIndex(p, v)] = PTE.migration(f, writable: true).raw
            // fork copies the migration entry.
            let c = try k.forkChild(p, cpu)
            for mm in [p, c] {
                XCTAssertTrue(k.pte(mm, v).isMigration)
                XCTAssertFalse(k.pte(mm, v).isWritable, "mm \(mm): migration entry copied writable")
            }
            XCTAssertEqual(k.mapcount(f), 2)
            // Steps 2 and 3.
            k.migrateLocked(f, to: target, cpu)
            for mm in [p, c] {
                XCTAssertEqual(k.frame(mm, v), target)
                XCTAssertFalse(k.pte(mm, v).isWritable)
            }
            XCTAssertEqual(k.mapcount(target), 2)
            // The child's write copies; the parent still reads its value.
            XCTAssertEqual(k.fault(c, vpn: v, write: true, cpu), .ok)
            XCTAssertNotEqual(k.frame(c, v), target)
            XCTAssertEqual(k.content(target), x)
            XCTAssertEqual(k.fault(p, vpn: v, write: false, cpu), .ok)
            assertAuditClean(m)
        }
    }

    /// Swap-out of a page shared by several mms racing a swap-in of the
    /// first PTE converted: the reclaimer must hold its own reference on the
    /// swap slot while it converts PTEs, or that swap-in frees the slot the
    /// later PTEs are then pointed at. The parent is first in the group list
    /// (reclaim converts its PTE first); readers swap its page back in as
    /// soon as they see a swap entry there, and a forker keeps sharing the
    /// parent's page with fresh children (swap-in makes private copies).
    func testSwapOutRacingSwapIn() throws {
        let config = MachineConfig.small(frames: 192, swapSlots: 64, maxProcesses: 8,
                                         vmaPages: 1, vmasPerProcess: 1, perturb: true)
        try withMachine(config) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let v = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: v, write: true, cpu), .ok)
            let totals = RunTotals()
            let finished = runThreads(m, threads: 3, seconds: 1.0, seed: 11, totals: totals) { m, cpu, t in
                let k = m.kernel
                switch t {
                case 0:
                    k.reclaim(cpu, scan: 64, target: 64)
                case 1:
                    // Keep a few children sharing the parent's page.
                    if k.processCount >= 5, let (mm, slot) = k.pinProcess(near: cpu.pointee.random(below: 8), cpu) {
                        if mm != p { _ = k.exitProcess(slot: slot, mm: mm, cpu) }
                        k.mmPut(mm, cpu)
                    }
                    k.ptlLock(p)
                    let swapped = k.pte(p, v).isSwap
                    k.ptlUnlock(p)
                    if !swapped {
                        let r = k.fork(p, cpu)
                        if r.result == .ok { k.mmPut(r.child, cpu) }
                    }
                default:
                    // Peek with a trylock, so that reclaim's trylocks rarely fail on us.
                    guard k.ptlTryLock(p) else { return }
                    let swapped = k.pte(p, v).isSwap
                    k.ptlUnlock(p)
                    if swapped { _ = k.fault(p, vpn: v, write: false, cpu) } else { sched_yield() }
                }
            }
            guard finished else { XCTFail("threads stuck"); throw TestFailure("threads stuck") }
            print("testSwapOutRacingSwapIn: \(totals.summary)")
            XCTAssertEqual(m.violations.map(\.description), [])
            assertAuditClean(m)
        }
    }

    /// Migration of a page shared by two mms racing mremap in the first of
    /// them: between its PTE replacements the new page is mapped once, and
    /// an mremap that re-indexed it then would leave the other mm's PTE away
    /// from page.index. Migration keeps the new page locked to prevent it.
    /// A forker shares the parent's pages with a fresh child (the parent is
    /// first in the group list, so migration replaces its PTE first) and
    /// moves the parent's VMA; a migrator keeps migrating the parent's pages.
    func testMigrationRacingMremap() throws {
        let config = MachineConfig.small(frames: 256, swapSlots: 64, maxProcesses: 8,
                                         vmaPages: 2, vmasPerProcess: 1, perturb: true)
        try withMachine(config) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            for d: UInt64 in 0..<2 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
            let totals = RunTotals()
            // The window: a migration of a page that p shares with a child
            // (mapcount 2 once isolated), so the remap walk's first
            // conversion leaves the new page mapped once while p may mremap.
            let sharedMigrations = Atomic<Int>(0)
            let finished = runThreads(m, threads: 2, seconds: 1.0, seed: 12, totals: totals) { m, cpu, t in
                let k = m.kernel
                if t == 0 {
                    // The frame of one of p's pages, looked up under p's locks.
                    k.mmapRead(p)
                    let v = k.base(p, vma: 0) + UInt64(cpu.pointee.random(below: 2))
                    k.ptlLock(p)
                    let f = k.frame(p, v)
                    k.ptlUnlock(p)
                    k.mmapUnlock(p)
                    // By now f may have been freed and reused; migrate(frame:)
                    // re-checks it the way the scanners do.
                    if let f, k.mapcount(f) >= 2, k.migrate(frame: f, cpu) != nil {
                        sharedMigrations.add(1, ordering: .relaxed)
                    } else if let f {
                        _ = k.migrate(frame: f, cpu)
                    }
                    return
                }
                let before = Set(k.table().map(\.mm))
                let r = k.fork(p, cpu)
                guard r.result == .ok else { return }
                k.mmPut(r.child, cpu)
                _ = k.mremap(p, cpu)
                for (slot, mm) in k.table() where !before.contains(mm) {
                    _ = k.exitProcess(slot: slot, mm: mm, cpu)
                }
            }
            guard finished else { XCTFail("threads stuck"); throw TestFailure("threads stuck") }
            print("testMigrationRacingMremap: window reached \(sharedMigrations.load(ordering: .relaxed)) times "
                  + "(migrations begun on a page mapped at least twice); \(totals.summary)")
            XCTAssertEqual(m.violations.map(\.description), [])
            assertAuditClean(m)
        }
    }
}
