import Synchronization

/// The free frames, split into memory nodes: one stretch of the frame
/// table per node, each with its own pool and its own reclaim clock.
///
/// A CPU allocates from its own node first (and from the others only when
/// its node is dry and theirs are above their reserve), and reclaims its
/// own node first, as Linux prefers the
/// local node and runs a kswapd per node. With the workload's locality a
/// worker's processes then live in its node's frames, and its reclaim walks
/// its own processes' page tables instead of pulling the other CPU's cache
/// lines over.
///
/// Ownership: the kernel owns it (pointer-backed, one word to copy).
struct FrameNodes: HandleSink, @unchecked Sendable {
    private let s: UnsafeMutablePointer<Storage>

    private struct Storage {
        /// One stretch of the frame table per node, each with its own pool.
        let stretches: NodePool
        /// Each node's clock hand, on lines of their own.
        let clockHands: PaddedArray<Atomic<UInt32>>
    }

    init(frames: Int, nodes: Int) {
        let stretches = NodePool(capacity: frames, nodes: max(1, min(nodes, frames)), minStretch: 1)
        let hands = PaddedArray<Atomic<UInt32>>(count: stretches.nodes)
        for i in 0..<stretches.nodes { hands[i].initialize(to: Atomic(0)) }
        s = .allocate(capacity: 1)
        s.initialize(to: Storage(stretches: stretches, clockHands: hands))
    }

    func destroy() {
        for i in 0..<count { s.pointee.clockHands[i].deinitialize(count: 1) }
        s.pointee.stretches.destroy()
        s.pointee.clockHands.deallocate()
        s.deinitialize(count: 1)
        s.deallocate()
    }

    var count: Int { s.pointee.stretches.nodes }

    @inline(__always) func pool(_ n: Int) -> HandlePool { s.pointee.stretches.part(n) }

    /// Free frames node `n` keeps for its own CPUs: another node's CPU
    /// takes from it only above this (Linux uses a remote zone only above
    /// its low watermark), until reclaim has failed. Without it, two CPUs
    /// under memory pressure take each other's freshly reclaimed frames
    /// and each one's reclaim works for the other.
    @inline(__always) func remoteReserve(_ n: Int) -> Int { pool(n).capacity / 8 }

    /// The node frame `f` belongs to.
    @inline(__always) func node(of f: UInt32) -> Int { s.pointee.stretches.node(of: f) }

    /// The frames of node `n`: first frame and how many.
    @inline(__always) func stretch(_ n: Int) -> (first: UInt32, count: Int) {
        let p = pool(n)
        return (UInt32(p.base + 1), p.capacity)
    }

    /// Claims `scan` frames of node `n`'s clock at once; returns the first
    /// offset into the node's stretch.
    @inline(__always) func advanceClock(_ n: Int, by scan: Int) -> UInt32 {
        s.pointee.clockHands[n].pointee.wrappingAdd(UInt32(truncatingIfNeeded: scan), ordering: .relaxed).oldValue
    }

    /// Free frames in the node pools (the per-CPU caches not counted).
    var available: Int { s.pointee.stretches.available }

    var inUse: Int { s.pointee.stretches.inUse }

    @discardableResult
    func put(_ h: UInt32) -> Bool { s.pointee.stretches.put(h) }

    /// Returns frames to their nodes' pools, a run of one node at a time.
    @discardableResult
    func put(batch n: Int, from src: UnsafePointer<UInt32>) -> Bool { s.pointee.stretches.put(batch: n, from: src) }
}
