/// ftruncate (truncate_setsize + truncate_pagecache): shrink a file, unmap
/// every mapping beyond the new size through i_mmap, drop the cache pages
/// beyond it.
///
/// The race with faults: truncate stores the size and then looks at the
/// cache slots; a fault inserts into a slot and then loads the size (both
/// sequentially consistent), and re-checks the size under the page lock
/// on a hit. Either the fault sees the new size and backs off, or truncate
/// sees its page and waits for its lock, then unmaps what it mapped.
///
/// Locks (order: `LockClass`): inodeLock, then iMmap (read) -> ptl for the
/// unmap, then each page lock (with the walk's iMmap -> ptl under it).
extension Kernel {
    /// Truncates a random inode to a random smaller size, or grows it back
    /// to its full size when it is already small. Returns the new size.
    @discardableResult
    func truncate(_ cpu: CPU) -> Int {
        // Shared libraries are never truncated (ETXTBSY's spirit).
        guard config.inodes > config.libraries else { return 0 }
        let ino = UInt32(1 + config.libraries + cpu.pointee.random(below: config.inodes - config.libraries))
        let size = Int(files.inode[Int(ino)].size.load(ordering: .relaxed))
        let to = size < files.maxPages / 2 ? files.maxPages : cpu.pointee.random(below: size)
        truncate(ino, to: to, cpu)
        return to
    }

    /// Sets inode `ino`'s size to `pages`; when it shrinks, nothing beyond
    /// it is mapped or cached once this returns.
    func truncate(_ ino: UInt32, to pages: Int, _ cpu: CPU) {
        precondition(files.contains(ino) && pages >= 0 && pages <= files.maxPages)
        let new = UInt64(pages)
        inodeLock(ino)
        defer { inodeUnlock(ino) }
        let old = files.inode[Int(ino)].size.load(ordering: .relaxed)
        checkNothingBeyond(ino, old, cpu)
        files.inode[Int(ino)].truncating.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { files.inode[Int(ino)].truncating.wrappingSubtract(1, ordering: .releasing) }
        files.inode[Int(ino)].size.store(new, ordering: .sequentiallyConsistent)
        cpu.pointee.count(.truncate)
        guard new < old else { return }
        raceWindow(cpu)  // size set, mappings not yet gone: faults re-check
        if inject != .fileTruncateNoUnmap { unmapMappingRange(ino, from: new, cpu) }
        // truncate_inode_pages: each cached page beyond the size, under its
        // lock; one a racing fault mapped meanwhile is unmapped first.
        for index in new..<UInt64(files.maxPages) {
            let slot = files.slot(ino, index)
            while true {
                let f = slot.pointee.load(ordering: .sequentiallyConsistent)
                guard f != 0 else { break }
                guard tryPin(f) else { P.relax(); continue }
                lockPage(f)
                guard inCache(f, ino, index) else { unlockPage(f); put(f, cpu); continue }
                if frames[Int(f)].mapcount.load(ordering: .relaxed) > 0 && inject != .fileTruncateNoUnmap {
                    unmapPage(f, cpu)
                }
                cacheRemove(f, discard: true, cpu)
                unlockPage(f)
                put(f, cpu)  // the cache's reference
                put(f, cpu)  // our pin
                break
            }
            files.diskWord(ino, index).pointee.store(0, ordering: .relaxed)
        }
    }

    /// Before a truncate changes the size from `old` pages: nothing may be
    /// cached beyond `old` (what a fault that raced the last shrink would
    /// have left), or a grown size would make it legal, and a shrink would
    /// drop it, unseen. Each page is looked at under its lock: a fault
    /// that inserted one and is about to re-check the size and take it
    /// out holds that lock until it has. Inode lock held.
    private func checkNothingBeyond(_ ino: UInt32, _ old: UInt64, _ cpu: CPU) {
        guard checks != .off else { return }
        for index in old..<UInt64(files.maxPages) {
            let f = files.slot(ino, index).pointee.load(ordering: .sequentiallyConsistent)
            guard f != 0, tryPin(f) else { continue }
            lockPage(f)
            if inCache(f, ino, index) {
                report(.location, frame: f, vpn: index, cpu: cpu,
                       "page \(index) of inode \(ino) is cached beyond EOF (\(old) pages)\(frames[Int(f)].mapcount.load(ordering: .relaxed) > 0 ? " and mapped" : "") when the next truncate starts")
            }
            unlockPage(f)
            put(f, cpu)
        }
    }

    /// unmap_mapping_range(even_cows): every PTE of every VMA on i_mmap at a
    /// file offset from `from` on goes, file pages and private copies alike.
    func unmapMappingRange(_ ino: UInt32, from: UInt64, _ cpu: CPU) {
        iMmapRead(ino)
        defer { iMmapUnlock(ino) }
        _ = iMmapForEach(ino, from, UInt64.max) { v in
            let mm = vmaMM(v)
            let start = vmaStart(v), pages = UInt64(vmaPages(v)), pgoff = vmaPgoff(v)
            if pgoff + pages > from {
                let skip = from > pgoff ? from - pgoff : 0
                zap(mm, from: start + skip, pages: Int(pages - skip), cpu)
            }
            return true
        }
    }

    /// unmap_mapping_folio: every PTE of locked, pinned file page `f` goes
    /// (a fault mapped it after truncate's range unmap passed).
    func unmapPage(_ f: UInt32, _ cpu: CPU) {
        _ = rmapWalk(f, trylock: false, cpu) { _, _, i in
            let pte = pte(at: i)
            guard pte.mappedFrame == f else { return false }
            setPTE(at: i, .none)
            mapDec(f, cpu)
            put(f, cpu)  // cannot free: we hold a pin
            return true
        }
        let left = frames[Int(f)].mapcount.load(ordering: .relaxed)
        if left != 0 && checks != .off {
            report(.incompleteWalk, frame: f, vpn: frames[Int(f)].index.load(ordering: .relaxed), cpu: cpu,
                   "truncate's unmap walk left \(left) mappings of a page beyond EOF")
        }
    }
}
