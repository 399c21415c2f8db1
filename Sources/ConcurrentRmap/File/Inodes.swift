import Synchronization

/// One inode: its size, its `i_mmap` list and its page cache's count.
///
/// - `size`: the file's size in pages (i_size). Stored with sequential
///   consistency: truncate stores it and then scans the cache, a fault on a
///   miss inserts into the cache and then loads it (see `Truncate.swift`).
/// - `head`, `tail`: the ends of `i_mmap`, a doubly linked list through
///   the VMA records (`VMARecord.iNext/iPrev`), under the inode's i_mmap
///   lock.
/// - `mappings`: VMAs on `i_mmap`, the inode's references from mappings.
/// - `nrpages`: pages in its cache.
/// - `truncating`: truncates in flight.
struct InodeRecord: ~Copyable {
    let size = Atomic<UInt64>(0)
    let head = Atomic<UInt32>(0)
    let tail = Atomic<UInt32>(0)
    /// The root of the i_mmap interval tree (`--i-mmap tree`; `head` and
    /// `tail` stay 0 then).
    let root = Atomic<UInt32>(0)
    let mappings = Atomic<Int32>(0)
    let nrpages = Atomic<Int32>(0)
    /// Truncates in flight (set before the size store, cleared after the
    /// last page beyond it is gone): with none, a mapped page beyond EOF
    /// is a bug wherever it is seen.
    let truncating = Atomic<Int32>(0)
    /// A shmem inode's state (`ShmemState`); file inodes stay `free`.
    let shmemState = Atomic<UInt32>(0)
    /// A shmem inode's incarnations so far (bumped at each eviction): a
    /// diagnostic for reports, not a guard (a walker that pinned a page of
    /// an old incarnation finds it out of the cache under its page lock).
    let generation = Atomic<UInt32>(0)
}

/// A shmem inode's life: free (on the pool), allocated (mapped by at
/// least one VMA once its mmap returns), evicting (the last mapping left;
/// its pages are going).
enum ShmemState {
    static let free: UInt32 = 0
    static let allocated: UInt32 = 1
    static let evicting: UInt32 = 2
}

/// The file subsystem: a fixed set of inodes (handles 1...fileCount,
/// created with the machine and living as long: files on a disk that never
/// goes away), then a pool of shmem inodes (handles fileCount+1...count:
/// the internal tmpfs files behind MAP_SHARED|MAP_ANONYMOUS, allocated by
/// mmap and evicted when their last mapping goes), each with a page cache of `maxPages` slots indexed by file offset
/// (the bound on a file's size), its "disk" (one content word per page,
/// what writeback writes and a miss reads), its i_mmap lock (i_mmap_rwsem)
/// and its inode lock (i_rwsem, truncate's).
struct Inodes {
    /// Every handle: file inodes and shmem inodes.
    let count: Int
    let fileCount: Int
    let shmemCount: Int
    let maxPages: Int
    let inode: UnsafeMutablePointer<InodeRecord>
    /// The page cache: frame per (inode, index), 0 when not cached.
    let cache: UnsafeMutablePointer<Atomic<UInt32>>
    let disk: UnsafeMutablePointer<Atomic<UInt64>>
    let iMmapLock: RWLockArray
    let inodeLock: MutexArray
    /// i_mmap is an interval tree (`IMmapKind.tree`), not a list.
    let tree: Bool
    /// Inodes 1...libraries are shared libraries (`MachineConfig.libraries`).
    let libraries: Int

    init(count files: Int, shmem: Int = 0, maxPages: Int, tree: Bool = false, libraries: Int = 0) {
        let count = files + shmem
        self.count = count
        fileCount = files
        shmemCount = shmem
        self.maxPages = maxPages
        self.tree = tree
        self.libraries = libraries
        inode = .allocate(capacity: count + 1)
        for i in 0...count { (inode + i).initialize(to: InodeRecord()) }
        // Files are full size; a shmem inode is sized by the mmap that allocates it.
        for i in 1...max(1, files) where i <= files { inode[i].size.store(UInt64(maxPages), ordering: .relaxed) }
        let n = (count + 1) * maxPages
        cache = .allocate(capacity: n)
        disk = .allocate(capacity: n)
        for i in 0..<n { (cache + i).initialize(to: Atomic(0)); (disk + i).initialize(to: Atomic(0)) }
        iMmapLock = RWLockArray(count: count + 1)
        inodeLock = MutexArray(count: count + 1)
    }

    func destroy() {
        inode.deinitialize(count: count + 1); inode.deallocate()
        let n = (count + 1) * maxPages
        cache.deinitialize(count: n); cache.deallocate()
        disk.deinitialize(count: n); disk.deallocate()
        iMmapLock.destroy()
        inodeLock.destroy()
    }

    @inline(__always) func contains(_ ino: UInt32) -> Bool { ino >= 1 && Int(ino) <= count }
    /// Whether `ino` is a file on the disk (not a shmem inode).
    @inline(__always) func isFile(_ ino: UInt32) -> Bool { ino >= 1 && Int(ino) <= fileCount }
    /// Whether `ino` is a shmem inode (of the pool).
    @inline(__always) func isShmem(_ ino: UInt32) -> Bool { Int(ino) > fileCount && Int(ino) <= count }
    /// Whether `ino` is a shared library's (truncate leaves it alone).
    @inline(__always) func isLibrary(_ ino: UInt32) -> Bool { ino >= 1 && Int(ino) <= libraries }
    @inline(__always) func slot(_ ino: UInt32, _ index: UInt64) -> UnsafeMutablePointer<Atomic<UInt32>> {
        cache + (Int(ino) * maxPages + Int(index))
    }
    @inline(__always) func diskWord(_ ino: UInt32, _ index: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>> {
        disk + (Int(ino) * maxPages + Int(index))
    }
}

/// What a VMA maps (`VMARecord.file`): an inode handle, and whether the
/// mapping is shared (MAP_SHARED) or private. 0: anonymous.
enum VMAFile {
    static let shared: UInt32 = 1 << 31
    @inline(__always) static func inode(_ f: UInt32) -> UInt32 { f & ~shared }
    @inline(__always) static func isShared(_ f: UInt32) -> Bool { f & shared != 0 }
}
