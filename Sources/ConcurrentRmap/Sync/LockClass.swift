/// The model's lock classes and their order: the single source of the lock
/// order. Everything else (ARCHITECTURE.md, the headers of the files that
/// take locks) points here. Controlled runs (`stress explore`, `replay`,
/// `shrink`) check every acquisition against this table, as lockdep does,
/// and report an out-of-order one as a `lock-order` violation naming both
/// locks and both call sites, whether or not that schedule deadlocks.
///
/// Order, outermost first: a lock may be taken while holding only locks of
/// a lower rank. Two locks of one class are never held at once, except
/// through the `Nested` classes, which stand for lockdep's nesting
/// annotations and name the only places that do it.
///
///     inodeLock        an inode's i_rwsem (truncate)
///     mmapLock         one mm's mmap lock (fork: the parent's only)
///       pageLock         a page lock (bit in page.flags)
///         pageLockNested   migration's new page, taken holding the old one
///           iMmap            an inode's i_mmap lock (i_mmap_rwsem): its
///                            VMA list; the file walk reads, mmap, fork,
///                            split, mremap, merge and unmap write
///           rmapList         the scheme's list lock: an anongroup's group
///                            mutex or an anon_vma's mutex (writers; walkers
///                            under --sync mutex, and anon_vma walkers under
///                            --sync rcu inside their read-side section);
///                            anon_vma_chain: the tree root's mutex
///                            (2.6.36-3.7), writers under --sync mutex|rcu,
///                            walkers under mutex
///                            cow-context: the tree (root context's)
///                            mutex under --sync mutex
///             rmapListRW       its rwlock under --sync rwlock (writers
///                              after the mutex, walkers alone for reading);
///                              anon_vma_chain: the root's rwsem (3.8+),
///                              taken alone by writers and walkers
///                              cow-context: the tree (root context's)
///                              rwsem under --sync rwlock|rcu, likewise
///               ptl              one mm's page-table lock
///                 ptlNested        fork: the child's ptl under the parent's
///                   pteChain         pte-chains: a page's pte_chain_lock (a
///                                    spinlock); installs and clears take it
///                                    under the ptl, the walk holds it and
///                                    only trylocks ptls
///                     pteChainNested   migration's new page's, taken while
///                                      walking the old page's chain
///
/// Trylocks cannot deadlock, so a trylock is not checked against the locks
/// held; once taken it is held like any other, and later blocking
/// acquisitions are checked against it (fault trylocks page locks under the
/// ptl; reclaim trylocks the page lock and each ptl).
///
/// Rules the order alone does not say, and why:
/// - No ptl is held while *waiting* for a page lock: a page-lock holder
///   (reclaim, migration) waits for ptls. Under a ptl a page lock is only
///   tried (fault's swap-cache lookup and reuse); mremap drops the ptl
///   before `lockPage`; migration's nested page lock is a fresh frame's.
/// - Anonymous faults never wait for a page lock: on a migration entry or
///   a busy swap-cache page they drop the ptl and `P.relax`, still holding
///   the mmap lock, which no page-lock holder ever wants (reclaim,
///   migration and truncate take none; `migrate(in:)` drops its own before
///   `isolate`). The file fault waits for a cache page's lock holding only
///   the mmap lock (read), as filemap_fault's lock_page does.
/// - Truncate holds the inode lock over the whole truncate, so it waits
///   for page locks and the i_mmap lock under it; nothing that holds a
///   page lock, an mmap lock or i_mmap ever takes an inode lock.
/// - Walkers hold one ptl at a time; fork's parent then child (ptlNested)
///   is the only place two are held, and the child is unreachable but
///   through the rmap.
/// - List writers (fork, exit, split, mremap, unmap) hold no ptl and no page
///   lock, except anon_vma_prepare, which takes the new anon_vma's lock and
///   then the ptl: the walkers' nesting (Linux since d9d332e0, 2008).
/// - No full frame allocation runs under a ptl: direct reclaim takes page
///   locks and other mms' ptls. Under a ptl a fault only pops its CPU's
///   frame cache, whose lock is a leaf lock; fault and mremap drop their
///   locks before `allocFrame`, migration allocates before it isolates.
/// - Retiring a slot never blocks: `pageFreed` may run under a ptl (zap,
///   put, free, group put, retire), so a retire only appends to its CPU's
///   batch.
/// - Leaf locks (pool mutexes, per-CPU cache locks, the violation log) are
///   never held across a platform call, so they are not platform locks and
///   not in this table: under the controlled scheduler one held across a
///   scheduling point would spin forever.
/// - synchronize_rcu runs only between operations, with nothing held and
///   outside every read-side section: a reader may wait for any lock an
///   operation holds.
public enum LockClass: UInt8, CaseIterable, Sendable {
    case inodeLock
    case mmapLock
    case pageLock
    case pageLockNested
    case iMmap
    case rmapList
    case rmapListRW
    case ptl
    case ptlNested
    case pteChain
    case pteChainNested

    /// Position in the order: a lock may be taken holding only lower ranks.
    @inline(__always) public var rank: Int { Int(rawValue) }

    public var name: String {
        switch self {
        case .inodeLock: "i_rwsem"
        case .mmapLock: "mmap_lock"
        case .iMmap: "i_mmap_rwsem"
        case .pageLock: "page_lock"
        case .pageLockNested: "page_lock/nested"
        case .rmapList: "rmap_list_lock"
        case .rmapListRW: "rmap_list_rwsem"
        case .ptl: "ptl"
        case .ptlNested: "ptl/nested"
        case .pteChain: "pte_chain_lock"
        case .pteChainNested: "pte_chain_lock/nested"
        }
    }

    /// Whether holding `held` and then waiting for `self` keeps the order.
    @inline(__always) public func mayNest(under held: LockClass) -> Bool { held.rank < rank }
}

/// Where a lock was taken: the caller's file and line (`#fileID`,
/// `#line`), carried to the controlled platform for lock-order reports.
/// The real platform ignores it, and with its calls inlined the constants
/// are never materialized.
public struct LockSite: Sendable, CustomStringConvertible {
    public let file: StaticString
    public let line: UInt
    @inline(__always) public init(_ file: StaticString, _ line: UInt) { self.file = file; self.line = line }
    public var description: String { "\(file):\(line)" }
}
