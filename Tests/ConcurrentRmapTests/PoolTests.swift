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
        let fifo = NodePool(capacity: 4, nodes: 1, order: .fifo, trackOwnership: true)
        defer { fifo.destroy() }
        XCTAssertEqual([fifo.alloc(), fifo.alloc()], [1, 2])
        XCTAssertTrue(fifo.free(1))
        XCTAssertEqual([fifo.alloc(), fifo.alloc(), fifo.alloc()], [3, 4, 1],
                       "FIFO reuses a freed slot only after every other free slot (quarantine)")
        XCTAssertEqual(fifo.alloc(), 0)
    }

    func testDoubleFreeAndOutOfRangeAreRefusedNotTrapped() {
        for nodes in [1, 2] {
            let p = NodePool(capacity: 128, nodes: nodes, order: .fifo, trackOwnership: true)
            defer { p.destroy() }
            let h = p.alloc()
            XCTAssertTrue(p.free(h))
            XCTAssertFalse(p.free(h), "a double free is refused")
            XCTAssertFalse(p.free(0))
            XCTAssertFalse(p.free(129), "a handle out of range is refused")
            XCTAssertEqual(p.available, 128, "the pool is unharmed")
            var out = [UInt32](repeating: 0, count: 4)
            let got = out.withUnsafeMutableBufferPointer { p.take(batch: 4, into: $0.baseAddress!, preferring: 0) }
            XCTAssertEqual(got, 4)
            XCTAssertTrue(out.allSatisfy { !p.isAllocated($0) }, "taken into a cache is not yet owned")
            out.forEach(p.markAllocated)
            XCTAssertTrue(out.allSatisfy { p.release($0) })
            XCTAssertFalse(p.release(out[0]), "released twice")
            XCTAssertTrue(out.withUnsafeBufferPointer { p.put(batch: 4, from: $0.baseAddress!) })
        }
    }

    /// Each node's CPUs refill from the node's own stretch of handles, and
    /// a freed handle goes back to the stretch it came from, so per-handle
    /// words (many to a cache line) stay with one CPU. Another stretch is
    /// used only when the home one is empty.
    func testNodeStretchesKeepHandlesApart() {
        let p = NodePool(capacity: 256, nodes: 2, order: .fifo, trackOwnership: true)
        defer { p.destroy() }
        XCTAssertEqual(p.nodes, 2)
        var a = [UInt32](repeating: 0, count: 100), b = a
        let gotA = a.withUnsafeMutableBufferPointer { p.take(batch: 100, into: $0.baseAddress!, preferring: 0) }
        let gotB = b.withUnsafeMutableBufferPointer { p.take(batch: 100, into: $0.baseAddress!, preferring: 1) }
        XCTAssertEqual(gotA, 100)
        XCTAssertEqual(gotB, 100)
        XCTAssertTrue(a.allSatisfy { (1...128).contains($0) }, "node 0's stretch")
        XCTAssertTrue(b.allSatisfy { (129...256).contains($0) }, "node 1's stretch")
        XCTAssertEqual(p.take(batch: 3, into: &a, preferring: 2), 3, "node 2 wraps to stretch 0")
        XCTAssertTrue(a.prefix(3).allSatisfy { (1...128).contains($0) })
        // A mixed batch goes back stretch by stretch.
        let mixed: [UInt32] = [b[0], a[0], b[1], a[1]]
        XCTAssertTrue(mixed.withUnsafeBufferPointer { p.put(batch: 4, from: $0.baseAddress!) })
        // Stretch 1 has 28 + 2 free; taking them all, then more, falls back to stretch 0.
        var rest = [UInt32](repeating: 0, count: 64)
        XCTAssertEqual(rest.withUnsafeMutableBufferPointer { p.take(batch: 64, into: $0.baseAddress!, preferring: 1) }, 30)
        XCTAssertTrue(rest.prefix(30).allSatisfy { (129...256).contains($0) })
        XCTAssertEqual(Array(rest[28..<30]), [b[0], b[1]], "FIFO within the stretch: the freed ones come last")
        XCTAssertEqual(rest.withUnsafeMutableBufferPointer { p.take(batch: 64, into: $0.baseAddress!, preferring: 1) }, 27,
                       "stretch 1 is empty: stretch 0's 25 + 2 free handles")
        XCTAssertEqual(p.available, 0)
        XCTAssertEqual(p.alloc(), 0)
    }

    /// A pool too small for two stretches of 64 keeps one.
    func testSmallPoolKeepsOneStretch() {
        let p = NodePool(capacity: 100, nodes: 4)
        defer { p.destroy() }
        XCTAssertEqual(p.nodes, 1)
        var out = [UInt32](repeating: 0, count: 100)
        XCTAssertEqual(out.withUnsafeMutableBufferPointer { p.take(batch: 100, into: $0.baseAddress!, preferring: 3) }, 100)
        XCTAssertEqual(Set(out).count, 100)
    }

    /// A slot retired twice is a violation; the CPU's queue of batches
    /// waiting for a grace period never sees the second retire.
    func testRCUSlabRetiresOnce() throws {
        try withMachine(.small(), expectNoViolations: false) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: p)), mm: p, cpu))
            XCTAssertEqual(k.mms.load(p), SlotState.rcuPending)
            XCTAssertFalse(k.retire(k.mms, p, from: SlotState.dying, cpu), "the slot is no longer dying")
            k.flushRetired(cpu)
            let b = try XCTUnwrap(cpu.pointee.awaitingGracePeriod, "the batch waits for the CPU's grace period")
            XCTAssertNil(b.pointee.next, "one batch")
            let mmTarget = k.mms.freeTarget
            let retiredMMs = (0..<b.pointee.count).filter { b.pointee.items[$0].target == mmTarget && b.pointee.items[$0].handle == p }
            XCTAssertEqual(retiredMMs.count, 1, "only the first retire of the mm")
            // A second "last user": reported, not torn down again.
            k.spaces.users[Int(p)].pointee.store(1, ordering: .relaxed)
            k.mmPut(p, cpu)
            XCTAssertEqual(m.violations.map(\.kind), [.lifetime])
            XCTAssertTrue(m.violations[0].detail.contains("lost its last user again"), m.violations[0].detail)
        }
    }

    /// kswapd's check counts the node's pool and the CPU's own cache, not
    /// frames parked in other CPUs' caches (Linux leaves its per-CPU lists
    /// out of the watermarks too), so it never reads their cache lines.
    func testWatermarkCountsOwnCacheNotOthers() throws {
        var c = MachineConfig.small(frames: 256)
        c.expectedCPUs = 1  // one node, big caches
        try withMachine(c) { m, cpu in
            let k = m.kernel
            let other = m.makeCPU(id: 10, seed: 1)
            defer { m.releaseCPU(other) }
            k.put(k.allocFrame(other), other)
            let parked = k.caches.count(other.pointee.cacheSlot, .frames).pointee.load(ordering: .relaxed)
            XCTAssertGreaterThan(parked, 1)
            XCTAssertEqual(m.freeFrames, 256, "parked frames are free")
            XCTAssertTrue(k.freeFramesBelow(256 - parked + 1, cpu: cpu), "another CPU's cache does not count")
            XCTAssertFalse(k.freeFramesBelow(256 - parked, cpu: cpu))
            k.put(k.allocFrame(cpu), cpu)
            let own = k.caches.count(cpu.pointee.cacheSlot, .frames).pointee.load(ordering: .relaxed)
            XCTAssertGreaterThan(own, 1)
            XCTAssertFalse(k.freeFramesBelow(256 - parked, cpu: cpu), "the CPU's own cache counts")
            XCTAssertTrue(k.freeFramesBelow(256 - parked + 1, cpu: cpu))
            XCTAssertTrue(k.freeFramesBelow(256, cpu: other), "the other CPU sees it the other way round")
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
}
