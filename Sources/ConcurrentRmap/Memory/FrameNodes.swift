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
        let count: Int
        let nodeSize: Int
        let frames: Int
        let pools: UnsafeMutablePointer<HandlePool>
        /// Each node's clock hand, on lines of their own.
        let clockHands: PaddedArray<Atomic<UInt32>>
    }

    init(frames: Int, nodes: Int) {
        let n = max(1, min(nodes, frames))
        let size = frames / n
        let pools = UnsafeMutablePointer<HandlePool>.allocate(capacity: n)
        let hands = PaddedArray<Atomic<UInt32>>(count: n)
        for i in 0..<n {
            let lo = i * size
            let hi = i == n - 1 ? frames : (i + 1) * size
            (pools + i).initialize(to: HandlePool(capacity: hi - lo, base: lo))
            hands[i].initialize(to: Atomic(0))
        }
        s = .allocate(capacity: 1)
        s.initialize(to: Storage(count: n, nodeSize: size, frames: frames, pools: pools, clockHands: hands))
    }

    func destroy() {
        for i in 0..<count {
            s.pointee.pools[i].destroy()
            s.pointee.clockHands[i].deinitialize(count: 1)
        }
        s.pointee.pools.deinitialize(count: count)
        s.pointee.pools.deallocate()
        s.pointee.clockHands.deallocate()
        s.deinitialize(count: 1)
        s.deallocate()
    }

    var count: Int { s.pointee.count }

    @inline(__always) func pool(_ n: Int) -> HandlePool { s.pointee.pools[n] }

    /// Free frames node `n` keeps for its own CPUs: another node's CPU
    /// takes from it only above this (Linux uses a remote zone only above
    /// its low watermark), until reclaim has failed. Without it, two CPUs
    /// under memory pressure take each other's freshly reclaimed frames
    /// and each one's reclaim works for the other.
    @inline(__always) func remoteReserve(_ n: Int) -> Int { s.pointee.pools[n].capacity / 8 }

    /// The node frame `f` belongs to.
    @inline(__always) func node(of f: UInt32) -> Int { min(s.pointee.count - 1, (Int(f) - 1) / s.pointee.nodeSize) }

    /// The frames of node `n`: first frame and how many.
    @inline(__always) func stretch(_ n: Int) -> (first: UInt32, count: Int) {
        let p = s.pointee.pools[n]
        return (UInt32(p.base + 1), p.capacity)
    }

    /// Claims `scan` frames of node `n`'s clock at once; returns the first
    /// offset into the node's stretch.
    @inline(__always) func advanceClock(_ n: Int, by scan: Int) -> UInt32 {
        s.pointee.clockHands[n].pointee.wrappingAdd(UInt32(truncatingIfNeeded: scan), ordering: .relaxed).oldValue
    }

    /// Free frames in the node pools (the per-CPU caches not counted).
    var available: Int {
        var n = 0
        for i in 0..<count { n += s.pointee.pools[i].available }
        return n
    }

    var inUse: Int { s.pointee.frames - available }

    @discardableResult
    func put(_ h: UInt32) -> Bool { pool(node(of: h)).put(h) }

    /// Returns frames to their nodes' pools, a run of one node at a time.
    @discardableResult
    func put(batch n: Int, from src: UnsafePointer<UInt32>) -> Bool {
        var ok = true
        var i = 0
        while i < n {
            let node = node(of: src[i])
            var j = i + 1
            while j < n && self.node(of: src[j]) == node { j += 1 }
            ok = pool(node).put(batch: j - i, from: src + i) && ok
            i = j
        }
        return ok
    }
}
