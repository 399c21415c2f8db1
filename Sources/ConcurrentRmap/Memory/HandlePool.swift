import Synchronization

/// A fixed pool of integer handles 1...capacity (0 means "none").
///
/// Backs every slab in the model (mms, anongroups, page-table leaves, swap
/// slots and the global frame list). A LIFO stack under one pthread mutex:
/// allocation is off the fault fast path everywhere except frames, which put
/// per-CPU magazines in front of it (Kernel.allocFrame / freePage).
///
/// Ownership: the pool owns its storage; `destroy()` frees it. A handle is
/// owned by whoever popped it until pushed back exactly once. A double free
/// traps only when it would overflow the pool; the audit and the leak check
/// catch the rest by recounting.
struct HandlePool: @unchecked Sendable {
    private let stack: UnsafeMutablePointer<UInt32>
    private let top: UnsafeMutablePointer<Int>
    private let lock: MutexArray
    let capacity: Int
    /// Readable without the lock (statistics, leak check at rest).
    private let freeCount: UnsafeMutablePointer<Atomic<Int>>

    init(capacity: Int) {
        self.capacity = capacity
        stack = .allocate(capacity: max(capacity, 1))
        top = .allocate(capacity: 1)
        freeCount = .allocate(capacity: 1)
        freeCount.initialize(to: Atomic(capacity))
        lock = MutexArray(count: 1)
        // Pop order 1, 2, 3...: the stack holds capacity at the bottom.
        for i in 0..<capacity { stack[i] = UInt32(capacity - i) }
        top.pointee = capacity
    }

    func destroy() {
        stack.deallocate()
        top.deallocate()
        freeCount.deinitialize(count: 1)
        freeCount.deallocate()
        lock.destroy()
    }

    /// Pops a handle, or returns 0 when the pool is empty.
    func alloc() -> UInt32 {
        lock.lock(0)
        defer { lock.unlock(0) }
        guard top.pointee > 0 else { return 0 }
        top.pointee -= 1
        freeCount.pointee.store(top.pointee, ordering: .relaxed)
        return stack[top.pointee]
    }

    /// Pops up to `n` handles into `out`; returns how many.
    func alloc(batch n: Int, into out: UnsafeMutablePointer<UInt32>) -> Int {
        lock.lock(0)
        defer { lock.unlock(0) }
        let k = min(n, top.pointee)
        for i in 0..<k { out[i] = stack[top.pointee - 1 - i] }
        top.pointee -= k
        freeCount.pointee.store(top.pointee, ordering: .relaxed)
        return k
    }

    func free(_ h: UInt32) {
        lock.lock(0)
        defer { lock.unlock(0) }
        precondition(top.pointee < capacity, "HandlePool: double free of handle \(h)")
        stack[top.pointee] = h
        top.pointee += 1
        freeCount.pointee.store(top.pointee, ordering: .relaxed)
    }

    func free(batch n: Int, from src: UnsafePointer<UInt32>) {
        lock.lock(0)
        defer { lock.unlock(0) }
        precondition(top.pointee + n <= capacity, "HandlePool: double free")
        for i in 0..<n { stack[top.pointee + i] = src[i] }
        top.pointee += n
        freeCount.pointee.store(top.pointee, ordering: .relaxed)
    }

    var available: Int { freeCount.pointee.load(ordering: .relaxed) }
    var inUse: Int { capacity - available }
}
