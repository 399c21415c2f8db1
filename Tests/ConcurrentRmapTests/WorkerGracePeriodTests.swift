import Foundation
import XCTest
@testable import ConcurrentRmap

/// Retired slots wait on their CPU's own list and are freed by that CPU,
/// between operations, after a grace period it waits for itself
/// (`Kernel.betweenOperations`, `Kernel.completeGracePeriod`).
final class WorkerGracePeriodTests: XCTestCase {
    /// No time bound: expiries come from the operation count alone, so the
    /// tests do not depend on how fast they run.
    static var countdownOnly: MachineConfig {
        var c = MachineConfig.small(vmaPages: 16, vmasPerProcess: 1)
        c.retireMaxWaitNs = .max
        return c
    }

    /// A CPU too slow to reach the operation count frees its batches once
    /// they are older than `retireMaxWaitNs`, checked every 256 operations.
    func testSlowCPUIsBoundedInTime() throws {
        var c = MachineConfig.small(vmaPages: 16, vmasPerProcess: 1)
        c.retireMaxWaitNs = 1
        try withMachine(c) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            try k.exit(p, cpu)
            k.flushRetired(cpu)
            for _ in 0..<255 { k.betweenOperations(cpu) }
            XCTAssertEqual(k.mms.load(p), SlotState.rcuPending, "the clock is read every 256 operations")
            k.betweenOperations(cpu)
            XCTAssertEqual(k.mms.load(p), SlotState.free)
            XCTAssertEqual(cpu.pointee.eventCount(.gracePeriodWait), 1)
        }
    }

    /// The oldest queued batch waits `RetireBatch.maxWait` operations; a
    /// later batch does not push its grace period back.
    func testQueuedBatchIsFreedAfterItsCountdown() throws {
        try withMachine(Self.countdownOnly) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let q = try k.startProcess(cpu)
            try k.exit(p, cpu)
            k.flushRetired(cpu)
            XCTAssertNotNil(cpu.pointee.awaitingGracePeriod)
            for _ in 0..<10 { k.betweenOperations(cpu) }
            try k.exit(q, cpu)
            k.flushRetired(cpu)
            XCTAssertNotNil(cpu.pointee.awaitingGracePeriod?.pointee.next, "two batches wait")
            for _ in 10..<(RetireBatch.maxWait - 1) { k.betweenOperations(cpu) }
            XCTAssertEqual(k.mms.load(p), SlotState.rcuPending, "one operation short of the grace period")
            XCTAssertEqual(cpu.pointee.eventCount(.gracePeriodWait), 0)
            k.betweenOperations(cpu)
            XCTAssertNil(cpu.pointee.awaitingGracePeriod)
            XCTAssertEqual(k.mms.load(p), SlotState.free)
            XCTAssertEqual(k.mms.load(q), SlotState.free, "the later batch went with the first")
            XCTAssertEqual(cpu.pointee.eventCount(.gracePeriodWait), 1)
            XCTAssertEqual(cpu.pointee.eventCount(.retireBatchFreed), 2)
            XCTAssertEqual(m.mmsInUse, 0)
            // Nothing queued: operations count nothing down.
            for _ in 0..<(2 * RetireBatch.maxWait) { k.betweenOperations(cpu) }
            XCTAssertEqual(cpu.pointee.eventCount(.gracePeriodWait), 1)
        }
    }

    /// The CPU's grace period waits for a reader on another thread: the
    /// slot stays pending while the reader is inside its section, and the
    /// waiting CPU says what it waits for.
    func testGracePeriodWaitsForAReaderOnAnotherThread() throws {
        try withMachine(Self.countdownOnly) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let inside = DispatchSemaphore(value: 0), leave = DispatchSemaphore(value: 0)
            let readerDone = DispatchSemaphore(value: 0), waiterDone = DispatchSemaphore(value: 0)
            let reader = Thread {
                RCU.registerThread()
                RCU.readLock()
                inside.signal()
                leave.wait()
                RCU.readUnlock()
                RCU.unregisterThread()
                readerDone.signal()
            }
            reader.start()
            inside.wait()
            try k.exit(p, cpu)
            k.flushRetired(cpu)
            nonisolated(unsafe) let waiting = cpu  // this thread leaves it alone until the waiter is done
            let waiter = Thread {
                k.completeGracePeriod(waiting)
                waiterDone.signal()
            }
            waiter.start()
            XCTAssertEqual(waiterDone.wait(timeout: .now() + 0.1), .timedOut, "no grace period while the reader is inside")
            XCTAssertEqual(k.mms.load(p), SlotState.rcuPending, "freed under a reader")
            XCTAssertTrue(cpu.pointee.waitingForGracePeriod.load(ordering: .relaxed))
            XCTAssertTrue(cpu.pointee.currentActivity().hasPrefix("synchronize_rcu after"), cpu.pointee.currentActivity())
            leave.signal()
            XCTAssertEqual(waiterDone.wait(timeout: .now() + 30), .success)
            readerDone.wait()
            XCTAssertEqual(k.mms.load(p), SlotState.free)
            XCTAssertFalse(cpu.pointee.waitingForGracePeriod.load(ordering: .relaxed))
        }
    }

    /// Every operation of the machine's API is a point where the countdown
    /// runs, so a caller that only calls operations frees its slots.
    func testMachineOperationsRunTheCountdown() throws {
        try withMachine(Self.countdownOnly) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            try k.exit(p, cpu)
            k.flushRetired(cpu)
            XCTAssertTrue(m.spawnProcess(cpu: cpu))
            let pinned = try XCTUnwrap(m.pinProcess(near: 0, cpu: cpu))
            var n = 0
            while cpu.pointee.awaitingGracePeriod != nil && n < 2 * RetireBatch.maxWait {
                _ = m.fault(pinned, write: n % 2 == 0, cpu: cpu)
                n += 1
            }
            m.unpin(pinned, cpu: cpu)
            XCTAssertEqual(n, RetireBatch.maxWait - 1, "spawn counted one, the faults the rest")
            XCTAssertEqual(k.mms.load(p), SlotState.free)
            let q = try XCTUnwrap(m.pinProcess(near: 0, cpu: cpu))
            XCTAssertTrue(m.exit(q, cpu: cpu))
            m.unpin(q, cpu: cpu)
        }
    }
}

extension WorkerGracePeriodTests {
    /// A grace period that another CPU waited for, begun after a batch was
    /// queued, frees that batch without a synchronize_rcu of its own; a
    /// batch queued after it still waits.
    func testAnotherCPUsGracePeriodIsShared() throws {
        try withMachine(Self.countdownOnly) { m, cpu in
            let k = m.kernel
            let other = m.makeCPU(id: 10, seed: 1)
            defer { m.releaseCPU(other) }
            let p = try k.startProcess(cpu)
            let q = try k.startProcess(other)
            let r = try k.startProcess(cpu)
            try k.exit(p, cpu)
            k.flushRetired(cpu)
            try k.exit(q, other)
            k.quiesce(other)  // the other CPU's own grace period
            XCTAssertEqual(other.pointee.eventCount(.gracePeriodWait), 1)
            try k.exit(r, cpu)
            k.flushRetired(cpu)
            let synchronized = RCU.synchronizeCount
            for _ in 0..<RetireBatch.maxWait { k.betweenOperations(cpu) }
            XCTAssertEqual(RCU.synchronizeCount, synchronized, "no grace period of its own")
            XCTAssertEqual(cpu.pointee.eventCount(.gracePeriodShared), 1)
            XCTAssertEqual(k.mms.load(p), SlotState.free, "covered by the other CPU's grace period")
            XCTAssertEqual(k.mms.load(r), SlotState.rcuPending, "queued after it began")
            XCTAssertNotNil(cpu.pointee.awaitingGracePeriod)
            // Nothing else covers r: the next expiry waits for its own.
            for _ in 0..<RetireBatch.maxWait { k.betweenOperations(cpu) }
            XCTAssertEqual(cpu.pointee.eventCount(.gracePeriodWait), 1)
            XCTAssertEqual(k.mms.load(r), SlotState.free)
            XCTAssertNil(cpu.pointee.awaitingGracePeriod)
        }
    }

    /// A CPU out of mm slots waits for its own grace period after the
    /// operation, even when a shared one freed part of its batches.
    func testExpeditedGracePeriodIsNotPutOff() throws {
        try withMachine(Self.countdownOnly) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let q = try k.startProcess(cpu)
            try k.exit(p, cpu)
            k.flushRetired(cpu)
            RCU.synchronize()  // covers p's batch only
            try k.exit(q, cpu)
            k.expediteGracePeriod(cpu)
            k.betweenOperations(cpu)
            XCTAssertEqual(cpu.pointee.eventCount(.gracePeriodShared), 1)
            XCTAssertEqual(cpu.pointee.eventCount(.gracePeriodWait), 1)
            XCTAssertEqual(k.mms.load(p), SlotState.free)
            XCTAssertEqual(k.mms.load(q), SlotState.free)
        }
    }
}

private extension Kernel {
    /// exit of the process running `mm`, which must succeed.
    func exit(_ mm: UInt32, _ cpu: CPU, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(exitProcess(slot: try XCTUnwrap(slot(of: mm), file: file, line: line), mm: mm, cpu), file: file, line: line)
    }
}
