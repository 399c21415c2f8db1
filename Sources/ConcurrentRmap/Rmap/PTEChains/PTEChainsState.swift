import Synchronization

/// The pte_chains scheme's tables (Rik van Riel's rmap, Linux 2.5 to
/// 2.6.5): per frame a chain head, and a slab of chain blocks.
///
/// - per frame (`heads`, by frame number): the chain lock, the entry count,
///   the direct entry (page->pte.direct, while the page has had one mapping
///   only) and the newest block (page->pte.chain);
/// - blocks (`words`, 8 per block, handles from `pool`): word 0 the next
///   (older) block, words 1...7 the entries: NRPTE = 7, one 64-byte line
///   with its link, as on 64-bit x86.
/// - per CPU slot (`cursors`): the frame this CPU is walking and the walk's
///   position, so that a PTE the walker itself clears (reclaim's and
///   migration's bodies) comes off the chain it holds locked.
///
/// An entry is one word: mm << 32 | vpn (the kernel's pte_addr_t names the
/// PTE; its page-table page names the mm). 0 is no entry.
struct PTEChainsState {
    let heads: UnsafeMutablePointer<PTEChainHead>
    let frameCount: Int
    let words: UnsafeMutablePointer<Atomic<UInt64>>
    let pool: NodePool
    let cursors: PaddedArray<PTEChainCursor>
    let cpuSlots: Int

    /// Entries in one block, and words per block (the link first).
    static let nrpte = 7
    static let blockWords = 8

    /// Enough blocks for every PTE the page tables can hold: each page's
    /// chain wastes less than one block, so PTEs / NRPTE + frames bounds it.
    static func blockCapacity(_ config: MachineConfig) -> Int {
        config.leafCount * MachineConfig.ptesPerLeaf / nrpte + config.frames + 64
    }

    init(config: MachineConfig) {
        frameCount = config.frames
        heads = CacheLine.allocate(PTEChainHead.self, count: frameCount + 1)
        for i in 0...frameCount { (heads + i).initialize(to: PTEChainHead()) }
        let nb = PTEChainsState.blockCapacity(config)
        words = CacheLine.allocate(Atomic<UInt64>.self, count: (nb + 1) * PTEChainsState.blockWords)
        for i in 0..<((nb + 1) * PTEChainsState.blockWords) { (words + i).initialize(to: Atomic(0)) }
        pool = NodePool(capacity: nb, nodes: config.nodes, trackOwnership: true)
        cpuSlots = config.maxCPUs + 1
        cursors = PaddedArray(count: cpuSlots)
        for i in 0..<cpuSlots { cursors[i].initialize(to: PTEChainCursor()) }
    }

    func destroy() {
        heads.deinitialize(count: frameCount + 1)
        heads.deallocate()
        words.deinitialize(count: (pool.capacity + 1) * PTEChainsState.blockWords)
        words.deallocate()
        pool.destroy()
        for i in 0..<cpuSlots { cursors[i].deinitialize(count: 1) }
        cursors.deallocate()
    }
}

/// A page's chain head (the pte union and PG_direct of struct page, and
/// PG_chainlock). Every field an atomic, relaxed under the chain lock, so
/// the statistics scan may read it racily.
struct PTEChainHead: ~Copyable {
    /// pte_chain_lock: 1 while held (a bit spinlock in page->flags in the
    /// kernel; a word of its own here, since the model's frame flags are
    /// stored whole at allocation and free).
    let lock = Atomic<UInt32>(0)
    /// Entries on the chain: the PTEs (present or migration) mapping the page.
    let count = Atomic<UInt32>(0)
    /// The newest block, 0 while the page is direct (or unmapped).
    let block = Atomic<UInt32>(0)
    let spare = Atomic<UInt32>(0)
    /// The entry while the page is direct.
    let direct = Atomic<UInt64>(0)
}

/// One CPU's walk: the frame whose chain it holds locked (0: none), and
/// the block and slot of the entry it is visiting (block 0: the direct one).
/// Only its own CPU touches it.
struct PTEChainCursor {
    var frame: UInt32 = 0
    var block: UInt32 = 0
    var slot: Int = 0
}
