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
}
