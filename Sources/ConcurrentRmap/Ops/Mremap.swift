/// mremap (copy_vma + move_page_tables) and munmap.
///
/// mremap makes a new VMA at a free place (the rmap is told before any PTE
/// moves: `vmaCopied`), moves every PTE, then unmaps the old VMA. What
/// happens to each mapped page is the scheme's decision (`pageMove`):
/// anon_vma keeps the page as it is (its index is a page offset the new VMA
/// keeps); anongroup re-indexes an exclusive page and gives the moving mm a
/// private copy of a page still shared after fork (the seed's rule);
/// cow-context keeps a shared page behind a remap record of the move
/// (`rangeMoveBegin`/`rangeMoveBack`/`rangeMoveEnd` frame the move).
///
/// The re-index protocol (what keeps a walker from seeing it half done):
/// the page lock is taken first, then the ptl; the new PTE is set, the old
/// one cleared and the index changed, all before either lock is dropped.
/// Walkers hold the page lock for the whole walk, so each sees the old
/// (index, PTE) pair or the new one, never a mix.
///
/// Locks (order: `LockClass`): mmapLock (write), pageLock, ptl; the ptl is
/// dropped before waiting for the page lock.
extension Kernel {
    /// Moves one VMA of pinned `mm` to a free place.
    func mremap(_ mm: UInt32, _ cpu: CPU) -> Bool {
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        guard let t = randomVMA(mm, cpu) else { return false }
        return mremapLocked(mm, vma: t, to: freeSlotStart(mm, cpu), cpu)
    }

    /// Moves VMA table entry `t` of `mm` to start at `newStart` (the start of
    /// a slot no VMA uses). mmap lock held for writing.
    func mremapLocked(_ mm: UInt32, vma t: Int, to newStart: UInt64, _ cpu: CPU) -> Bool {
        let old = vmaHandle(mm, t)
        let from = vmaStart(old)
        let pages = vmaPages(old)
        let pgoff = rmap.movedPgoff(self, old: vmaPgoff(old), newStart: newStart)
        // A file VMA keeps its file offset wherever it goes.
        let file = vmaFile(old)
        let new = newVMA(mm, start: newStart, pages: pages, pgoff: file != 0 ? vmaPgoff(old) : pgoff, ctx: vmaCtx(old),
                         file: file, cpu)
        guard new != 0 else { return false }
        guard insertVMA(mm, new) else { freeUnpublishedVMA(new, cpu); return false }
        guard rmap.vmaCopied(self, old: old, new: new, cpu: cpu) else {
            // Out of memory: nothing of `new` is in the rmap, and no PTE moved.
            removeVMA(mm, new)
            freeUnpublishedVMA(new, cpu)
            return false
        }
        iMmapLink(new)
        var spare: UInt32 = 0
        defer { if spare != 0 { put(spare, cpu) } }
        rmap.rangeMoveBegin(self, mm: mm, oldStart: from, newStart: newStart, pages: pages, cpu: cpu)
        for d in 0..<UInt64(pages) {
            if !moveOne(mm, from: from + d, to: newStart + d, vma: new, spare: &spare, cpu) {
                // Out of memory part way: the VMA stays at `from`, so the
                // pages already moved must come back into it (left at the new
                // place they would go with the new VMA, and the old one would
                // have holes). Each of them is mapped once now (moved because
                // exclusive, or a fresh copy) or kept as it was, and no fork
                // can share it while we hold the mmap lock, so moving back
                // never copies.
                rmap.rangeMoveBack(self, mm: mm, cpu: cpu)
                for e in 0..<d { _ = moveOne(mm, from: newStart + e, to: from + e, vma: old, spare: &spare, cpu) }
                rmap.rangeMoveEnd(self, mm: mm, moved: false, cpu: cpu)
                unmapVMA(mm, new, cpu)
                freeUnusedLeaf(mm, at: newStart, cpu)
                return false
            }
        }
        rmap.rangeMoveEnd(self, mm: mm, moved: true, cpu: cpu)
        unmapVMA(mm, old, cpu)
        freeUnusedLeaf(mm, at: from, cpu)
        return true
    }

    /// Takes VMA `v` (its PTEs already gone or moved) out of `mm`: out of
    /// the table, off the rmap, freed after a grace period. mmap lock held
    /// for writing.
    func unmapVMA(_ mm: UInt32, _ v: UInt32, _ cpu: CPU) {
        removeVMA(mm, v)
        rmap.vmaUnmapped(self, vma: v, cpu: cpu)
        iMmapUnlink(v, cpu)
        retireVMA(v, cpu)
    }

    /// move_one_pte into VMA `vma`. Returns false when out of memory (the
    /// VMA stays put, partly moved PTEs are consistent on their own).
    private func moveOne(_ mm: UInt32, from: UInt64, to: UInt64, vma: UInt32, spare: inout UInt32, _ cpu: CPU) -> Bool {
        while true {
            ptlLock(mm)
            let i = pteIndex(mm, from)
            guard i >= 0 else { ptlUnlock(mm); return true }
            let pte = pte(at: i)
            if pte.isNone { ptlUnlock(mm); return true }
            if pte.isMigration {
                let leftBehind = migrationEntryLeftBehind(pte, at: i, mm: mm, vpn: from, cpu)
                ptlUnlock(mm)
                if leftBehind { return false }
                P.relax()
                continue
            }
            if pte.isSwap {
                // A swap entry has no page and no index: just move it.
                let j = pteIndexAlloc(mm, to, cpu)
                guard j >= 0 else { ptlUnlock(mm); return false }
                expected[j] = expected[i]
                setPTE(at: j, pte)
                setPTE(at: i, .none)
                ptlUnlock(mm)
                cpu.pointee.count(.mremapSwapMove)
                return true
            }
            let f = pte.target
            guard validFrame(f, mm: mm, vpn: from, cpu) else { ptlUnlock(mm); return false }
            let usePageLock = rmap.moveNeedsPageLock(self)
            if usePageLock {
                refInc(f)
                ptlUnlock(mm)
                lockPage(f)
                ptlLock(mm)
                let i2 = pteIndex(mm, from)
                guard i2 >= 0, self.pte(at: i2).isPresent, self.pte(at: i2).target == f else {
                    // Reclaim or migration changed it while we waited: start over.
                    ptlUnlock(mm); unlockPage(f); put(f, cpu)
                    continue
                }
            }
            let cur = self.pte(at: i)
            // A file page keeps its frame and index: the VMA keeps its pgoff.
            let decision = isFilePage(f) ? PageMove.keep : rmap.pageMove(self, frame: f, mm: mm)
            if decision == .copy && spare == 0 {
                ptlUnlock(mm)
                if usePageLock { unlockPage(f); put(f, cpu) }
                spare = allocFrame(cpu)
                if spare == 0 { return false }
                continue
            }
            let j = pteIndexAlloc(mm, to, cpu)
            guard j >= 0 else {
                ptlUnlock(mm)
                if usePageLock { unlockPage(f); put(f, cpu) }
                return false
            }
            var unlockedEarly = false
            switch decision {
            case .keep, .reindex:
                // New PTE first, then clear the old one: both in one ptl
                // section, so a walker sees the PTE at one place or the other.
                expected[j] = expected[i]
                rmap.pteInstalled(self, frame: f, mm: mm, vpn: to, cpu: cpu)
                setPTE(at: j, cur)
                setPTE(at: i, .none)
                rmap.pteCleared(self, frame: f, mm: mm, vpn: from, cpu: cpu)
                if decision == .reindex {
                    if inject == .mremapUnlockBeforeReindex && usePageLock {
                        unlockPage(f)  // the planted bug: the lock goes one step early
                        unlockedEarly = true
                    }
                    raceWindow(cpu)  // PTE moved, index old: the page lock keeps walkers out
                    rmap.pageMoved(self, frame: f, mm: mm, newVpn: to, cpu: cpu)
                    cpu.pointee.count(.mremapMove)
                } else {
                    cpu.pointee.count(.mremapKeep)
                }
            case .copy:
                let n = spare; spare = 0
                let e = expected[i]
                checkContent(frames[Int(f)].content.load(ordering: .relaxed), expected: e, frame: f, mm: mm, vpn: from, cpu)
                frames[Int(n)].content.store(frames[Int(f)].content.load(ordering: .relaxed), ordering: .relaxed)
                rmap.pageAdded(self, frame: n, mm: mm, vma: vma, vpn: to)
                rmap.pteInstalled(self, frame: n, mm: mm, vpn: to, cpu: cpu)
                frames[Int(n)].mapcount.store(1, ordering: .relaxed)
                expected[j] = e
                setPTE(at: j, .present(n, writable: false))
                setPTE(at: i, .none)
                mapDec(f, cpu)
                rmap.pteCleared(self, frame: f, mm: mm, vpn: from, cpu: cpu)
                put(f, cpu)
                cpu.pointee.count(.mremapCopy)
            }
            ptlUnlock(mm)
            if usePageLock {
                if !unlockedEarly { unlockPage(f) }
                put(f, cpu)
            }
            return true
        }
    }

    /// munmap of one VMA, followed by an mmap of a fresh one (elsewhere, or
    /// in its place) so the process keeps its size.
    func munmap(_ mm: UInt32, _ cpu: CPU) -> Bool {
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        guard let t = randomVMA(mm, cpu) else { return false }
        let old = vmaHandle(mm, t)
        let from = vmaStart(old), pages = vmaPages(old)
        zap(mm, old, cpu)
        unmapVMA(mm, old, cpu)
        freeUnusedLeaf(mm, at: from, cpu)
        // Half the time a VMA that shared its slot (a split half) is mapped
        // again in place (MAP_FIXED), next to its old neighbour: mmap_region
        // then merges it half the time; left apart (as a mapping of another
        // protection would be), its first fault may reuse the neighbour's
        // anon_vma (find_mergeable_anon_vma).
        let again = pages < config.vmaPages && cpu.pointee.random(below: 2) == 0
        let start = again ? from : freeSlotStart(mm, cpu)
        let fresh = newVMA(mm, start: start, pages: again ? pages : config.vmaPages, pgoff: start, ctx: 0, cpu)
        guard fresh != 0 else { return true }
        guard insertVMA(mm, fresh) else { freeUnpublishedVMA(fresh, cpu); return true }
        if again && cpu.pointee.random(below: 2) == 0, let (lower, upper) = mergeCandidate(mm, fresh) {
            mergeLocked(mm, lower: lower, upper: upper, cpu)
        }
        return true
    }
}
