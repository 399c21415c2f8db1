/// Address-space operations on a named VMA and page, as a replayed program
/// asks for them (mmap, munmap, mremap, a touch of one page,
/// madvise(MADV_DONTNEED)), where the stress mix picks VMAs and addresses
/// at random. Same paths, same locks and same checks as the random ones.
///
/// A VMA is named by its handle; fork copies a parent's table entry `t` to
/// the child's entry `t` (`vmaTable`), which is how a caller follows a VMA
/// into the child. Callers serialize the operations of one mm, as a
/// program's own calls are serialized by its mmap lock.
///
/// Locks (order: `LockClass`): mmapLock (write for map, unmap and move; read
/// for touch and drop), then the ptl inside zap and fault.
extension Kernel {
    /// mmap of a fresh anonymous private VMA of `pages` pages
    /// (1...`config.vmaPages`) at a free slot of `mm`. Its handle, or 0 when
    /// the mm's table is full or VMA slots ran out.
    func mapVMA(_ mm: UInt32, pages: Int, _ cpu: CPU) -> UInt32 {
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        guard vmaCount(mm) < MachineConfig.maxVMAs else { return 0 }
        let start = freeSlotStart(mm, cpu)
        let v = newVMA(mm, start: start, pages: max(1, min(pages, config.vmaPages)), pgoff: start, ctx: 0, cpu)
        guard v != 0 else { return 0 }
        if !insertVMA(mm, v) { freeUnpublishedVMA(v, cpu); return 0 }
        return v
    }

    /// The table entry of `mm` that holds VMA `v`. mmap lock held.
    private func tableIndex(_ mm: UInt32, _ v: UInt32) -> Int? {
        guard v != 0 else { return nil }
        return (0..<MachineConfig.maxVMAs).first { vmaHandle(mm, $0) == v }
    }

    /// munmap of VMA `v` of `mm`: its PTEs zapped, the VMA off the rmap and
    /// freed. False when `v` is not a VMA of `mm`.
    func unmapVMA(_ mm: UInt32, vma v: UInt32, _ cpu: CPU) -> Bool {
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        guard tableIndex(mm, v) != nil else { return false }
        let from = vmaStart(v)
        zap(mm, v, cpu)
        unmapVMA(mm, v, cpu)
        freeUnusedLeaf(mm, at: from, cpu)
        return true
    }

    /// mremap of VMA `v` of `mm` to a free slot (MREMAP_MAYMOVE with a new
    /// address): the scheme's move rule applies to every page. The moved
    /// VMA's handle, or 0 when `v` is not a VMA of `mm` or memory ran out
    /// (the VMA then stays where it was).
    func moveVMA(_ mm: UInt32, vma v: UInt32, _ cpu: CPU) -> UInt32 {
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        guard let t = tableIndex(mm, v) else { return 0 }
        let to = freeSlotStart(mm, cpu)
        guard mremapLocked(mm, vma: t, to: to, cpu) else { return 0 }
        return findVMA(mm, to)
    }

    /// A read or write of page `page` of VMA `v` of `mm`.
    func touch(_ mm: UInt32, vma v: UInt32, page: Int, write: Bool, _ cpu: CPU) -> FaultResult {
        mmapRead(mm)
        let ok = tableIndex(mm, v) != nil && page >= 0 && page < vmaPages(v)
        let vpn = ok ? vmaStart(v) + UInt64(page) : 0
        mmapUnlock(mm)
        guard ok else { return .badAddress }
        return fault(mm, vpn: vpn, write: write, cpu)
    }

    /// madvise(MADV_DONTNEED) of `count` pages of VMA `v` from `first`:
    /// the PTEs go, the VMA stays (a later touch faults a fresh page).
    func dropPages(_ mm: UInt32, vma v: UInt32, first: Int, count: Int, _ cpu: CPU) -> Bool {
        mmapRead(mm)
        defer { mmapUnlock(mm) }
        guard tableIndex(mm, v) != nil else { return false }
        let n = vmaPages(v)
        let lo = max(0, min(first, n)), hi = max(lo, min(n, first + count))
        if hi > lo { zap(mm, from: vmaStart(v) + UInt64(lo), pages: hi - lo, cpu) }
        return true
    }

    /// `mm`'s VMA table: entry `t` holds a handle or 0 (fork keeps entries).
    func vmaTable(_ mm: UInt32) -> [UInt32] {
        mmapRead(mm)
        defer { mmapUnlock(mm) }
        return (0..<MachineConfig.maxVMAs).map { vmaHandle(mm, $0) }
    }
}

extension Kernel {
    /// mmap of `pages` pages of inode `ino` from page `pgoff` (a replayed
    /// program's file mapping), shared or private, at a free slot of `mm`.
    /// `pages` is clamped to 1...min(vmaPages, file size), `pgoff` so that
    /// the mapping ends within the file. Its handle, or 0 when `ino` is not
    /// an inode or the table is full.
    func mapFileVMA(_ mm: UInt32, inode ino: UInt32, pgoff: UInt64, pages: Int, shared: Bool, _ cpu: CPU) -> UInt32 {
        guard files.isFile(ino) else { return 0 }
        let n = max(1, min(pages, config.vmaPages, files.maxPages))
        let off = min(pgoff, UInt64(files.maxPages - n))
        return mmapFile(mm, inode: ino, pgoff: off, pages: n, shared: shared, cpu)
    }

    /// Pages in every inode's page cache (a racy sum, for samples).
    var pageCachePages: Int {
        var n = 0
        if files.count > 0 { for i in 1...files.count { n += Int(files.inode[i].nrpages.load(ordering: .relaxed)) } }
        return n
    }
}
