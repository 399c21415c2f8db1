import Synchronization

/// One page frame: the model's `struct page`.
///
/// Fields and who may change them:
/// - `flags`: atomic bits. `locked` is the page lock (trylock by atomic OR,
///   waits by yielding); reclaim, migration and mremap's re-index hold it.
///   `referenced` records that reclaim's aging walk found a young PTE
///   (informational: nothing reads it yet).
/// - `refcount`: pins. Every PTE that maps the frame (present or migration
///   entry) holds one, plus transient pins of walkers. Increments come before
///   the matching mapcount increment, decrements after, so at rest
///   refcount == mapcount.
/// - `mapcount`: PTEs (present or migration) that map the frame, in all mms.
/// - `mapping`, `index`: the rmap anchor. For the anongroup scheme, the group
///   handle and the virtual page number every PTE of the frame sits at. Set
///   when the frame becomes anonymous; `index` changes only under the page lock.
/// - `content`: the 64-bit word that stands for the page's data. Written only
///   by the holder of the single writable PTE, under that mm's ptl.
/// - `remapEpoch`: cow-context only: how many remap records `mapping`'s
///   context held when the page took its (mapping, index); older records
///   never apply to the page. Set with `mapping`, under the same rules.
/// - `swapSlot`: the swap slot whose copy this page is, while the page is in
///   the swap cache (flag `swapCache`); 0 otherwise. Changed under the page
///   lock (swap-out adds, reclaim and reuse remove, migration moves).
///
/// A free frame has flags == free, both counts 0, mapping 0 and content and
/// index poisoned; the allocator checks all of that when it hands it out.
struct Frame: ~Copyable {
    let flags = Atomic<UInt32>(FrameFlags.free)
    let refcount = Atomic<Int32>(0)
    let mapcount = Atomic<Int32>(0)
    let mapping = Atomic<UInt32>(0)
    let index = Atomic<UInt64>(Frame.poison)
    let content = Atomic<UInt64>(Frame.poison)
    let swapSlot = Atomic<UInt32>(0)
    let remapEpoch = Atomic<UInt32>(0)
    /// To 64 bytes, like Linux's struct page: one page per cache line, so
    /// two CPUs working on neighbouring pages do not share a line.
    private let padding: (UInt64, UInt64, UInt64) = (0, 0, 0)

    static let poison: UInt64 = 0x6b6b_6b6b_dead_beef
    /// Byte offset of `mapcount` (after flags and refcount), for the
    /// racy-mapcount injection's plain accesses; Kernel.init verifies it.
    static let mapcountOffset = 8
}

enum FrameFlags {
    static let free: UInt32 = 1 << 0
    static let anon: UInt32 = 1 << 1
    static let locked: UInt32 = 1 << 2
    static let referenced: UInt32 = 1 << 3
    /// In the swap cache: a clean copy of swap slot `swapSlot`.
    static let swapCache: UInt32 = 1 << 4
    /// In the page cache of inode `mapping` at file offset `index` (set
    /// and cleared under the page lock). A page that is not `anon` is a
    /// file page: the rmap walk takes the i_mmap branch.
    static let pageCache: UInt32 = 1 << 5
    /// A page cache page written since its last writeback.
    static let dirty: UInt32 = 1 << 6
}
