/// Bugs that can be planted on purpose, each a real member of the rmap bug
/// family. A stress tool is trusted when it catches these (as rcutorture's
/// deliberately broken "busted" RCU shows its own worth). Each scheme owns
/// its bugs (`scheme`); the rest are bugs of the shared machinery and apply
/// to every scheme.
public enum Injection: String, CaseIterable, Sendable {
    case none

    // The anongroup scheme's bugs.
    /// mremap moves a still-shared page without copying it.
    case mremapNoCopy = "mremap-no-copy"
    /// mremap re-indexes an exclusive page without holding the page lock.
    case mremapNoPageLock = "mremap-no-page-lock"
    /// mremap takes the page lock but drops it just before the re-index.
    case mremapUnlockBeforeReindex = "mremap-unlock-before-reindex"
    /// fork links the child into the group only after copying its PTEs.
    case forkLinkAfterCopy = "fork-link-after-copy"
    /// fork links the child at the head of the group list.
    case forkLinkAtHead = "fork-link-at-head"
    /// rmap walks traverse the group list outside any read-side protection.
    case walkOutsideRCU = "walk-outside-rcu"
    /// pages do not pin their group, so it is freed while pages point to it.
    case groupFreedWhilePages = "group-freed-while-pages"
    /// a swap-cache page is mapped at an address other than its index.
    case swapInStaleIndex = "swapin-stale-index"

    // The anon_vma scheme's bugs.
    /// an anon_vma is published to its VMA before it is set up, outside the lock.
    case anonVmaPublishEarly = "anon-vma-publish-early"
    /// the page-to-anon_vma lookup does not re-check that the page is mapped.
    case anonVmaNoRecheck = "anon-vma-no-recheck"
    /// fork links the child's VMA into the anon_vma after copying its PTEs.
    case anonVmaForkLinkAfterCopy = "anon-vma-fork-link-after-copy"
    /// a split VMA's new half is not linked into the anon_vma.
    case anonVmaSplitUnlinked = "anon-vma-split-unlinked"
    /// mremap gives the moved VMA a fresh page offset instead of keeping it.
    case anonVmaMremapPgoff = "anon-vma-mremap-pgoff"
    /// an anon_vma whose list empties is freed without a grace period.
    case anonVmaFreeNoGrace = "anon-vma-free-no-grace"
    /// anon_vma_prepare takes the ptl before the anon_vma lock.
    case prepareLockInversion = "prepare-lock-inversion"
    /// vma_merge forgets to give the kept VMA the removed one's anon_vma.
    case anonVmaMergeDropsAnonVma = "anon-vma-merge-drops-anon-vma"

    // The anon_vma_chain scheme's bugs.
    /// fork clones the chain and links the child's VMA only after copying its PTEs.
    case avcForkLinkAfterCopy = "avc-fork-link-after-copy"
    /// unlink frees a VMA's own anon_vma when its last active VMA leaves, though descendants still link to it.
    case avcUnlinkFreeInUse = "avc-unlink-free-in-use"
    /// fork's reuse rule counts children and active VMAs as one degree (the 3.19 rule's ambiguity).
    case avcReuseDegree = "avc-reuse-degree"
    /// the rmap walk takes neither the root's lock nor a read-side section over the set.
    case avcWalkNoRootLock = "avc-walk-no-root-lock"
    /// COW reuse of an exclusive page leaves it on an ancestor's anon_vma (no page_move_anon_rmap).
    case avcMoveAnonRmapSkipped = "avc-move-anon-rmap-skipped"
    /// an anon_vma whose last reference goes is freed without a grace period.
    case avcFreeNoGrace = "avc-free-no-grace"
    /// __split_vma does not clone the chain into the new half.
    case avcSplitNoClone = "avc-split-no-clone"

    // Bugs of the shared machinery (every scheme).
    /// an exiting mm's slot is freed without waiting for a grace period.
    case mmFreeNoGrace = "mm-free-no-grace"
    /// rmap walks read and change PTEs without the mm's page-table lock.
    case walkNoPageTableLock = "walk-no-ptl"
    /// mapcount is updated with a non-atomic load and store.
    case racyMapcount = "racy-mapcount"
    /// a walker blocks forever inside its read-side section.
    case rcuReaderStall = "rcu-reader-stall"
    /// a walker leaves its read-side section open and goes on running.
    case rcuUnlockForgotten = "rcu-unlock-forgotten"
    /// mms are pinned with a plain increment instead of increment-if-not-zero.
    case mmPinNoZeroCheck = "mm-pin-no-zero-check"
    /// the shim's polled grace period counts one begun before the snapshot.
    case gpPollEarly = "gp-poll-early"

    // Bugs of the file branch (every scheme).
    /// truncate shrinks the file and drops its cache pages without unmapping them.
    case fileTruncateNoUnmap = "file-truncate-no-unmap"
    /// a fault does not re-check the file size under the page lock.
    case fileFaultNoSizeCheck = "file-fault-no-size-check"
    /// fork does not add the child's file VMAs to the inode's i_mmap.
    case fileForkNoIMmap = "file-fork-no-i-mmap"
    /// the file walk reads i_mmap without its lock.
    case fileWalkNoIMmapLock = "file-walk-no-i-mmap-lock"
    /// reclaim drops a dirty page cache page without writing it back.
    case fileReclaimDropsDirty = "file-reclaim-drops-dirty"
    /// a write fault on a private file mapping writes into the page cache page.
    case filePrivateWriteInCache = "file-private-write-in-cache"
    /// the i_mmap interval tree's insert does not raise its ancestors' maxima.
    case iMmapTreeStaleMax = "i-mmap-tree-stale-max"
    /// a shmem inode is evicted when its mapping count reaches 1, not 0.
    case shmemEvictWhileMapped = "shmem-evict-while-mapped"
    /// shmem eviction returns the inode to the pool without removing its cache pages.
    case shmemEvictKeepsPages = "shmem-evict-keeps-pages"

    // The pte-chains scheme's bugs.
    /// fork copies a PTE of an anonymous page without adding the child's entry to its chain.
    case pteChainsForkNoEntry = "pte-chains-fork-no-entry"
    /// zap (exit, munmap) clears PTEs but leaves their entries on the chains.
    case pteChainsZapKeepsEntry = "pte-chains-zap-keeps-entry"
    /// PTE installs and clears change a page's chain without its chain lock.
    case pteChainsNoChainLock = "pte-chains-no-chain-lock"
    /// migration's first walk skips an mm whose ptl a trylock missed, as reclaim may, and does not walk again.
    case pteChainsMigratePartial = "pte-chains-migrate-partial"
    /// a COW copy leaves the old page's chain naming the PTE that now maps the copy.
    case pteChainsCowKeepsOldEntry = "pte-chains-cow-keeps-old-entry"

    // The cow-context scheme's bugs.
    /// fork links the child's context into the tree only after copying its PTEs.
    case cowForkLinkAfterCopy = "cow-fork-link-after-copy"
    /// the walk visits the page's context and its children, not the whole subtree.
    case cowWalkDepthOne = "cow-walk-depth-one"
    /// pages take no reference on their context, so it is freed while pages name it.
    case cowContextFreedWhilePages = "cow-context-freed-while-pages"
    /// an exiting mm's context leaves the tree even though it has children.
    case cowExitLeavesChildren = "cow-exit-leaves-children"
    /// mremap re-indexes a page still shared with other mms of the subtree.
    case cowMremapNoCopy = "cow-mremap-no-copy"
    /// swap-in maps a cached page in an mm outside its context's subtree.
    case cowSwapinOutsideSubtree = "cow-swapin-outside-subtree"
    /// the walk applies an ancestor's remap records also to children forked before them.
    case cowRemapNoForkBound = "cow-remap-no-fork-bound"
    /// the walk applies remap records older than the page.
    case cowRemapIgnoresEpoch = "cow-remap-ignores-epoch"
    /// mremap publishes its remap record done, before the pages move.
    case cowRemapDoneEarly = "cow-remap-done-early"

    /// The scheme this bug belongs to; nil for bugs of the shared machinery.
    public var scheme: SchemeKind? {
        switch self {
        case .mremapNoCopy, .mremapNoPageLock, .mremapUnlockBeforeReindex, .forkLinkAfterCopy, .forkLinkAtHead, .walkOutsideRCU,
             .groupFreedWhilePages, .swapInStaleIndex:
            .anongroup
        case .anonVmaPublishEarly, .anonVmaNoRecheck, .anonVmaForkLinkAfterCopy, .anonVmaSplitUnlinked,
             .anonVmaMremapPgoff, .anonVmaFreeNoGrace, .prepareLockInversion, .anonVmaMergeDropsAnonVma:
            .anonVma
        case .avcForkLinkAfterCopy, .avcUnlinkFreeInUse, .avcReuseDegree, .avcWalkNoRootLock, .avcMoveAnonRmapSkipped,
             .avcFreeNoGrace, .avcSplitNoClone:
            .anonVMAChain
        case .pteChainsForkNoEntry, .pteChainsZapKeepsEntry, .pteChainsNoChainLock, .pteChainsMigratePartial,
             .pteChainsCowKeepsOldEntry:
            .pteChains
        case .cowForkLinkAfterCopy, .cowWalkDepthOne, .cowContextFreedWhilePages, .cowExitLeavesChildren, .cowMremapNoCopy,
             .cowSwapinOutsideSubtree, .cowRemapNoForkBound, .cowRemapIgnoresEpoch, .cowRemapDoneEarly:
            .cowContext
        case .none, .mmFreeNoGrace, .walkNoPageTableLock, .racyMapcount, .rcuReaderStall, .rcuUnlockForgotten,
             .mmPinNoZeroCheck, .gpPollEarly, .fileTruncateNoUnmap, .fileFaultNoSizeCheck, .fileForkNoIMmap,
             .fileWalkNoIMmapLock, .fileReclaimDropsDirty, .filePrivateWriteInCache, .iMmapTreeStaleMax,
             .shmemEvictWhileMapped, .shmemEvictKeepsPages:
            nil
        }
    }

    /// Whether this bug can exist in `scheme`: its own bugs, and the shared
    /// ones except those that need an RCU reader of the rmap, which
    /// pte-chains has not (its walk holds the chain lock, and a chained
    /// mm cannot go before its zap takes the entries off): a reader
    /// stalled or left open inside a walk's read-side section, and an mm
    /// slot freed early under such a reader.
    public func applies(to scheme: SchemeKind) -> Bool {
        if let own = self.scheme { return own == scheme }
        switch self {
        case .rcuReaderStall, .rcuUnlockForgotten, .mmFreeNoGrace, .gpPollEarly: return scheme != .pteChains
        default: return self != .none
        }
    }

    /// Whether this bug lives on the shared (file) branch's paths, which
    /// only mmap-file, truncate and mmap-shmem reach: a controlled run of
    /// it needs those operations in its mix.
    public var needsFileOperations: Bool {
        switch self {
        case .fileTruncateNoUnmap, .fileFaultNoSizeCheck, .fileForkNoIMmap, .fileWalkNoIMmapLock, .fileReclaimDropsDirty,
             .filePrivateWriteInCache, .iMmapTreeStaleMax, .shmemEvictWhileMapped, .shmemEvictKeepsPages:
            true
        default: false
        }
    }

    /// The planted bugs that apply to `scheme`.
    public static func catalogue(for scheme: SchemeKind) -> [Injection] {
        allCases.filter { $0 != .none && $0.applies(to: scheme) }
    }

    /// The violation classes that may catch this bug: a run that fails with
    /// another class has found something, but not this bug's signature, and
    /// selftest counts it as imprecise.
    public var caughtBy: Set<ViolationKind> {
        switch self {
        case .none: []
        case .mremapNoCopy: [.location, .incompleteWalk]
        case .mremapNoPageLock, .mremapUnlockBeforeReindex: [.incompleteWalk, .location, .mapcount]
        case .forkLinkAfterCopy, .forkLinkAtHead, .anonVmaForkLinkAfterCopy: [.incompleteWalk, .mapcount]
        case .walkOutsideRCU: [.lifetime, .incompleteWalk, .groupList]
        case .groupFreedWhilePages: [.groupList, .lifetime, .location]
        case .swapInStaleIndex, .anonVmaMremapPgoff: [.location, .incompleteWalk]
        // Two anon_vmas for one VMA: the one it is not on empties and is
        // freed while pages still name it.
        case .anonVmaPublishEarly: [.location, .groupList, .incompleteWalk, .mapcount, .lifetime]
        case .anonVmaNoRecheck, .anonVmaFreeNoGrace: [.lifetime, .groupList, .incompleteWalk]
        case .anonVmaSplitUnlinked: [.groupList, .incompleteWalk, .mapcount]
        // The kept VMA covers pages of an anon_vma it is not on: faults see
        // the wrong anchor, walks miss its PTEs, and once the removed VMA was
        // the last on its list, mapped pages name a freed anon_vma.
        case .anonVmaMergeDropsAnonVma: [.location, .incompleteWalk, .lifetime, .groupList, .mapcount]
        case .prepareLockInversion: [.lockOrder]
        case .avcForkLinkAfterCopy: [.incompleteWalk, .mapcount]
        // The anon_vma goes while descendants' chains and pages name it.
        case .avcUnlinkFreeInUse: [.lifetime, .groupList, .incompleteWalk, .location, .leak]
        // The recount of num_active_vmas disagrees; or, first, a fault
        // or COW reuse anchors a page on an anon_vma reused while another
        // VMA still had it as its own, which the location check sees; or
        // the undercount lets a later fork reuse it once more for a VMA
        // whose pages sit outside the set a walk from them covers, and a
        // walk misses a mapping (CI run of stop 33 saw this one first).
        case .avcReuseDegree: [.groupList, .location, .incompleteWalk]
        case .avcWalkNoRootLock, .avcFreeNoGrace: [.lifetime, .groupList, .incompleteWalk]
        // A writable page on an ancestor's anon_vma.
        case .avcMoveAnonRmapSkipped: [.location]
        // The upper half is in no set: walks miss its PTEs, its pages fail
        // the location check, and once the lower half's unlink empties the
        // set the anon_vma is freed while those pages still name it.
        case .avcSplitNoClone: [.groupList, .incompleteWalk, .location, .mapcount, .lifetime]
        case .mmFreeNoGrace, .mmPinNoZeroCheck, .gpPollEarly: [.lifetime, .incompleteWalk, .groupList]
        // Racing PTE stores lose one: counts, contents, leaf use counts
        // (a leaf left holding PTEs at exit is a leak); pte-chains' exact
        // walk reads a PTE a COW is rewriting and sees it map another page
        // (group-list; seen by a selftest loop of stop 34).
        case .walkNoPageTableLock: [.lockNotHeld, .mapcount, .refcount, .content, .incompleteWalk, .freedWhileMapped, .location, .leak, .groupList]
        // A lost update leaves a mapcount that migration's check reads as
        // a mapping no walk found.
        case .racyMapcount: [.mapcount, .refcount, .freedWhileMapped, .incompleteWalk]
        case .rcuReaderStall, .rcuUnlockForgotten: [.stall]
        // A PTE beyond EOF (location), a cache page left mapped (mapcount,
        // refcount), or a walk of a page that lost its cache slot.
        case .fileTruncateNoUnmap, .fileFaultNoSizeCheck: [.location, .mapcount, .refcount, .incompleteWalk]
        // The child's PTEs are out of reach of the i_mmap walk; for a
        // shmem inode the uncounted child mapping lets the parent's unmap
        // evict the inode under it (lifetime; CI run of stop 33).
        case .fileForkNoIMmap: [.incompleteWalk, .groupList, .location, .lifetime]
        // The list changes under the walker: it follows a VMA that left
        // (or was freed and reused), or misses one.
        case .fileWalkNoIMmapLock: [.lifetime, .incompleteWalk, .groupList, .lockNotHeld]
        case .fileReclaimDropsDirty: [.content]
        case .filePrivateWriteInCache: [.location, .content]
        // The i_mmap audit checks every node's maximum; walks that prune
        // on a stale one miss VMAs (truncate leaves pages mapped beyond EOF).
        case .iMmapTreeStaleMax: [.groupList, .incompleteWalk, .location, .mapcount, .refcount]
        // The inode goes back to the pool while a VMA still maps it: its
        // pages leave the cache mapped, a second eviction (or a reuse)
        // meets a VMA of the old life.
        case .shmemEvictWhileMapped: [.lifetime, .leak, .groupList, .location, .refcount, .mapcount]
        // The next incarnation inherits the old one's pages (the audit also
        // sees them beyond the free inode's size 0).
        case .shmemEvictKeepsPages: [.leak, .location]
        // The child's PTE is on no chain: walks leave it mapped, its zap
        // finds no entry, the audit counts fewer entries than mappings.
        case .pteChainsForkNoEntry: [.incompleteWalk, .groupList, .mapcount]
        // Stale entries: a walk visits a PTE that no longer maps the page
        // or an mm that is gone; the page is freed with entries left.
        case .pteChainsZapKeepsEntry: [.groupList, .lifetime, .incompleteWalk, .leak]
        // Racing updates lose or duplicate entries and blocks.
        case .pteChainsNoChainLock: [.groupList, .incompleteWalk, .lifetime, .leak, .mapcount]
        case .pteChainsMigratePartial: [.incompleteWalk]
        // The stale entry names a PTE that maps another page; once that
        // mm exits (its zap does not find the entry), a walk following it
        // reaches a freed mm (lifetime; CI run of stop 34).
        case .pteChainsCowKeepsOldEntry: [.groupList, .incompleteWalk, .lifetime]
        // A walk misses the child's copy (or a grandchild's mapping).
        case .cowForkLinkAfterCopy, .cowWalkDepthOne: [.incompleteWalk, .mapcount]
        // The context is freed and reused while pages name it.
        case .cowContextFreedWhilePages: [.groupList, .lifetime, .location]
        // The descendants fall out of every ancestor's walk; their later
        // exits meet a parent that left the tree (or was freed).
        case .cowExitLeavesChildren: [.incompleteWalk, .groupList, .lifetime, .mapcount, .location]
        case .cowMremapNoCopy, .cowSwapinOutsideSubtree: [.location, .incompleteWalk]
        // A mapping is looked for at an address where it is not: the
        // location check of its PTE fails, a walk misses it.
        case .cowRemapNoForkBound, .cowRemapIgnoresEpoch, .cowRemapDoneEarly: [.location, .incompleteWalk, .mapcount]
        }
    }

    /// The anon_vma walk selftest runs this bug under on the anon_vma
    /// schemes. Bugs of grace periods (an anon_vma, VMA or mm slot freed
    /// while a reader may still be on it) need a reader that holds nothing
    /// but RCU: the kernel's locked walk holds the anon_vma (root) lock,
    /// which the unlink preceding every such free takes, and its re-check
    /// rejects a reused slot, so only the RCU-only what-if trips over them
    /// (measured on anon-vma: 15 s runs under the locked walk catch none;
    /// on anon-vma-chain, 200 controlled schedules miss avc-free-no-grace).
    public var selftestAnonVmaWalk: AnonVMAWalk {
        switch self {
        case .anonVmaFreeNoGrace, .mmFreeNoGrace, .gpPollEarly, .avcFreeNoGrace: .rcuOnly
        default: .locked
        }
    }

    /// The i_mmap structure selftest and campaigns run this bug under: a
    /// bug of the tree needs the tree.
    public var iMmap: IMmapKind { self == .iMmapTreeStaleMax ? .tree : .list }

    /// Caught only by a controlled run: the lock-order check lives in the
    /// controlled scheduler, and a real run deadlocks on an inversion only
    /// when two threads meet on one lock pair.
    public var needsControlledRun: Bool { caughtBy == [.lockOrder] }

    /// Found by ThreadSanitizer (a data race) rather than only by the
    /// model's own checks.
    public var isDataRace: Bool {
        switch self {
        case .walkOutsideRCU, .mmFreeNoGrace, .walkNoPageTableLock, .racyMapcount, .anonVmaFreeNoGrace, .avcWalkNoRootLock,
             .fileWalkNoIMmapLock: true
        default: false
        }
    }

    /// What the bug breaks, and the real fix it mirrors.
    public var summary: String {
        switch self {
        case .fileTruncateNoUnmap:
            "ftruncate shrinks the file and removes its cache pages without unmap_mapping_range: PTEs keep mapping pages beyond EOF that left the cache (location, counts). truncate_pagecache's unmap."
        case .fileFaultNoSizeCheck:
            "the file fault does not re-check i_size once it holds the page lock: a fault racing truncate maps (or caches) a page beyond EOF after truncate passed it (location). The classic truncate/fault race (truncate_count, later invalidate_lock)."
        case .fileForkNoIMmap:
            "dup_mmap copies a file VMA without vma_interval_tree_insert_after: the child's mappings of the file are invisible to the i_mmap walk (incomplete walk, PTE beyond EOF after truncate; a shmem inode evicted while the child maps it: lifetime)."
        case .fileWalkNoIMmapLock:
            "the file rmap walk follows i_mmap without i_mmap_lock_read: VMAs leave, move and are freed under it (lifetime, incomplete walk). rmap_walk_file takes i_mmap_rwsem."
        case .fileReclaimDropsDirty:
            "reclaim frees a dirty page cache page without writing it back (pageout): the data is lost (content). shrink_folio_list's dirty check."
        case .filePrivateWriteInCache:
            "a write fault on a MAP_PRIVATE file mapping writes the page cache page instead of copying it (location: a writable PTE of a cache page in a private VMA; content of the file). do_cow_fault."

        case .iMmapTreeStaleMax:
            "[--i-mmap tree] vma_interval_tree_insert does not raise the subtree maxima on the way down: a walk prunes a subtree that holds a VMA covering its page, so truncate and reclaim miss mappings (audit: stale maximum; incomplete walk, PTEs beyond EOF). The augmented rbtree's propagate callback."

        case .shmemEvictWhileMapped:
            "the last-mapping test of a shmem inode counts one mapping too many: the inode is evicted and returned to the pool while a forked relative still maps it, its pages drop out of the cache mapped (lifetime). The shmem file lives while a VMA holds a reference to it (vm_file)."
        case .shmemEvictKeepsPages:
            "shmem eviction returns the inode to the pool without truncating its page cache: the next shared anonymous mapping that gets it inherits the old one's pages (leak; stale data). shmem_evict_inode's shmem_truncate_range."

        case .pteChainsForkNoEntry:
            "[pte-chains] copy_page_range copies an anonymous PTE into the child without page_add_rmap: the child's mapping is on no chain, so swap-out and migration leave it behind (completeness) and its zap finds no entry (group-list). 2.5's copy_page_range called page_add_rmap for every copied PTE."
        case .pteChainsZapKeepsEntry:
            "[pte-chains] zap_pte_range clears PTEs without page_remove_rmap: chains keep entries for PTEs that are gone, walks visit them (group-list) or an exited mm (lifetime), and pages are freed with entries left. 2.5's zap_pte_range called page_remove_rmap for each PTE."
        case .pteChainsNoChainLock:
            "[pte-chains] page_add_rmap and page_remove_rmap change the chain without pte_chain_lock: racing faults, forks and zaps on a shared page lose or duplicate entries and blocks (group-list, completeness). The lock 2.5's rmap took in both."
        case .pteChainsMigratePartial:
            "[pte-chains] migration walks the chain once with trylocked ptls, as try_to_unmap did, and does not walk again when a trylock failed: mappings stay on the old page (completeness). A complete walk must retry what a trylock skipped."
        case .pteChainsCowKeepsOldEntry:
            "[pte-chains] do_wp_page copies a shared page and points the PTE at the copy without page_remove_rmap on the old page: its chain names a PTE that maps another page (group-list), and, once that mm exits, an mm that is gone (lifetime). 2.5's do_wp_page called page_remove_rmap on the old page."
        case .cowForkLinkAfterCopy:
            "[cow-context] fork copies the PTEs before the child's context joins the tree: a walk in between misses the child's copy (completeness). The proposal links the child's context at fork, as anon_vma_fork precedes copy_page_range."
        case .cowWalkDepthOne:
            "[cow-context] the walk visits the page's context and its direct children only: mappings in grandchildren are missed (completeness). The reviewers' question: the walk must cover every fork layer."
        case .cowContextFreedWhilePages:
            "[cow-context] pages take no reference on their context: an exited mm's context is freed and reused while pages name it (lifetime, location). The proposal's contexts outlive exited processes for their folios."
        case .cowExitLeavesChildren:
            "[cow-context] an exiting mm's context leaves the tree though it has children: its descendants are out of reach of every walk from above (completeness), and their exits meet a detached, perhaps freed, parent (group-list, lifetime). The proposal's contexts outlive exited processes for their descendants."
        case .cowMremapNoCopy:
            "[cow-context] mremap re-indexes (and re-anchors) a page other mms of the subtree still map at the old address, instead of keeping it behind a remap record (or, records full, copying it): their PTEs are off the page's address (location). The proposal's explicit remap tracking, or the seed's copy rule."
        case .cowRemapNoForkBound:
            "[cow-context] the walk applies all of an ancestor's remap records on the way down, not only those older than the child's fork: a child forked before its parent's mremap is looked for at the parent's new address (location, completeness). Remap tracking must know when each child left its parent."
        case .cowRemapIgnoresEpoch:
            "[cow-context] the walk applies the page's context's remap records older than the page: a page faulted later at a moved-away address, or re-anchored by a move, is looked for elsewhere (location, completeness). Remap tracking must know when each page joined its context."
        case .cowRemapDoneEarly:
            "[cow-context] mremap publishes its remap record as done before the PTEs move: a walker meanwhile looks only at the new address while a shared page is still mapped at the old one (completeness). A record is pending, both addresses tried, until the last PTE moved."
        case .cowSwapinOutsideSubtree:
            "[cow-context] swap-in maps a swap-cache page named by a child's context in its parent, outside that subtree: no walk from the page's context reaches the parent (location, completeness). The rule of Hugh Dickins' rmap 11, per context."
        case .none: "no injected bug"
        case .mremapNoCopy:
            "[anongroup] mremap after fork moves a shared page and re-indexes it: the other mm's PTE is no longer at page.index (location). The seed email's copy_one_pte rule."
        case .mremapNoPageLock:
            "[anongroup] mremap changes page.index while a walker holding the page lock reads it: the walker looks at the wrong address (completeness). Linux 2011/2012 mremap vs migration fixes (anon_vma lock in move_ptes)."
        case .mremapUnlockBeforeReindex:
            "[anongroup] mremap holds the page lock while it moves the PTE but drops it one step before it changes page.index: in that narrow window a walker holding the page lock reads the old index while the PTE already sits at the new address (completeness). The narrow-window form of the mremap/walker races Linux fixed in move_ptes (2011/2012)."
        case .forkLinkAfterCopy:
            "[anongroup] fork copies PTEs before the child is on the group list: a walk in between misses the child's copy (completeness). Linux 2008 anon_vma_prepare/fork ordering fixes."
        case .forkLinkAtHead:
            "[anongroup] the child is linked at the head, so a walk can pass the child before fork copies into it and then see the parent already converted (completeness). Hugh Dickins' anonmm linked at the tail."
        case .walkOutsideRCU:
            "[anongroup] the group list is walked with no read-side section: a concurrently exiting mm is freed and reused under the walker (lifetime). Linux page_lock_anon_vma RCU fixes (2008)."
        case .groupFreedWhilePages:
            "[anongroup] pages take no reference on their group: the group is freed and reused while pages point to it (lifetime). Linux 2010 'pick the oldest anon_vma' / anon_vma refcount fixes."
        case .swapInStaleIndex:
            "[anongroup] a swap-cache page is mapped by a sharer at an address other than its index, without the copy Hugh Dickins' rmap 11 made (location)."
        case .anonVmaPublishEarly:
            "[anon-vma] anon_vma_prepare sets vma->anon_vma before the anon_vma is set up and without the lock that orders racing faults: two anon_vmas for one VMA, pages under the one the VMA is not on (location, completeness). Linux d9d332e0 (October 2008: anon_vma_prepare locks even a new anon_vma before publishing it)."
        case .anonVmaNoRecheck:
            "[anon-vma] the lookup reads page.mapping and locks that anon_vma without re-checking that the page is still mapped; the anon_vma may have been freed meanwhile (lifetime). Linux page_lock_anon_vma's page_mapped re-check."
        case .anonVmaForkLinkAfterCopy:
            "[anon-vma] fork copies the PTEs before linking the child's VMA into the anon_vma: a walk in between misses the copy (completeness). Linux 2.6.7's anon_vma_link ordering in dup_mmap."
        case .anonVmaSplitUnlinked:
            "[anon-vma] __split_vma does not link the new half into the anon_vma: pages mapped there are found by no walk (completeness). Linux's anon_vma_link in __split_vma."
        case .anonVmaMremapPgoff:
            "[anon-vma] mremap gives the moved VMA a fresh vm_pgoff instead of keeping it: page.index no longer names the PTE (location). copy_vma's pgoff in Linux 2.6.7."
        case .anonVmaFreeNoGrace:
            "[anon-vma] an anon_vma whose last VMA left is reused at once, not after a grace period: a walker that read page.mapping lands in another anon_vma (lifetime). SLAB_DESTROY_BY_RCU for anon_vma (2.6.11)."
        case .prepareLockInversion:
            "[anon-vma] anon_vma_prepare takes the mm's ptl and then the anon_vma lock, the order its old comments gave: a walker holds the anon_vma lock and waits for the ptl, so the two can deadlock under --sync mutex|rwlock (lock-order, found by controlled runs whether or not a schedule deadlocks). Linux d9d332e0 (2008) fixed this order."
        case .anonVmaMergeDropsAnonVma:
            "[anon-vma] vma_merge of a VMA with no anon_vma and a neighbour with one does not make the kept VMA adopt it: the neighbour's pages, now under the kept VMA, name an anon_vma it is not on, and the list empties and is freed while they are mapped (location, completeness, lifetime). Linux 2.6.7's __anon_vma_merge."
        case .avcForkLinkAfterCopy:
            "[anon-vma-chain] dup_mmap copies the PTEs before anon_vma_fork links the child's VMA into its parent's anon_vmas: a walk in between misses the child's copy (completeness). anon_vma_fork runs before copy_page_range since 2.6.34."
        case .avcUnlinkFreeInUse:
            "[anon-vma-chain] unlink_anon_vmas drops the VMA's own anon_vma when no VMA uses it as its own any more, although descendants' chains and their pages still name it: it is freed and reused under them (lifetime). The class of the anon_vma lifetime crashes of 2010-2011 and of CVE-2022-42703 (a freed anon_vma still named by page->mapping)."
        case .avcReuseDegree:
            "[anon-vma-chain] anon_vma_clone's reuse test uses one count of children and VMAs, as the 3.19 `degree` did: an anon_vma still used by one VMA is reused by another and the reuse is not counted as an active VMA (num_active_vmas disagrees with a recount: group-list; pages anchored on the wrong anon_vma: location, completeness). The ambiguity Jann Horn's fix for CVE-2022-42703 (6.2) removed by counting num_children and num_active_vmas."
        case .avcWalkNoRootLock:
            "[anon-vma-chain] the walk reads page->mapping and walks the anon_vma's set without taking the root's lock (nor staying in the read-side section): unlink frees AVCs and VMAs under it (lifetime, completeness). page_lock_anon_vma_read's root lock (2.6.36)."
        case .avcMoveAnonRmapSkipped:
            "[anon-vma-chain] do_wp_page writes in place an exclusive page that still names an ancestor's anon_vma without page_move_anon_rmap: a writable page outside its VMA's own anon_vma, walked by every relative and pinning the ancestor (location). Linux's page_move_anon_rmap (2.6.34) and __page_check_anon_rmap."
        case .avcFreeNoGrace:
            "[anon-vma-chain] an anon_vma whose last reference goes is reused at once instead of after a grace period: a walker that read page->mapping locks and walks another object (lifetime). SLAB_TYPESAFE_BY_RCU for anon_vma."
        case .avcSplitNoClone:
            "[anon-vma-chain] __split_vma gives the new half the anon_vma but not the chain (no anon_vma_clone): its pages are in no anon_vma's set (completeness, location, counts). Linux's anon_vma_clone in __split_vma."
        case .mmFreeNoGrace:
            "an exiting mm slot is recycled at once: a walker still on it lands in another mm (lifetime). The reason SLAB_DESTROY_BY_RCU exists for anon_vma."
        case .walkNoPageTableLock:
            "the walk reads and rewrites PTEs without the ptl, racing faults and zaps (counts, content). Every page_check_address caller takes the ptl."
        case .racyMapcount:
            "mapcount increments and decrements are plain load+store: concurrent updates are lost (counts). atomic_t mapcount since 2.5."
        case .rcuReaderStall:
            "worker 0's first rmap walk blocks inside its read-side section, as a reader that sleeps on something that waits for a grace period would: no grace period ends and the worker stops (stall, exit 3). rcutorture's RCU CPU stall warnings."
        case .rcuUnlockForgotten:
            "worker 0 forgets one rcu_read_unlock after a walk and goes on working: its read-side section never ends, so no grace period completes and no retired slot is freed (the watchdog names the worker: no grace period, exit 3). Under qsbr a read-side lock is only a marker and the bug is invisible. rcutorture's forgotten-unlock and RCU CPU stall warnings."
        case .gpPollEarly:
            "the shim's poll_state_synchronize_rcu (crm_rcu_gp_elapsed) is off by one: the grace period the snapshot names, begun before the snapshot and perhaps before the unlink was visible, counts as covering it, so a retired slot is freed while a reader that found it may still hold it (lifetime). Controlled runs poll through the same shim code. The class of Linux's get_state/poll_state ordering fixes."
        case .mmPinNoZeroCheck:
            "a worker pins an mm with a plain increment (mmget) instead of mmget_not_zero: an mm whose last user has gone is brought back, and its last user leaves twice (lifetime: torn down twice). Linux's mmget_not_zero fixes (2017-2019)."
        }
    }
}
