import XCTest
@testable import ConcurrentRmap

/// Pools, per-CPU caches and RCU slabs: the model's bookkeeping must turn
/// its own corruption into violations, not traps, and free frames parked in
/// other CPUs' caches must still be found before memory is declared full.
final class PoolTests: XCTestCase {
    func testLIFOAndFIFOOrders() {
        let lifo = HandlePool(capacity: 4)
        defer { lifo.destroy() }
        XCTAssertEqual([lifo.alloc(), lifo.alloc()], [1, 2])
        lifo.free(1)
        XCTAssertEqual(lifo.alloc(), 1, "LIFO hands the warm handle back")
        let fifo = HandlePool(capacity: 4, order: .fifo, trackOwnership: true)
        defer { fifo.destroy() }
        XCTAssertEqual([fifo.alloc(), fifo.alloc()], [1, 2])
        XCTAssertTrue(fifo.free(1))
        XCTAssertEqual([fifo.alloc(), fifo.alloc(), fifo.alloc()], [3, 4, 1],
                       "FIFO reuses a freed slot only after every other free slot (quarantine)")
        XCTAssertEqual(fifo.alloc(), 0)
    }

    func testDoubleFreeAndOutOfRangeAreRefusedNotTrapped() {
        let p = HandlePool(capacity: 4, order: .fifo, trackOwnership: true)
        defer { p.destroy() }
        let h = p.alloc()
        XCTAssertTrue(p.free(h))
        XCTAssertFalse(p.free(h), "a double free is refused")
        XCTAssertFalse(p.free(0))
        XCTAssertFalse(p.free(99), "a handle out of range is refused")
        XCTAssertEqual(p.available, 4, "the pool is unharmed")
    }

    /// A slot retired twice is a violation; liburcu's queue never sees the
    /// second call_rcu.
    func testRCUSlabRetiresOnce() throws {
        try withMachine(.small(), expectNoViolations: false) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: p)), mm: p, cpu))
            XCTAssertEqual(k.mms.load(p), SlotState.rcuPending)
            let queued = RCU.callbacksQueued
            XCTAssertFalse(k.retire(k.mms, p, from: SlotState.dying, cpu), "the slot is no longer dying")
            k.flushRetired(cpu)
            XCTAssertEqual(RCU.callbacksQueued, queued + 1, "one call_rcu: the batch with the first retire")
            // A second "last user": reported, not torn down again.
            k.spaces.users[Int(p)].pointee.store(1, ordering: .relaxed)
            k.mmPut(p, cpu)
            XCTAssertEqual(m.violations.map(\.kind), [.lifetime])
            XCTAssertTrue(m.violations[0].detail.contains("lost its last user again"), m.violations[0].detail)
        }
    }

    /// Seven CPUs park frames in their caches; an eighth still gets every
    /// free frame (the caches are drained before memory counts as full),
    /// and the parked frames count as free meanwhile.
    func testFramesParkedInOtherCPUsCachesAreFound() throws {
        var c = MachineConfig.small(frames: 256)
        c.expectedCPUs = 1  // big caches: 32 frames each
        try withMachine(c) { m, cpu in
            let k = m.kernel
            var others: [CPU] = []
            for i in 0..<7 {
                let o = m.makeCPU(id: 10 + i, seed: 1)
                others.append(o)
                // Take a batch and give it back: it stays parked in o's cache.
                let f = k.allocFrame(o)
                XCTAssertNotEqual(f, 0)
                k.put(f, o)
            }
            XCTAssertGreaterThan(k.caches.cachedCount(.frames), 7 * 8)
            XCTAssertEqual(m.freeFrames, 256, "parked frames are free")
            XCTAssertEqual(m.framesInUse, 0)
            var got: [UInt32] = []
            while true {
                let f = k.allocFrame(cpu)
                if f == 0 { break }
                got.append(f)
            }
            XCTAssertEqual(got.count, 256, "every frame, the parked ones included")
            XCTAssertEqual(Set(got).count, 256)
            for f in got { k.put(f, cpu) }
            for o in others { m.releaseCPU(o) }
        }
    }

    /// Switching the flavor first waits for callbacks queued on the old one
    /// (its call_rcu thread would otherwise run them on freed memory).
    func testFlavorSwitchWaitsForPendingCallbacks() throws {
        XCTAssertTrue(RCU.select(.memb))
        defer { XCTAssertTrue(RCU.select(.memb)) }
        let m = try Machine(config: .small())
        RCU.registerThread()
        let cpu = m.makeCPU(id: 0, seed: 1)
        for _ in 0..<20 {
            XCTAssertTrue(m.spawnProcess(cpu: cpu))
            let p = try XCTUnwrap(m.pinProcess(near: 0, cpu: cpu))
            XCTAssertTrue(m.exit(p, cpu: cpu))
            m.unpin(p, cpu: cpu)
        }
        m.releaseCPU(cpu)
        RCU.unregisterThread()
        XCTAssertTrue(RCU.select(.qsbr))
        XCTAssertEqual(RCU.callbacksRun, RCU.callbacksQueued, "memb's callbacks ran before the switch")
        _ = m  // the machine barriers its own flavor (memb) when it goes
    }
}
