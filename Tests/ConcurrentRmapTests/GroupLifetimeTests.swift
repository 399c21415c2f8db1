import Foundation
import XCTest
@testable import ConcurrentRmap
#if canImport(Glibc)
import Glibc
#endif

/// exec, exit and the anongroup's life: a group lives while a member mm or
/// a page refers to it, and its slot is recycled only after a grace period.
final class GroupLifetimeTests: XCTestCase {
    func testExecStartsNewGroupAndOldGroupIsFreedAfterGracePeriod() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 2)) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let g1 = k.group(of: p)
            let b = k.base(p, vma: 0)
            for d: UInt64 in 0..<4 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.group(of: c), g1)
            XCTAssertEqual(k.groupRefs(g1), 2 + 4, "two members and four pages")
            XCTAssertEqual(m.contextsInUse, 1)

            // exec in the parent: a new mm in a new group; the old mm leaves g1.
            let slotP = try XCTUnwrap(k.slot(of: p))
            XCTAssertTrue(k.execProcess(slot: slotP, mm: p, cpu))
            let p2 = k.processes.entry(slotP).pointee.load(ordering: .acquiring)
            XCTAssertNotEqual(p2, p)
            let g2 = k.group(of: p2)
            XCTAssertNotEqual(g2, g1, "exec starts a new group")
            XCTAssertEqual(k.groupState(g2), SlotState.live)
            XCTAssertEqual(k.members(g2), [p2])
            XCTAssertEqual(k.groupRefs(g2), 1)
            // g1 stays: the child is still a member and still maps the pages.
            XCTAssertEqual(k.groupState(g1), SlotState.live)
            XCTAssertEqual(k.members(g1), [c])
            XCTAssertEqual(k.groupRefs(g1), 1 + 4)
            XCTAssertEqual(m.contextsInUse, 2)
            for d: UInt64 in 0..<4 {
                let f = try XCTUnwrap(k.frame(c, b + d))
                XCTAssertEqual(k.mapping(f), g1)
                XCTAssertEqual(k.mapcount(f), 1)
            }
            // The new image's pages go to g2.
            let b2 = k.base(p2, vma: 0)
            XCTAssertEqual(k.fault(p2, vpn: b2, write: true, cpu), .ok)
            XCTAssertEqual(k.mapping(try XCTUnwrap(k.frame(p2, b2))), g2)
            assertAuditClean(m, "after exec")
            k.quiesce(cpu)
            XCTAssertEqual(k.mms.state[Int(p)].pointee.load(ordering: .acquiring), SlotState.free,
                           "the old mm is freed after a grace period")

            // A page pinned by someone else keeps g1 alive after its last member left.
            let pinned = try XCTUnwrap(k.frame(c, b))
            XCTAssertTrue(k.tryPin(pinned))
            let mmsBefore = m.mmsInUse
            // Hold a read-side section: no grace period can end until we leave it.
            RCU.readLock()
            XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: c)), mm: c, cpu))
            XCTAssertEqual(k.mms.state[Int(c)].pointee.load(ordering: .acquiring), SlotState.rcuPending)
            XCTAssertEqual(k.members(g1), [], "the last member left")
            XCTAssertEqual(k.groupState(g1), SlotState.live, "a page still refers to the group")
            XCTAssertEqual(k.groupRefs(g1), 1)
            XCTAssertEqual(k.mapping(pinned), g1)
            XCTAssertEqual(m.contextsInUse, 2)

            // The last page goes: the group waits for a grace period.
            k.put(pinned, cpu)
            XCTAssertTrue(k.isFree(pinned))
            XCTAssertEqual(k.groupState(g1), SlotState.rcuPending)
            // Queue the batch, and let another thread start a grace period:
            // it cannot end while we are inside our section, so the polled
            // free path must find nothing elapsed.
            k.flushRetired(cpu)
            let snapshot = RealPlatform.gracePeriodSnapshot()
            let waiter = Thread { RCU.synchronize() }
            waiter.start()
            usleep(50_000)  // the waiter is inside synchronize_rcu by now
            XCTAssertFalse(RealPlatform.gracePeriodElapsed(since: snapshot),
                           "a grace period ended while a reader was still inside its section")
            XCTAssertEqual(k.groupState(g1), SlotState.rcuPending,
                           "freed before the grace period ended: a reader could still be looking")
            XCTAssertEqual(m.contextsInUse, 2)
            XCTAssertEqual(m.mmsInUse, mmsBefore, "the child's mm is freed only after a grace period")
            XCTAssertEqual(k.mms.state[Int(c)].pointee.load(ordering: .acquiring), SlotState.rcuPending)
            RCU.readUnlock()

            k.quiesce(cpu)
            XCTAssertEqual(k.groupState(g1), SlotState.free)
            XCTAssertEqual(m.contextsInUse, 1)
            XCTAssertEqual(k.mms.state[Int(c)].pointee.load(ordering: .acquiring), SlotState.free)
            XCTAssertEqual(m.mmsInUse, mmsBefore - 1)
            XCTAssertEqual(k.groupState(g2), SlotState.live)
            assertAuditClean(m, "after the old group was freed")
        }
    }

    /// exit of the only member frees the group once its pages are gone; a
    /// recycled group slot starts clean.
    func testExitFreesGroupAndSlotIsReused() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 1)) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let g = k.group(of: p)
            XCTAssertEqual(k.fault(p, vpn: k.base(p, vma: 0), write: true, cpu), .ok)
            XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: p)), mm: p, cpu))
            k.quiesce(cpu)
            XCTAssertEqual(k.groupState(g), SlotState.free)
            XCTAssertEqual(m.contextsInUse, 0)
            XCTAssertEqual(m.mmsInUse, 0)
            // New processes get a fresh, live group with one member.
            let q = try k.startProcess(cpu)
            let gq = k.group(of: q)
            XCTAssertEqual(k.groupState(gq), SlotState.live)
            XCTAssertEqual(k.members(gq), [q])
            XCTAssertEqual(k.groupRefs(gq), 1)
            assertAuditClean(m)
        }
    }
}
