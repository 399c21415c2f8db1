/// The inode's i_mmap list (the VMAs mapping it), `mmap` of a file, and the
/// file branch of the rmap walk and of the location check.
///
/// Locks (order: `LockClass`): mmapLock (write) -> iMmap (write) for list
/// changes; pageLock -> iMmap (read) -> ptl for the walk. A VMA joins the
/// list once it is in its mm's table and leaves it before it is retired,
/// so a VMA on the list has a live (or dying) mm whose page tables exist:
/// teardown unlinks every VMA before it frees the leaves.
extension Kernel {
    @inline(__always) func iMmapRead(_ ino: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        P.readLock(files.iMmapLock.locks[Int(ino)], .iMmap, LockSite(file, line))
    }
    @inline(__always) func iMmapWrite(_ ino: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        P.writeLock(files.iMmapLock.locks[Int(ino)], .iMmap, LockSite(file, line))
    }
    @inline(__always) func iMmapUnlock(_ ino: UInt32) { P.unlock(files.iMmapLock.locks[Int(ino)]) }
    @inline(__always) func inodeLock(_ ino: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        P.lock(files.inodeLock.locks[Int(ino)], .inodeLock, LockSite(file, line))
    }
    @inline(__always) func inodeUnlock(_ ino: UInt32) { P.unlock(files.inodeLock.locks[Int(ino)]) }

    /// vma_interval_tree_insert: file VMA `v` joins its inode's i_mmap, at
    /// the tail (2.6.0's list_add_tail). Anonymous VMAs are ignored. mmap
    /// lock held for writing.
    ///
    /// Why the tail: mremap links its copy, then moves PTEs under the ptl
    /// alone while a walker may be on the list. With the copy behind the
    /// old VMA, a walker that reaches the old VMA after a PTE left it finds
    /// it in the copy later (anon_vma's rule for its copies; Linux's
    /// interval tree has no order and takes the rmap locks instead,
    /// need_rmap_locks). At the head, that walk missed it (found by
    /// `explore`).
    func iMmapLink(_ v: UInt32) {
        let ino = VMAFile.inode(vmaFile(v))
        guard ino != 0 else { return }
        let r = vmaRecord(v)
        iMmapWrite(ino)
        if files.tree {
            treeInsert(ino, v)
        } else {
            let t = files.inode[Int(ino)].tail.load(ordering: .relaxed)
            r.pointee.iNext.store(0, ordering: .relaxed)
            r.pointee.iPrev.store(t, ordering: .relaxed)
            if t != 0 { vmaRecord(t).pointee.iNext.store(v, ordering: .relaxed) } else { files.inode[Int(ino)].head.store(v, ordering: .relaxed) }
            files.inode[Int(ino)].tail.store(v, ordering: .relaxed)
        }
        r.pointee.iLinked.store(true, ordering: .relaxed)
        files.inode[Int(ino)].mappings.wrappingAdd(1, ordering: .relaxed)
        iMmapUnlock(ino)
    }

    /// vma_interval_tree_remove: `v` leaves i_mmap (if it is on it: a fork
    /// that failed part way leaves child VMAs that never joined). Before
    /// the VMA is retired; its PTEs are gone or moved. Returns the
    /// inode's mappings left, nil when `v` was on no i_mmap. A VMA that
    /// goes for good leaves through `iMmapUnlink(_:_:)` (`Shmem.swift`),
    /// which evicts a shmem inode it was the last mapping of.
    @discardableResult
    func iMmapUnlink(_ v: UInt32) -> Int32? {
        let ino = VMAFile.inode(vmaFile(v))
        guard ino != 0 else { return nil }
        let r = vmaRecord(v)
        iMmapWrite(ino)
        defer { iMmapUnlock(ino) }
        guard r.pointee.iLinked.load(ordering: .relaxed) else { return nil }
        if files.tree {
            treeRemove(ino, v)
        } else {
            let p = r.pointee.iPrev.load(ordering: .relaxed), n = r.pointee.iNext.load(ordering: .relaxed)
            if p != 0 { vmaRecord(p).pointee.iNext.store(n, ordering: .relaxed) } else { files.inode[Int(ino)].head.store(n, ordering: .relaxed) }
            if n != 0 { vmaRecord(n).pointee.iPrev.store(p, ordering: .relaxed) } else { files.inode[Int(ino)].tail.store(p, ordering: .relaxed) }
        }
        r.pointee.iLinked.store(false, ordering: .relaxed)
        return files.inode[Int(ino)].mappings.wrappingSubtract(1, ordering: .relaxed).newValue
    }

    /// Whether frame `f` is a file page (not anonymous): the PageAnon test
    /// that picks the walk's branch.
    @inline(__always) func isFilePage(_ f: UInt32) -> Bool {
        frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.anon == 0
    }

    /// The walk over i_mmap for file page `f` (locked, pinned): every VMA
    /// of inode `page.mapping` that covers `page.index` (vma_address).
    /// Returns the VMAs visited.
    @inline(__always) func fileWalk(_ f: UInt32, _ cpu: CPU, _ visit: (UInt32, UInt64) -> Void) -> Int {
        let ino = frames[Int(f)].mapping.load(ordering: .relaxed)
        let index = frames[Int(f)].index.load(ordering: .relaxed)
        guard files.contains(ino) else { return 0 }
        checkWithinEOF(f, ino, index, cpu)
        let locked = inject != .fileWalkNoIMmapLock
        if locked { iMmapRead(ino) }
        defer { if locked { iMmapUnlock(ino) } }
        let check = checks != .off
        return iMmapForEach(ino, index, index) { v in
            // Under the i_mmap lock every VMA on it is live, linked and of
            // this inode; one that is not left (or was freed and reused)
            // under the walker.
            if check && (spaces.vmas.load(v) != SlotState.live || !vmaRecord(v).pointee.iLinked.load(ordering: .relaxed)
                         || VMAFile.inode(vmaFile(v)) != ino) {
                report(.lifetime, frame: f, vpn: index, cpu: cpu,
                       "file walk of inode \(ino) reached VMA \(v), which left its i_mmap (\(SlotState.name(spaces.vmas.load(v))))")
                return false
            }
            if let (mm, vpn) = vmaAddress(v, index: index) { visit(mm, vpn) }
            if !locked { P.schedulingPoint() }
            // The same, after the visit (its race window): i_mmap must not
            // have changed under the walker.
            if check && !vmaRecord(v).pointee.iLinked.load(ordering: .relaxed) {
                report(.lifetime, frame: f, vpn: index, cpu: cpu,
                       "VMA \(v) left the i_mmap of inode \(ino) while the walk was on it")
                return false
            }
            return true
        }
    }

    /// The VMAs of inode `ino`'s i_mmap that may overlap file pages
    /// [lo, hi], in i_mmap order, until `body` returns false: every VMA of
    /// a list (the body checks the range), only the overlapping ones of a
    /// tree. Returns the VMAs (list) or tree nodes read. i_mmap lock held.
    @inline(__always) func iMmapForEach(_ ino: UInt32, _ lo: UInt64, _ hi: UInt64, _ body: (UInt32) -> Bool) -> Int {
        if files.tree { return treeQuery(ino, lo, hi, body) }
        var visited = 0
        var v = files.inode[Int(ino)].head.load(ordering: .relaxed)
        while v != 0 {
            visited += 1
            guard body(v) else { break }
            v = vmaRecord(v).pointee.iNext.load(ordering: .relaxed)
        }
        return visited
    }

    /// A mapped page beyond EOF with no truncate of its inode in flight
    /// (which would be about to unmap it): a fault mapped it after a
    /// truncate had passed, or a truncate left it. Page locked (walkers,
    /// the fault's present path holds the ptl: see the caller).
    @inline(__always) func checkWithinEOF(_ f: UInt32, _ ino: UInt32, _ index: UInt64, _ cpu: CPU? = nil) {
        guard checks != .off, index >= files.inode[Int(ino)].size.load(ordering: .sequentiallyConsistent),
              files.inode[Int(ino)].truncating.load(ordering: .sequentiallyConsistent) == 0,
              frames[Int(f)].mapcount.load(ordering: .relaxed) > 0 else { return }
        report(.location, frame: f, vpn: index, cpu: cpu,
               "page \(index) of inode \(ino) is mapped beyond EOF (\(files.inode[Int(ino)].size.load(ordering: .relaxed)) pages) with no truncate in flight")
    }

    /// Invariant 1 for both branches: may the PTE of `mm` at `vpn` map `f`?
    /// A file page only from a VMA of its inode at its index, inside the
    /// file, and writable only from a shared mapping (a private write
    /// copies). mmap lock and ptl held, or the world stopped.
    @inline(__always) func locationOK(_ f: UInt32, mm: UInt32, vpn: UInt64) -> Bool {
        let fl = frames[Int(f)].flags.load(ordering: .acquiring)
        if fl & FrameFlags.anon != 0 { return rmap.locationOK(self, frame: f, mm: mm, vpn: vpn) }
        let v = findVMA(mm, vpn)
        guard v != 0 else { return false }
        let file = vmaFile(v)
        let ino = frames[Int(f)].mapping.load(ordering: .relaxed)
        guard file != 0, VMAFile.inode(file) == ino, files.contains(ino),
              let (_, at) = vmaAddress(v, index: frames[Int(f)].index.load(ordering: .relaxed)), at == vpn else { return false }
        return true
    }

    /// mmap of a file: a new VMA of pinned `mm` at a free slot, mapping a
    /// random stretch of a random inode, shared or private; it joins the
    /// inode's i_mmap. False when out of VMA slots or table entries.
    func mmapFile(_ mm: UInt32, _ cpu: CPU) -> Bool {
        guard config.inodes > config.libraries else { return false }
        let ino = UInt32(1 + config.libraries + cpu.pointee.random(below: config.inodes - config.libraries))
        let pages = 1 + cpu.pointee.random(below: files.maxPages)
        let pgoff = UInt64(cpu.pointee.random(below: files.maxPages - pages + 1))
        let shared = cpu.pointee.random(below: 2) == 0
        return mmapFile(mm, inode: ino, pgoff: pgoff, pages: pages, shared: shared, cpu) != 0
    }

    /// mmap of `pages` pages of inode `ino` from file offset `pgoff`: the
    /// new VMA, or 0. Keeps one table entry free for mremap.
    func mmapFile(_ mm: UInt32, inode ino: UInt32, pgoff: UInt64, pages: Int, shared: Bool, _ cpu: CPU) -> UInt32 {
        precondition(files.contains(ino) && pgoff + UInt64(pages) <= UInt64(files.maxPages) && pages <= config.vmaPages)
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        guard vmaCount(mm) < MachineConfig.maxVMAs - 1 else { return 0 }
        let start = freeSlotStart(mm, cpu)
        let v = newVMA(mm, start: start, pages: pages, pgoff: pgoff, ctx: 0,
                       file: ino | (shared ? VMAFile.shared : 0), cpu)
        guard v != 0 else { return 0 }
        guard insertVMA(mm, v) else { freeUnpublishedVMA(v, cpu); return 0 }
        iMmapLink(v)
        cpu.pointee.count(files.isShmem(ino) ? .mmapShmem : .mmapFile)
        return v
    }
}
