import Synchronization

/// A pool of handles 1...capacity split into contiguous stretches, one per
/// memory node, each a `HandlePool` with its own lock and order; behind
/// every slab that is not frames (page-table leaves, swap slots, mm, VMA,
/// anongroup and anon_vma slots, fork families).
///
/// Why: per-object words of these slabs live in plain arrays indexed by
/// handle (ownership bytes, slot generations, VMA records, group tails,
/// swap counts, leaf use counts), many to a cache line. From one shared
/// pool, handles freed by one CPU are soon handed to another, so after a
/// while neighbouring handles belong to different CPUs and every write to
/// them moves a line between CPUs. Linux's slab keeps per-node partial
/// lists for the same reason. Here a CPU's cache refills from its own
/// node's stretch first and a freed handle goes back to the stretch it
/// came from, so a worker's objects stay on lines of their own; the other
/// stretches are used only when its own is empty.
///
/// Order per stretch: FIFO slabs keep their quarantine (a freed slot is
/// reused after every other free slot of its stretch).
///
/// Ownership: the pool owns its stretches and the allocated bytes (one
/// array for all stretches, so marking needs no stretch lookup);
/// `destroy()` frees them. A handle is owned by whoever allocated it until
/// freed exactly once; with `trackOwnership` a second free, or a handle out
/// of range, is refused (false) for the caller to report.
struct NodePool: HandleSink, HandleSource, @unchecked Sendable {
    private let parts: UnsafeMutablePointer<HandlePool>
    /// 1 while a handle is owned by a user (not in a stretch or a per-CPU
    /// cache). Only with `trackOwnership`.
    private let allocated: UnsafeMutablePointer<Atomic<UInt8>>?
    let capacity: Int
    let nodes: Int
    private let stretch: Int

    /// `nodes` is capped so that each stretch holds at least `minStretch`
    /// handles (by default 64: a few per-CPU refills).
    init(capacity: Int, nodes: Int, order: HandlePool.Order = .lifo, trackOwnership: Bool = false, minStretch: Int = 64) {
        self.capacity = capacity
        let n = max(1, min(nodes, capacity / max(1, minStretch)))
        self.nodes = n
        stretch = max(1, capacity / n)
        parts = .allocate(capacity: n)
        for i in 0..<n {
            let lo = i * stretch
            let hi = i == n - 1 ? capacity : (i + 1) * stretch
            (parts + i).initialize(to: HandlePool(capacity: hi - lo, base: lo, order: order))
        }
        if trackOwnership {
            let a = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: capacity + 1)
            for i in 0...capacity { (a + i).initialize(to: Atomic(0)) }
            allocated = a
        } else {
            allocated = nil
        }
    }

    func destroy() {
        for i in 0..<nodes { parts[i].destroy() }
        parts.deinitialize(count: nodes)
        parts.deallocate()
        if let allocated {
            allocated.deinitialize(count: capacity + 1)
            allocated.deallocate()
        }
    }

    /// The stretch handle `h` (in range) belongs to.
    @inline(__always) func node(of h: UInt32) -> Int { min(nodes - 1, (Int(h) - 1) / stretch) }

    /// Stretch `n`'s own pool (its handles are `base+1...base+capacity`).
    @inline(__always) func part(_ n: Int) -> HandlePool { parts[n] }

    @inline(__always) func contains(_ h: UInt32) -> Bool { h >= 1 && Int(h) <= capacity }

    /// Marks `h` as owned by a user (a handle taken from a per-CPU cache).
    @inline(__always) func markAllocated(_ h: UInt32) {
        allocated?[Int(h)].store(1, ordering: .relaxed)
    }

    /// Claims `h` back from its owner: false when it is out of range or not
    /// allocated (already freed).
    @inline(__always) func release(_ h: UInt32) -> Bool {
        guard contains(h) else { return false }
        guard let allocated else { return true }
        return allocated[Int(h)].exchange(0, ordering: .relaxed) == 1
    }

    /// Whether `h` is allocated (only meaningful with ownership tracking).
    func isAllocated(_ h: UInt32) -> Bool {
        guard contains(h) else { return false }
        return allocated.map { $0[Int(h)].load(ordering: .relaxed) == 1 } ?? true
    }

    /// Pops a handle, from any stretch (the first that has one); 0 when
    /// every stretch is empty.
    func alloc() -> UInt32 {
        for i in 0..<nodes {
            let h = parts[i].alloc()
            if h != 0 { markAllocated(h); return h }
        }
        return 0
    }

    /// Takes up to `n` handles into `out` for a per-CPU cache: from the
    /// stretch of `node` (modulo the stretches), or, when that one is
    /// empty, from the next that is not. They stay unowned until the cache
    /// hands each out.
    func take(batch n: Int, into out: UnsafeMutablePointer<UInt32>, preferring node: Int) -> Int {
        let home = node % nodes
        for k in 0..<nodes {
            let got = parts[(home + k) % nodes].take(batch: n, into: out)
            if got > 0 { return got }
        }
        return 0
    }

    /// Returns `h` to the pool. False (and nothing changes) when `h` is out
    /// of range or not allocated: the caller reports the double free.
    @discardableResult
    func free(_ h: UInt32) -> Bool {
        guard release(h) else { return false }
        return put(h)
    }

    /// Returns a handle already claimed with `release` to its stretch.
    @discardableResult
    func put(_ h: UInt32) -> Bool {
        guard contains(h) else { return false }
        return parts[node(of: h)].put(h)
    }

    /// Returns `n` claimed handles, a run of one stretch at a time. False
    /// when that would overflow a stretch (a double free that ownership
    /// tracking was not on to catch).
    @discardableResult
    func put(batch n: Int, from src: UnsafePointer<UInt32>) -> Bool {
        var ok = true
        var i = 0
        while i < n {
            guard contains(src[i]) else { ok = false; i += 1; continue }
            let part = node(of: src[i])
            var j = i + 1
            while j < n && contains(src[j]) && node(of: src[j]) == part { j += 1 }
            ok = parts[part].put(batch: j - i, from: src + i) && ok
            i = j
        }
        return ok
    }

    var available: Int {
        var n = 0
        for i in 0..<nodes { n += parts[i].available }
        return n
    }

    var inUse: Int { capacity - available }
}
