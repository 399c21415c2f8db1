import Synchronization

/// The pools that per-CPU caches front. Raw values index a CPU's cache block.
enum CacheKind: Int, CaseIterable {
    /// Frames, page-table leaves, swap slots, mm slots, VMA slots, the rmap
    /// scheme's contexts (anongroups or anon_vmas) and fork families.
    case frames, leaves, swapSlots, mms, vmas, contexts, families

    /// Slots that RCU readers reach (`RCUSlab`): freed only after a grace
    /// period.
    var freedAfterGracePeriod: Bool { self == .mms || self == .vmas || self == .contexts }

    var name: String {
        switch self {
        case .frames: "frame"
        case .leaves: "page-table leaf"
        case .swapSlots: "swap slot"
        case .mms: "mm slot"
        case .vmas: "VMA slot"
        case .contexts: "rmap context slot"
        case .families: "family slot"
        }
    }
}

/// Per-CPU caches of free handles in front of the global pools (Linux's
/// per-cpu page lists, and its slab caches' per-cpu arrays): the common
/// allocation and free touch only the CPU's own cache lines, and a pool's
/// mutex is taken once per batch.
///
/// Layout: one block per CPU slot, allocated with the machine and never
/// moved or freed while it lives, so another CPU may look at any block at
/// any time. A block is a header line (a lock word and one count per kind)
/// followed by the cached handles of every kind.
///
/// Locking: a CPU takes its own block's lock for each allocation or free
/// (uncontended: the line is its own). Another CPU only ever *tries* the
/// lock, to drain the block into the pools when a pool runs dry (as Linux
/// drains the pcp lists before declaring out of memory). Lock order:
/// cache lock -> pool mutex. Every remote acquisition is a trylock, so two
/// CPUs draining each other cannot deadlock. Frames parked in a cache are
/// free: `cachedCount` lets the watermark and the statistics count them so.
struct CPUCaches: @unchecked Sendable {
    let slots: Int
    /// Capacity of each kind's cache, and the offset of its handles in a
    /// block, by kind. Pointers, not arrays: this struct is copied with the
    /// kernel into every worker, and an array would add ARC traffic on a
    /// shared reference count to every copy.
    let capacity: UnsafeMutablePointer<Int>
    private let offset: UnsafeMutablePointer<Int>
    private let handlesPerBlock: Int
    private let headers: UnsafeMutableRawPointer
    private let handles: UnsafeMutablePointer<UInt32>
    /// CPU slots handed out (a CPU slot is reused after its CPU is released).
    let registry: HandlePool
    /// Highest CPU slot ever handed out: the drains and sums look no further.
    private let high: UnsafeMutablePointer<Atomic<Int>>

    static let headerSize = CacheLine.size

    init(slots: Int, frameCache: Int) {
        self.slots = slots
        let caps: [Int] = CacheKind.allCases.map { k in
            switch k {
            case .frames: frameCache
            case .leaves: 16
            case .swapSlots: 32
            case .mms, .vmas, .contexts, .families: 16
            }
        }
        capacity = .allocate(capacity: caps.count)
        capacity.initialize(from: caps, count: caps.count)
        offset = .allocate(capacity: caps.count)
        var total = 0
        for (i, c) in caps.enumerated() { offset[i] = total; total += c }
        handlesPerBlock = total
        headers = UnsafeMutableRawPointer.allocate(byteCount: (slots + 1) * CPUCaches.headerSize, alignment: CacheLine.size)
        headers.initializeMemory(as: UInt8.self, repeating: 0, count: (slots + 1) * CPUCaches.headerSize)
        handles = CacheLine.allocate(UInt32.self, count: (slots + 1) * total)
        handles.initialize(repeating: 0, count: (slots + 1) * total)
        registry = HandlePool(capacity: slots)
        high = .allocate(capacity: 1)
        high.initialize(to: Atomic(0))
    }

    func destroy() {
        capacity.deallocate()
        offset.deallocate()
        headers.deallocate()
        handles.deallocate()
        registry.destroy()
        high.deinitialize(count: 1)
        high.deallocate()
    }

    @inline(__always) private func lockWord(_ s: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (headers + s * CPUCaches.headerSize).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// The number of `kind` handles cached by CPU slot `s`. Written under
    /// that slot's lock; read anywhere (relaxed) for statistics.
    @inline(__always) func count(_ s: Int, _ kind: CacheKind) -> UnsafeMutablePointer<Atomic<Int>> {
        (headers + s * CPUCaches.headerSize + 8 + kind.rawValue * 8).assumingMemoryBound(to: Atomic<Int>.self)
    }

    @inline(__always) func handles(_ s: Int, _ kind: CacheKind) -> UnsafeMutablePointer<UInt32> {
        handles + s * handlesPerBlock + offset[kind.rawValue]
    }

    /// Takes a CPU slot for a new CPU; 0 when all are in use.
    func register() -> Int {
        let s = Int(registry.alloc())
        guard s != 0 else { return 0 }
        var h = high.pointee.load(ordering: .relaxed)
        while h < s {
            let (done, now) = high.pointee.compareExchange(expected: h, desired: s, ordering: .relaxed)
            if done { break }
            h = now
        }
        return s
    }

    /// Gives a drained CPU slot back.
    func unregister(_ s: Int) { registry.free(UInt32(s)) }

    @inline(__always) func lock(_ s: Int) {
        while lockWord(s).pointee.exchange(1, ordering: .acquiring) != 0 { cpuRelax() }
    }

    @inline(__always) func tryLock(_ s: Int) -> Bool {
        lockWord(s).pointee.exchange(1, ordering: .acquiring) == 0
    }

    @inline(__always) func unlock(_ s: Int) { lockWord(s).pointee.store(0, ordering: .releasing) }

    /// Pops a cached handle of slot `s` (its lock held) and marks it owned
    /// in `pool`; 0 when empty.
    @inline(__always) func pop<Source: HandleSource>(_ s: Int, _ kind: CacheKind, of pool: Source) -> UInt32 {
        let c = count(s, kind)
        let n = c.pointee.load(ordering: .relaxed)
        guard n > 0 else { return 0 }
        c.pointee.store(n - 1, ordering: .relaxed)
        let h = handles(s, kind)[n - 1]
        pool.markAllocated(h)
        return h
    }

    /// Refills slot `s`'s cache (its lock held, cache empty) with half its
    /// capacity from `pool`; returns how many came.
    func refill<Source: HandleSource>(_ s: Int, _ kind: CacheKind, from pool: Source, node: Int = 0) -> Int {
        let n = pool.take(batch: max(1, capacity[kind.rawValue] / 2), into: handles(s, kind), preferring: node)
        count(s, kind).pointee.store(n, ordering: .relaxed)
        return n
    }

    /// Pushes a handle into slot `s`'s cache (its lock held), spilling half
    /// to `pool` when full. False when the pool overflowed (a double free).
    @inline(__always) func push<Sink: HandleSink>(_ s: Int, _ kind: CacheKind, _ h: UInt32, spillTo pool: Sink) -> Bool {
        let c = count(s, kind)
        var n = c.pointee.load(ordering: .relaxed)
        let cap = capacity[kind.rawValue]
        var ok = true
        if n == cap {
            let keep = cap / 2
            ok = pool.put(batch: n - keep, from: handles(s, kind) + keep)
            n = keep
        }
        handles(s, kind)[n] = h
        c.pointee.store(n + 1, ordering: .relaxed)
        return ok
    }

    /// Returns every cached handle of `kind` in slot `s` (its lock held).
    func spillAll<Sink: HandleSink>(_ s: Int, _ kind: CacheKind, to pool: Sink) {
        let c = count(s, kind)
        let n = c.pointee.load(ordering: .relaxed)
        if n > 0 { pool.put(batch: n, from: handles(s, kind)) }
        c.pointee.store(0, ordering: .relaxed)
    }

    /// Drains other CPUs' caches of `kind` into `pool`, skipping any whose
    /// lock is held (that CPU is using its cache right now). Returns how
    /// many handles came back.
    func drainOthers<Sink: HandleSink>(_ kind: CacheKind, except me: Int, to pool: Sink) -> Int {
        var got = 0
        let h = high.pointee.load(ordering: .relaxed)
        guard h >= 1 else { return 0 }
        for s in 1...h where s != me {
            guard count(s, kind).pointee.load(ordering: .relaxed) > 0, tryLock(s) else { continue }
            got += count(s, kind).pointee.load(ordering: .relaxed)
            spillAll(s, kind, to: pool)
            unlock(s)
        }
        return got
    }

    /// Handles of `kind` parked in all CPUs' caches (racy, for statistics
    /// and watermarks: they are free).
    func cachedCount(_ kind: CacheKind) -> Int {
        var n = 0
        let h = high.pointee.load(ordering: .relaxed)
        guard h >= 1 else { return 0 }
        for s in 1...h { n += count(s, kind).pointee.load(ordering: .relaxed) }
        return n
    }
}
