/// What an rmap scheme decides for a page whose PTE mremap moves.
enum PageMove {
    /// The page keeps its frame and its index (anon_vma: the index is a
    /// page offset that the moved VMA keeps).
    case keep
    /// The page keeps its frame and takes the new address as its index
    /// (anongroup: an exclusive page).
    case reindex
    /// The moving mm gets a private copy at the new address (anongroup: a
    /// page still shared after fork, the seed's copy_one_pte rule).
    case copy
}

/// When fork tells the rmap about the child: before its PTEs are copied
/// (correct: a walker then sees every copy), or after (a planted bug).
enum ForkLinkPhase { case beforeCopy, afterCopy }

/// The rmap metadata a scheme holds at one moment (`RmapScheme.metadata`):
/// its contexts (anongroups or anon_vmas), its links (mms on group lists,
/// VMAs on anon_vma lists, anon_vma_chain objects), the longest chain a VMA
/// has (anon_vmas reachable from one VMA), and the bytes the kernel's
/// structures would take on x86-64.
public struct RmapMetadata: Sendable, Equatable {
    public var contexts = 0
    public var links = 0
    public var maxChain = 0
    public var bytes = 0
    public init() {}
}

/// The rmap seam: everything the operations tell a scheme, and how it walks
/// the mappings of a page. Three tiers of events, each with the call
/// context as part of the contract (see ARCHITECTURE.md for the lock
/// order each scheme keeps):
///
/// - mm events: a new image, fork, exit;
/// - VMA events: prepare (may allocate; before the first page, outside the
///   ptl), fork, copy (mremap), split, merge, unmap;
/// - page events: added, cloned (migration), freed, moved (mremap), and
///   whether a swap-cache page may be mapped where it is faulted.
///
/// Every design decision of a scheme (anongroup's mremap copy rule and
/// swap-in index rule, either scheme's link order) lives in the scheme;
/// the operations only ask. A scheme owns its planted bugs too.
protocol RmapScheme: Sendable {
    init(config: MachineConfig, log: ViolationLog)
    func destroy()
    /// Names one of the scheme's locks by its address (replay traces).
    func lockName(address: UInt) -> String?

    static var kind: SchemeKind { get }
    /// Live rmap contexts (anongroups or anon_vmas), for statistics.
    var contextsInUse: Int { get }
    /// The pool of the scheme's context slots (fronted by per-CPU caches).
    var slotPool: NodePool { get }
    /// Bytes of rmap metadata the scheme adds per VMA and per mm (the 2004
    /// thread's "24 bytes per VMA").
    static var metadataBytes: (perVMA: Int, perMM: Int) { get }
    /// Whether rmap walks read VMA records (then VMAs are freed after a
    /// grace period, else at once).
    static var walkersReadVMAs: Bool { get }

    // MARK: mm events

    /// A new image (new process, exec) gets its rmap context; holds nothing
    /// but the new mm, which is published and has its VMAs. False when out
    /// of slots.
    func mmStarted<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) -> Bool
    /// fork: the child joins the parent's context. Parent's mmap lock held
    /// for writing; called before the PTEs are copied (`forkLinkPhase`).
    /// False: out of context slots, nothing of the child left in the rmap
    /// (the fork backs off; `mmExited` follows).
    func mmForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool
    /// exit: the mm's page tables and VMAs are gone; it leaves its context.
    /// Walkers may still be looking at it until a grace period ends.
    func mmExited<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU)
    /// When fork links the child (before its PTEs are copied, unless a bug).
    func forkLinkPhase<P>(_ k: Kernel<Self, P>) -> ForkLinkPhase

    // MARK: VMA events

    /// Before the first page of `vma` is added: the fault path, with the
    /// mm's mmap lock held for reading and no ptl (it may allocate; racing
    /// faults of the same mm may prepare at once). False: out of memory.
    func vmaPrepare<P>(_ k: Kernel<Self, P>, mm: UInt32, vma: UInt32, cpu: CPU) -> Bool
    /// fork: `child` (of the unpublished child mm) copies `parent`. Parent's
    /// mmap lock held for writing. False: out of memory, with nothing of
    /// `child` left in the rmap (the fork backs off).
    func vmaForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool
    /// mremap: `new` copies `old` at another place, before any PTE moves.
    /// mmap lock held for writing. False: out of memory, nothing of `new`
    /// left in the rmap (the mremap backs off).
    func vmaCopied<P>(_ k: Kernel<Self, P>, old: UInt32, new: UInt32, cpu: CPU) -> Bool
    /// The page offset mremap gives the copy of a VMA at `newStart`.
    func movedPgoff<P>(_ k: Kernel<Self, P>, old pgoff: UInt64, newStart: UInt64) -> UInt64
    /// split: `new` is the upper part of `vma`, before `vma` shrinks. mmap
    /// lock held for writing. False: out of memory, nothing of `new` left
    /// in the rmap (the split backs off).
    func vmaSplit<P>(_ k: Kernel<Self, P>, vma: UInt32, new: UInt32, cpu: CPU) -> Bool
    /// vma_merge: may adjacent VMAs `lower` and `upper` of one mm (linear
    /// offsets continuous) become one, as far as the rmap is concerned?
    /// mmap lock held for writing.
    func canMergeVMAs<P>(_ k: Kernel<Self, P>, lower: UInt32, upper: UInt32) -> Bool
    /// vma_merge: `removed` is absorbed into `kept`, before `kept` grows
    /// over `removed`'s pages; the scheme makes `kept`'s rmap state cover
    /// them. The caller then calls `vmaUnmapped(removed)`. mmap lock held
    /// for writing. False: out of memory, nothing changed (the merge backs
    /// off, as vma_merge does when dup_anon_vma fails).
    func vmaMerged<P>(_ k: Kernel<Self, P>, kept: UInt32, removed: UInt32, cpu: CPU) -> Bool
    /// `vma` leaves its mm (munmap, exit, merge, the old half of mremap);
    /// its PTEs are gone or moved. It is retired (RCU) right after.
    func vmaUnmapped<P>(_ k: Kernel<Self, P>, vma: UInt32, cpu: CPU)

    // MARK: Page events

    /// A frame becomes an anonymous page first mapped at (mm, vpn) in `vma`:
    /// sets page.mapping and page.index. ptl held; the frame is new.
    func pageAdded<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64)
    /// do_wp_page reuses exclusive page `frame` (mapped once, in `vma` of
    /// `mm`) for a write, before its PTE becomes writable. ptl held.
    func pageReused<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32)
    /// Migration: `to` takes over `from`'s place in the rmap. Both locked.
    func pageCloned<P>(_ k: Kernel<Self, P>, from: UInt32, to: UInt32)
    /// The frame's last reference is gone.
    func pageFreed<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU)
    /// mremap takes the page lock of each page it moves (ptl dropped while
    /// it waits) before asking `pageMove`.
    func moveNeedsPageLock<P>(_ k: Kernel<Self, P>) -> Bool
    /// mremap: what happens to mapped `frame` whose PTE in `mm` moves. ptl
    /// held (and the page lock, if `moveNeedsPageLock`).
    func pageMove<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32) -> PageMove
    /// mremap: `frame` (exclusive, locked) now sits at `newVpn` (`.reindex`).
    func pageMoved<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, newVpn: UInt64, cpu: CPU)
    /// mremap of `pages` pages of `mm` from `oldStart` to `newStart`: before
    /// the first PTE moves, mmap lock held for writing, nothing else.
    func rangeMoveBegin<P>(_ k: Kernel<Self, P>, mm: UInt32, oldStart: UInt64, newStart: UInt64, pages: Int, cpu: CPU)
    /// The move failed part way: the PTEs already moved go back next
    /// (`pageMove` is asked again for each). mmap lock held for writing.
    func rangeMoveBack<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU)
    /// After the last PTE moved (or moved back: `moved` false). mmap lock
    /// held for writing, nothing else.
    func rangeMoveEnd<P>(_ k: Kernel<Self, P>, mm: UInt32, moved: Bool, cpu: CPU)
    /// Swap-in: may swap-cache page `frame` be mapped at (mm, vpn) in `vma`
    /// as it is (true), or must the faulting mm get a copy (false)?
    /// ptl held, page locked.
    func canMapCached<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) -> Bool

    // MARK: Walks and checks

    /// Visits every (mm, vpn) that may map `frame`, in list order, with the
    /// list protected for the whole walk. The page is locked and pinned.
    /// Returns the objects visited (mms or VMAs).
    func walk<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU, _ visit: (UInt32, UInt64) -> Void) -> Int
    /// Invariant 1 for this scheme: may a PTE of `mm` at `vpn` map `frame`?
    /// Under the mm's ptl and mmap lock, or with the world stopped.
    func locationOK<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64) -> Bool

    /// Full audit of the scheme's own objects (all operations paused).
    func audit<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void)
    /// After every process exited and every retired slot was freed: nothing left.
    func leakCheck<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void)
    /// The scheme's rmap metadata now (statistics: may scan its tables;
    /// exact with the world stopped).
    func metadata<P>(_ k: Kernel<Self, P>) -> RmapMetadata

    // MARK: PTE events (pte-chains; the other schemes ignore them)

    /// A PTE of `mm` at `vpn` now maps `frame` (present or migration
    /// entry), before the mapcount counts it. ptl held.
    func pteInstalled<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64, cpu: CPU)
    /// The PTE of `mm` at `vpn` no longer maps `frame`, after the mapcount
    /// dropped it. ptl held; possibly inside a walk of `frame`.
    func pteCleared<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64, cpu: CPU)
    /// Every (mm, vpn) the walk visits maps the page (with the ptl held):
    /// a visit that finds none is a broken rmap, not a wasted visit.
    static var walkIsExact: Bool { get }
    /// The walk holds a lock that ranks after the ptl (pte_chain_lock), so
    /// it may only trylock each ptl; a walk that must be complete
    /// (migration) walks again while a trylock failed.
    static var walkTrylocksPTL: Bool { get }
}

extension RmapScheme {
    @inline(__always) func rangeMoveBegin<P>(_ k: Kernel<Self, P>, mm: UInt32, oldStart: UInt64, newStart: UInt64, pages: Int, cpu: CPU) {}
    @inline(__always) func rangeMoveBack<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) {}
    @inline(__always) func rangeMoveEnd<P>(_ k: Kernel<Self, P>, mm: UInt32, moved: Bool, cpu: CPU) {}
    @inline(__always) func pteInstalled<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64, cpu: CPU) {}
    @inline(__always) func pteCleared<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64, cpu: CPU) {}
    static var walkIsExact: Bool { false }
    static var walkTrylocksPTL: Bool { false }
}

/// A scheme whose pages name an mm (or a PTE), not a VMA: anongroup,
/// pte-chains, cow-context. VMA events need no rmap work, any two VMAs of
/// one mm may merge, and a moved VMA keeps its pgoff. Written once here so
/// the three schemes cannot drift apart.
protocol VMABlindRmap: RmapScheme {}

extension VMABlindRmap {
    @inline(__always) func vmaPrepare<P>(_ k: Kernel<Self, P>, mm: UInt32, vma: UInt32, cpu: CPU) -> Bool { true }
    func vmaForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool { true }
    func vmaCopied<P>(_ k: Kernel<Self, P>, old: UInt32, new: UInt32, cpu: CPU) -> Bool { true }
    func movedPgoff<P>(_ k: Kernel<Self, P>, old pgoff: UInt64, newStart: UInt64) -> UInt64 { pgoff }
    func vmaSplit<P>(_ k: Kernel<Self, P>, vma: UInt32, new: UInt32, cpu: CPU) -> Bool { true }
    func canMergeVMAs<P>(_ k: Kernel<Self, P>, lower: UInt32, upper: UInt32) -> Bool { true }
    func vmaMerged<P>(_ k: Kernel<Self, P>, kept: UInt32, removed: UInt32, cpu: CPU) -> Bool { true }
    func vmaUnmapped<P>(_ k: Kernel<Self, P>, vma: UInt32, cpu: CPU) {}
}
