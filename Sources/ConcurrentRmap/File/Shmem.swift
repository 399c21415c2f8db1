/// Shared anonymous memory (mmap(MAP_SHARED|MAP_ANONYMOUS)), as Linux's
/// shmem does it: the mapping is of an unlinked file on an internal tmpfs
/// mount. Here that file is a shmem inode from a pool beside the file
/// inodes (`Inodes`): its pages are page cache pages, not PageAnon, so
/// the rmap walk takes the i_mmap branch under every scheme; fork's child
/// VMA joins the same i_mmap and refaults (no PTE copy), as for any shared
/// file mapping.
///
/// Life cycle: `mmapShmem` takes a free inode (a CAS on its state, no
/// lock, no allocation), sizes it to the mapping and links the VMA. The
/// inode lives while a VMA maps it (`mappings`): the unlink that takes
/// that count to 0 (munmap, exit, exec: `iMmapUnlink(_:_:)`) evicts it:
/// every cache page taken out under its page lock (as truncate to 0, but
/// nothing is mapped), the backing words cleared, the size set to 0, then
/// the handle goes back to the pool. Nothing can map it again once the
/// count is 0: a new mapping of the inode is only ever made from a VMA
/// that maps it (fork, split, mremap), under that VMA's mmap lock.
///
/// Reuse: a walker that pinned a page of an old incarnation (reclaim,
/// migration) re-checks the page's pageCache flag, mapping and index under
/// the page lock, which eviction clears under the same lock; a frame
/// freed and reused as a page of the new incarnation is that page. So no
/// generation check is needed; `generation` only tells incarnations apart
/// in reports.
///
/// Swap: reclaim writes a dirty shmem page to the inode's "disk" words
/// before it drops it (`writeback`), and a later fault reads it back. The
/// kernel writes shmem pages to swap (shmem_writepage) and keeps the swap
/// entry in the inode's mapping; the disk words stand for that swap copy.
///
/// ftruncate of a shm fd is not modelled: truncate picks file inodes only.
///
/// Locks (order: `LockClass`): allocation takes none (a CAS); mmap as
/// mmap-file (mmap lock (write) -> i_mmap lock (write)); eviction runs
/// after the i_mmap lock is released, under the unmapping mm's mmap lock
/// (write) alone: page lock (blocking, as truncate's), no ptl.
extension Kernel {
    /// A shared anonymous mapping of random size in pinned `mm`. False
    /// when the pool is empty (counted as `shmemAllocFailed`) or the
    /// process has no VMA slot.
    func mmapShmem(_ mm: UInt32, _ cpu: CPU) -> Bool {
        guard files.shmemCount > 0 else { return false }
        return mmapShmem(mm, pages: 1 + cpu.pointee.random(below: files.maxPages), cpu) != 0
    }

    /// mmap(MAP_SHARED|MAP_ANONYMOUS) of `pages` pages (1...maxPages) in
    /// `mm`: a new shmem inode of that size mapped whole. The VMA, or 0.
    func mmapShmem(_ mm: UInt32, pages: Int, _ cpu: CPU) -> UInt32 {
        precondition(pages >= 1 && pages <= files.maxPages)
        let ino = shmemAlloc(pages: pages, cpu)
        guard ino != 0 else { cpu.pointee.count(.shmemAllocFailed); return 0 }
        let v = mmapFile(mm, inode: ino, pgoff: 0, pages: pages, shared: true, cpu)
        // No VMA: nothing maps it, nothing is cached; back to the pool.
        if v == 0 { shmemEvict(ino, cpu, mapped: false) }
        return v
    }

    /// shmem_file_setup: a free shmem inode, allocated and sized to
    /// `pages`; 0 when the pool is empty. Scans the pool from a random
    /// start so that CPUs do not all contend on its first inode.
    func shmemAlloc(pages: Int, _ cpu: CPU) -> UInt32 {
        let n = files.shmemCount
        guard n > 0 else { return 0 }
        let start = cpu.pointee.random(below: n)
        for k in 0..<n {
            let ino = UInt32(files.fileCount + 1 + (start + k) % n)
            let r = files.inode + Int(ino)
            guard r.pointee.shmemState.load(ordering: .relaxed) == ShmemState.free,
                  r.pointee.shmemState.compareExchange(expected: ShmemState.free, desired: ShmemState.allocated, ordering: .acquiring).exchanged
            else { continue }
            checkShmemEmpty(ino, cpu)
            files.inode[Int(ino)].size.store(UInt64(pages), ordering: .sequentiallyConsistent)
            return ino
        }
        return 0
    }

    /// A shmem inode just taken from the pool must be empty: no mapping,
    /// no cached page (an eviction that left pages behind hands them to
    /// the next incarnation, which would read the old one's data).
    private func checkShmemEmpty(_ ino: UInt32, _ cpu: CPU) {
        guard checks != .off else { return }
        let r = files.inode + Int(ino)
        let mapped = r.pointee.mappings.load(ordering: .relaxed), cached = r.pointee.nrpages.load(ordering: .relaxed)
        if cached != 0 {
            report(.leak, cpu: cpu, "shmem inode \(ino) (incarnation \(r.pointee.generation.load(ordering: .relaxed))) left the pool with \(cached) pages of its last life in its cache")
        }
        if mapped != 0 {
            report(.lifetime, cpu: cpu, "shmem inode \(ino) left the pool with \(mapped) VMAs on its i_mmap")
        }
    }

    /// The unlink of a VMA that goes for good (munmap, exit, exec,
    /// mremap's old VMA): `iMmapUnlink`, and the eviction of a shmem inode
    /// whose last mapping this was. mmap lock held for writing.
    func iMmapUnlink(_ v: UInt32, _ cpu: CPU) {
        let ino = VMAFile.inode(vmaFile(v))
        let left = iMmapUnlink(v)
        guard files.isShmem(ino), let left else { return }
        // The planted bug: the count is taken for one that still includes
        // this VMA, so a mapping of another VMA (a forked child's, or the
        // parent's after a child's exit) is still there.
        if left == 0 || (left == 1 && inject == .shmemEvictWhileMapped) { shmemEvict(ino, cpu) }
    }

    /// evict (shmem_evict_inode + truncate_inode_pages to 0): every cache
    /// page of shmem inode `ino` leaves under its page lock, its backing is
    /// cleared, and the handle returns to the pool. No VMA maps the inode;
    /// a reclaim or migration that found one of its pages may still hold
    /// it, and is waited for (page lock) or finds it gone (its re-check).
    /// `mapped`: false for an inode whose mmap failed (not counted).
    func shmemEvict(_ ino: UInt32, _ cpu: CPU, mapped: Bool = true) {
        let r = files.inode + Int(ino)
        guard r.pointee.shmemState.compareExchange(expected: ShmemState.allocated, desired: ShmemState.evicting,
                                                   ordering: .acquiringAndReleasing).exchanged else {
            report(.lifetime, cpu: cpu, "shmem inode \(ino) evicted while \(r.pointee.shmemState.load(ordering: .relaxed) == ShmemState.free ? "free" : "already evicting")")
            return
        }
        if checks != .off, r.pointee.mappings.load(ordering: .relaxed) != 0 {
            report(.lifetime, cpu: cpu, "shmem inode \(ino) evicted with \(r.pointee.mappings.load(ordering: .relaxed)) VMAs still on its i_mmap")
        }
        for index in 0..<UInt64(files.maxPages) {
            let slot = files.slot(ino, index)
            while inject != .shmemEvictKeepsPages {
                let f = slot.pointee.load(ordering: .sequentiallyConsistent)
                guard f != 0 else { break }
                guard tryPin(f) else { P.relax(); continue }
                lockPage(f)
                guard inCache(f, ino, index) else { unlockPage(f); put(f, cpu); continue }
                if checks != .off && frames[Int(f)].mapcount.load(ordering: .relaxed) > 0 {
                    report(.lifetime, frame: f, vpn: index, cpu: cpu,
                           "page \(index) of shmem inode \(ino) is still mapped when the inode is evicted")
                }
                cacheRemove(f, discard: true, cpu)
                unlockPage(f)
                put(f, cpu)  // the cache's reference
                put(f, cpu)  // our pin
                break
            }
            // The swap copy goes with the file.
            files.diskWord(ino, index).pointee.store(0, ordering: .relaxed)
        }
        r.pointee.size.store(0, ordering: .sequentiallyConsistent)
        r.pointee.generation.wrappingAdd(1, ordering: .relaxed)
        r.pointee.shmemState.store(ShmemState.free, ordering: .releasing)
        if mapped { cpu.pointee.count(.shmemEvict) }
    }

    /// Shmem inodes allocated now (a racy read, for tests and samples).
    var shmemInUse: Int {
        var n = 0
        for k in 0..<files.shmemCount
        where files.inode[files.fileCount + 1 + k].shmemState.load(ordering: .relaxed) != ShmemState.free { n += 1 }
        return n
    }
}
