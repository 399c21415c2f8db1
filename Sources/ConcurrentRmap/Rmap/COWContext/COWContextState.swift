import Synchronization

/// The COW context scheme's tables: one slab of contexts addressed by
/// integer handles (fields `COWCtx`, one cache line each, a mutex and an
/// rwlock per slot of which only a root's are taken) and, per mm, the
/// handle of its own context.
struct COWContextState {
    let slab: RCUSlab
    let ctxs: PaddedArray<COWCtx>
    let lock: MutexArray
    let rwlock: RWLockArray
    /// Per mm: its own context, set before the mm is reachable through the
    /// rmap (mmStarted, mmForked) and cleared at exit; 0 after a fork that
    /// found no context slot.
    let own: PaddedArray<Atomic<UInt32>>
    /// Remap records, `COWRecord.words` atomics per record, `maxRecords`
    /// per context slot (the slot's share of the slab: no allocation when a
    /// record is added). See `COWRecord`.
    let records: UnsafeMutablePointer<Atomic<UInt64>>
    /// Per mm: the mremap under way (only its mover, under its mmap lock
    /// for writing, reads or writes it).
    let moving: UnsafeMutablePointer<COWMove>
    let sync: ListSync
    /// Walkers take the tree lock (the proposal's "mapping-granularity
    /// lock"): under the lock modes and under `--sync rcu` with the locked
    /// walk; false for `--anon-vma-walk rcu-only` (the "crazier" variant).
    let walkLocked: Bool
    /// The tree lock is an rwsem (`--sync rwlock|rcu`) or a mutex.
    let treeRW: Bool
    let mmCapacity: Int

    /// Contexts outlive their mm while pages or descendants need them: a
    /// long fork chain whose ancestors exited keeps one per generation. Two
    /// per mm slot plus one per frame (a page pins at most one); a fork that
    /// finds none fails cleanly.
    static func capacity(_ config: MachineConfig) -> Int { config.mmSlots * 2 + config.frames }

    init(config: MachineConfig, log: ViolationLog) {
        let n = COWContextState.capacity(config)
        sync = config.sync
        walkLocked = config.sync != .rcu || config.anonVmaWalk == .locked
        treeRW = config.sync != .mutex
        mmCapacity = config.mmSlots
        slab = RCUSlab(kind: .contexts, capacity: n, nodes: config.nodes, log: log)
        ctxs = PaddedArray(count: n + 1)
        for i in 0...n { ctxs[i].initialize(to: COWCtx()) }
        lock = MutexArray(count: treeRW ? 1 : n + 1)
        rwlock = RWLockArray(count: treeRW ? n + 1 : 1)
        own = PaddedArray(count: mmCapacity + 1)
        for i in 0...mmCapacity { own[i].initialize(to: Atomic(0)) }
        let words = (n + 1) * COWRecord.max * COWRecord.words
        records = .allocate(capacity: words)
        for i in 0..<words { (records + i).initialize(to: Atomic(0)) }
        moving = .allocate(capacity: mmCapacity + 1)
        for i in 0...mmCapacity { (moving + i).initialize(to: COWMove()) }
    }

    func destroy() {
        let n = slab.capacity
        slab.destroy()
        for i in 0...n { ctxs[i].deinitialize(count: 1) }
        ctxs.deallocate()
        lock.destroy()
        rwlock.destroy()
        for i in 0...mmCapacity { own[i].deinitialize(count: 1) }
        own.deallocate()
        records.deinitialize(count: (n + 1) * COWRecord.max * COWRecord.words)
        records.deallocate()
        moving.deinitialize(count: mmCapacity + 1)
        moving.deallocate()
    }
}

/// One COW context: a node of the fork tree of contexts. Every field an
/// atomic (relaxed unless it publishes), for ThreadSanitizer's sake (a
/// plain store writes the whole struct).
struct COWCtx: ~Copyable {
    /// Parent context (0 for a root) and the tree's root, whose lock stands
    /// for the tree: fixed from set-up to free.
    let parent = Atomic<UInt32>(0)
    let root = Atomic<UInt32>(0)
    /// The live mm owning the context; 0 once it exited. Written under the
    /// tree lock (release), read by walkers (acquire).
    let mm = Atomic<UInt32>(0)
    /// Children in fork order: walkers follow `firstChild` and `next`
    /// (acquire); `lastChild` and `prev` are the writers'. A detached child
    /// keeps its `next`, so an RCU walker standing on it goes on.
    let firstChild = Atomic<UInt32>(0)
    let lastChild = Atomic<UInt32>(0)
    let next = Atomic<UInt32>(0)
    let prev = Atomic<UInt32>(0)
    /// Tree users: its live mm and its linked children. Under the tree
    /// lock; at zero the context leaves the tree (`linked` clears).
    let users = Atomic<Int32>(0)
    let linked = Atomic<UInt32>(0)
    /// Memory references: one while linked, one per page naming it, and, on
    /// a root, one per other allocated context of its tree. The last put
    /// retires the slot (grace period).
    let refcount = Atomic<Int32>(0)
    /// Generations from the root (statistics and the audit).
    let depth = Atomic<Int32>(0)
    /// Remap records published (0...`COWRecord.max`): appended only by the
    /// context's own mm under its mmap lock (write), released after the
    /// record's words; walkers acquire it and read records below it.
    let records = Atomic<UInt32>(0)
    /// The parent's `records` when this context was forked (fixed from
    /// set-up; fork holds the parent's mmap lock, so no parent record is
    /// being added): the parent's records from here on moved ranges in the
    /// parent only.
    let forkRecords = Atomic<UInt32>(0)
    /// On a root: records ever published in its tree (never decreases).
    /// Zero: the walk takes `page.index` as every mapping's address.
    let treeRecords = Atomic<UInt32>(0)
}

/// A remap record of a context: the context's mm moved `pages` pages from
/// `old` to `new` (virtual page numbers). Three words: old, new, and
/// `pages | state << 32`. Immutable once published but for its state:
/// pending while the mover is moving PTEs (a walker then tries both
/// addresses), done after the last one moved, cancelled when the move
/// failed and every PTE went back (the record then moves nothing).
enum COWRecord {
    static let max = 8
    static let words = 3
    static let done: UInt64 = 0
    static let pending: UInt64 = 1
    static let cancelled: UInt64 = 2
}

/// One mm's mremap under way (cow-context): the range and the record made
/// for it, if any. Touched only by the mover under its mmap lock (write);
/// atomics for ThreadSanitizer, since the mm slot is reused.
struct COWMove: ~Copyable {
    let oldStart = Atomic<UInt64>(0)
    let newStart = Atomic<UInt64>(0)
    let pages = Atomic<UInt32>(0)
    /// `none`, `full`, or the record number made for this move.
    let record = Atomic<Int32>(COWMove.none)
    /// Moving back after a failure: shared pages are kept, no record made.
    let back = Atomic<UInt32>(0)
    static let none: Int32 = -1
    /// No record slot left: shared pages are copied (the seed's rule).
    static let full: Int32 = -2
}
