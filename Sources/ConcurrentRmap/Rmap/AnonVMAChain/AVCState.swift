import Synchronization

/// The anon_vma_chain scheme's tables (Rik van Riel, Linux 2.6.34; the
/// root lock of 2.6.36; the counted reuse rule of 6.2): two slabs of
/// objects addressed by integer handles, and a chain head per VMA.
///
/// - anon_vmas (`avSlab`, per-CPU cached as the scheme's contexts): the
///   fields of `AVCAnonVMA`, one cache line each, and a mutex and an rwlock
///   per slot of which only a root's are ever taken;
/// - anon_vma_chain objects (`avcSlab`, handles from its pool): the fields
///   of `AVCLink`;
/// - per VMA (by VMA handle): its chain, `AVCChain`.
struct AVCState {
    let avSlab: RCUSlab
    let anonVMAs: PaddedArray<AVCAnonVMA>
    let lock: MutexArray
    /// Only allocated per anon_vma when the root lock is the rwsem.
    let rwlock: RWLockArray
    let avcSlab: RCUSlab
    let avcs: UnsafeMutablePointer<AVCLink>
    let chains: UnsafeMutablePointer<AVCChain>
    let sync: ListSync
    /// Walkers take the root lock for reading: under the lock modes, and
    /// under `--sync rcu` with the kernel's walk (`--anon-vma-walk locked`,
    /// the default); false for the RCU-only what-if.
    let walkLocked: Bool
    /// The root lock is the rwsem of 3.8+ (`--sync rwlock`, and `--sync
    /// rcu`, which models today's kernel); the mutex of 2.6.36-3.7 under
    /// `--sync mutex`.
    let rootRW: Bool
    let reuse: Bool
    let vmaCapacity: Int

    /// Slots: anon_vmas outlive their VMA while a descendant's VMA still
    /// links to them, so twice the VMA slots (a fork that finds none backs
    /// off); a chain is as long as the VMA's ancestry, so eight AVCs per
    /// VMA slot.
    static func anonVMACapacity(_ config: MachineConfig) -> Int { config.vmaCount * 2 }
    static func avcCapacity(_ config: MachineConfig) -> Int { config.vmaCount * 8 }

    init(config: MachineConfig, log: ViolationLog) {
        let nav = AVCState.anonVMACapacity(config)
        let navc = AVCState.avcCapacity(config)
        vmaCapacity = config.vmaCount
        sync = config.sync
        walkLocked = config.sync != .rcu || config.anonVmaWalk == .locked
        rootRW = config.sync != .mutex
        reuse = config.anonVmaReuse
        avSlab = RCUSlab(kind: .contexts, capacity: nav, nodes: config.nodes, log: log)
        anonVMAs = PaddedArray(count: nav + 1)
        for i in 0...nav { anonVMAs[i].initialize(to: AVCAnonVMA()) }
        lock = MutexArray(count: nav + 1)
        rwlock = RWLockArray(count: rootRW ? nav + 1 : 1)
        avcSlab = RCUSlab(kind: .contexts, capacity: navc, nodes: config.nodes, log: log)
        avcs = CacheLine.allocate(AVCLink.self, count: navc + 1)
        for i in 0...navc { (avcs + i).initialize(to: AVCLink()) }
        chains = CacheLine.allocate(AVCChain.self, count: vmaCapacity + 1)
        for i in 0...vmaCapacity { (chains + i).initialize(to: AVCChain()) }
    }

    func destroy() {
        let nav = avSlab.capacity, navc = avcSlab.capacity
        avSlab.destroy()
        avcSlab.destroy()
        for i in 0...nav { anonVMAs[i].deinitialize(count: 1) }
        anonVMAs.deallocate()
        lock.destroy()
        rwlock.destroy()
        avcs.deinitialize(count: navc + 1)
        avcs.deallocate()
        chains.deinitialize(count: vmaCapacity + 1)
        chains.deallocate()
    }
}

/// struct anon_vma. Every field an atomic (relaxed unless it publishes):
/// a plain store would be a modifying access of the whole struct for
/// ThreadSanitizer, overlapping the walkers' atomic reads of `first`.
struct AVCAnonVMA: ~Copyable {
    /// The anon_vma's set of AVCs (the kernel's interval tree; a list here):
    /// `first` for walkers (acquire), `last` and `count` for writers, all
    /// written under the root's lock.
    let first = Atomic<UInt32>(0)
    let last = Atomic<UInt32>(0)
    let count = Atomic<Int32>(0)
    /// The tree's root, whose lock stands for every anon_vma of the tree,
    /// and the parent (a root is its own parent): fixed from set-up to free.
    let root = Atomic<UInt32>(0)
    let parent = Atomic<UInt32>(0)
    /// One reference while the set is not empty, and one from each other
    /// anon_vma of the tree on its root (the lock lives in the root).
    let refcount = Atomic<Int32>(0)
    /// Child anon_vmas (a root counts itself) and VMAs whose own anon_vma
    /// this is: the reuse rule's two counts (CVE-2022-42703's fix). Under
    /// the root's lock.
    let numChildren = Atomic<Int32>(0)
    let numActiveVMAs = Atomic<Int32>(0)
}

/// struct anon_vma_chain: one (VMA, anon_vma) pair, on the anon_vma's set
/// (`next`/`prev`, same_anon_vma) and on the VMA's chain (`vmaNext`
/// toward older entries, `vmaPrev` toward newer, same_vma).
struct AVCLink: ~Copyable {
    let vma = Atomic<UInt32>(0)
    let anonVma = Atomic<UInt32>(0)
    /// Walkers follow `next` (release/acquire); an unlinked AVC keeps it, so
    /// an RCU walker standing on it goes on.
    let next = Atomic<UInt32>(0)
    let prev = Atomic<UInt32>(0)
    let vmaNext = Atomic<UInt32>(0)
    let vmaPrev = Atomic<UInt32>(0)
}

/// A VMA's anon_vma_chain: newest AVC first (`head`), its own anon_vma's
/// AVC is the newest, the root's the oldest (`tail`). Written under the
/// VMA's mmap lock for writing (fork: the child's VMA, unpublished), or
/// for reading plus the ptl (anon_vma_prepare); read under either.
struct AVCChain: ~Copyable {
    let head = Atomic<UInt32>(0)
    let tail = Atomic<UInt32>(0)
    let length = Atomic<Int32>(0)
}
