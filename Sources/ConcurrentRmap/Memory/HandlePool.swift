import Synchronization

/// Where freed handles can be put back: a pool, or the frame nodes, which
/// route each frame to its node's pool.
protocol HandleSink {
    @discardableResult func put(_ h: UInt32) -> Bool
    @discardableResult func put(batch n: Int, from src: UnsafePointer<UInt32>) -> Bool
}

/// Where a per-CPU cache refills from: a pool (which ignores `node`), or a
/// `NodePool`, which prefers that node's stretch.
protocol HandleSource {
    func take(batch n: Int, into out: UnsafeMutablePointer<UInt32>, preferring node: Int) -> Int
    func markAllocated(_ h: UInt32)
}

/// A fixed pool of integer handles base+1...base+capacity (0 means "none").
///
/// Each memory node's frames have one (`FrameNodes`), and each node stretch
/// of every other slab (`NodePool`), behind per-CPU caches (`CPUCaches`) on
/// the hot paths. Handles are kept in a ring under one
/// pthread mutex and handed out in one of two orders:
/// - LIFO for frames, leaves and swap slots: a just-freed handle is still
///   warm in the cache;
/// - FIFO for slots that RCU readers reach (mms, groups): a freed slot goes
///   to the back of the queue and is reused only after every other free
///   slot, so a use after free lands on a slot that is still free (a
///   `lifetime` violation) instead of on its next occupant, where it would
///   be reported as something else. KASAN's quarantine does the same.
///
/// Ownership: the pool owns its storage; `destroy()` frees it. A handle is
/// owned by whoever allocated it until freed exactly once. The pool does
/// not track which handles are out: `NodePool` does, for the slabs whose
/// double frees must become violations rather than a corrupted ring.
struct HandlePool: HandleSink, HandleSource, @unchecked Sendable {
    enum Order { case lifo, fifo }

    private let ring: UnsafeMutablePointer<UInt32>
    /// head: next handle to pop (FIFO); count: handles in the ring.
    private let state: UnsafeMutablePointer<(head: Int, count: Int)>
    private let lock: MutexArray
    let capacity: Int
    /// Handles are base+1...base+capacity (a frame node's stretch).
    let base: Int
    let order: Order
    /// Readable without the lock (statistics, watermarks).
    private let freeCount: UnsafeMutablePointer<Atomic<Int>>

    init(capacity: Int, base: Int = 0, order: Order = .lifo) {
        self.capacity = capacity
        self.base = base
        self.order = order
        ring = .allocate(capacity: max(capacity, 1))
        state = .allocate(capacity: 1)
        freeCount = .allocate(capacity: 1)
        freeCount.initialize(to: Atomic(capacity))
        lock = MutexArray(count: 1)
        // Pop order 1, 2, 3... in both orders: LIFO pops from the end.
        switch order {
        case .lifo: for i in 0..<capacity { ring[i] = UInt32(base + capacity - i) }
        case .fifo: for i in 0..<capacity { ring[i] = UInt32(base + i + 1) }
        }
        state.initialize(to: (head: 0, count: capacity))
    }

    func destroy() {
        ring.deallocate()
        state.deallocate()
        freeCount.deinitialize(count: 1)
        freeCount.deallocate()
        lock.destroy()
    }

    @inline(__always) private func pop() -> UInt32 {
        let s = state.pointee
        switch order {
        case .lifo:
            state.pointee.count = s.count - 1
            return ring[s.count - 1]
        case .fifo:
            state.pointee = (head: (s.head + 1) % capacity, count: s.count - 1)
            return ring[s.head]
        }
    }

    @inline(__always) private func push(_ h: UInt32) {
        let s = state.pointee
        switch order {
        case .lifo: ring[s.count] = h
        case .fifo: ring[(s.head + s.count) % capacity] = h
        }
        state.pointee.count = s.count + 1
    }

    /// Nothing to mark: this pool does not track ownership (`NodePool` does).
    @inline(__always) func markAllocated(_ h: UInt32) {}

    @inline(__always) func contains(_ h: UInt32) -> Bool { Int(h) > base && Int(h) <= base + capacity }

    /// Pops a handle, or returns 0 when the pool is empty.
    func alloc() -> UInt32 {
        lock.lock(0)
        defer { lock.unlock(0) }
        guard state.pointee.count > 0 else { return 0 }
        let h = pop()
        freeCount.pointee.store(state.pointee.count, ordering: .relaxed)
        return h
    }

    /// Pops up to `n` handles into `out` (a per-CPU cache refilling);
    /// returns how many. They stay unowned until the cache hands each out.
    func take(batch n: Int, into out: UnsafeMutablePointer<UInt32>) -> Int {
        lock.lock(0)
        defer { lock.unlock(0) }
        let k = min(n, state.pointee.count)
        for i in 0..<k { out[i] = pop() }
        freeCount.pointee.store(state.pointee.count, ordering: .relaxed)
        return k
    }

    @inline(__always)
    func take(batch n: Int, into out: UnsafeMutablePointer<UInt32>, preferring node: Int) -> Int {
        take(batch: n, into: out)
    }

    /// Returns `h` to the pool. False (and nothing changes) when `h` is out
    /// of range or the pool is already full.
    @discardableResult
    func free(_ h: UInt32) -> Bool {
        guard contains(h) else { return false }
        return put(h)
    }

    /// Returns a handle to the pool (the per-CPU caches push theirs later,
    /// in batches).
    @discardableResult
    func put(_ h: UInt32) -> Bool {
        lock.lock(0)
        defer { lock.unlock(0) }
        guard state.pointee.count < capacity else { return false }
        push(h)
        freeCount.pointee.store(state.pointee.count, ordering: .relaxed)
        return true
    }

    /// Returns `n` handles from `src` (a per-CPU cache spilling or
    /// draining). False when that would overflow the pool (a double free).
    @discardableResult
    func put(batch n: Int, from src: UnsafePointer<UInt32>) -> Bool {
        lock.lock(0)
        defer { lock.unlock(0) }
        guard state.pointee.count + n <= capacity else { return false }
        for i in 0..<n { push(src[i]) }
        freeCount.pointee.store(state.pointee.count, ordering: .relaxed)
        return true
    }

    var available: Int { freeCount.pointee.load(ordering: .relaxed) }
    var inUse: Int { capacity - available }
}
