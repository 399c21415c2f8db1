/// mremap (move_page_tables with the seed's copy rule) and munmap.
///
/// The seed's special case: after fork a page may still be shared; its other
/// PTEs stay at the old address, so the moving mm gets a private copy at the
/// new one. An exclusive page keeps its frame and takes the new index.
///
/// The re-index protocol (what keeps a walker from seeing it half done):
/// the page lock is taken first, then the ptl; the new PTE is set, the old
/// one cleared and the index changed, all before either lock is dropped.
/// Walkers hold the page lock for the whole walk, so each sees the old
/// (index, PTE) pair or the new one, never a mix.
///
/// Locks: mmap lock (write) -> page lock -> ptl. The ptl is never held while
/// waiting for the page lock.
extension Kernel {
    /// Moves one VMA of pinned `mm` to a free position.
    func mremap(_ mm: UInt32, _ cpu: CPU) -> Bool {
        mmapLock.writeLock(Int(mm))
        defer { mmapLock.unlock(Int(mm)) }
        var k = cpu.pointee.random(below: MachineConfig.maxVMAs)
        var found = false
        for _ in 0..<MachineConfig.maxVMAs {
            if vma(mm, k) != Kernel.noVMA { found = true; break }
            k = (k + 1) % MachineConfig.maxVMAs
        }
        guard found else { return false }
        return mremapLocked(mm, vma: k, to: freeVMAPosition(mm, cpu), cpu)
    }

    /// Moves VMA `k` of `mm` to position `toPos`. mmap lock held for writing.
    func mremapLocked(_ mm: UInt32, vma k: Int, to toPos: UInt32, _ cpu: CPU) -> Bool {
        let from = UInt64(vma(mm, k)) * UInt64(config.vmaPages)
        let to = UInt64(toPos) * UInt64(config.vmaPages)
        var spare: UInt32 = 0
        defer { if spare != 0 { put(spare, cpu) } }
        for d in 0..<UInt64(config.vmaPages) {
            if !moveOne(mm, from: from + d, to: to + d, spare: &spare, cpu) {
                // Out of memory part way: the VMA stays at `from`, so the
                // pages already moved must come back into it (left at `to`
                // they would sit outside every VMA, unreachable by zap, and
                // leak). Each of them is mapped once now (moved because
                // exclusive, or a fresh copy) and no fork can share it while
                // we hold the mmap lock, so moving back never copies.
                for e in 0..<d { _ = moveOne(mm, from: to + e, to: from + e, spare: &spare, cpu) }
                freeUnusedLeaf(mm, vmaPosition: toPos, cpu)
                return false
            }
        }
        let fromPos = vma(mm, k)
        setVMA(mm, k, toPos)
        freeUnusedLeaf(mm, vmaPosition: fromPos, cpu)
        return true
    }

    /// move_one_pte. Returns false when out of memory (the VMA stays put,
    /// partly moved PTEs are consistent on their own).
    private func moveOne(_ mm: UInt32, from: UInt64, to: UInt64, spare: inout UInt32, _ cpu: CPU) -> Bool {
        while true {
            ptl.lock(Int(mm))
            let i = pteIndex(mm, from)
            guard i >= 0 else { ptl.unlock(Int(mm)); return true }
            let pte = PTE(raw: ptes[i])
            if pte.isNone { ptl.unlock(Int(mm)); return true }
            if pte.isMigration {
                let leftBehind = migrationEntryLeftBehind(pte, at: i, mm: mm, vpn: from, cpu)
                ptl.unlock(Int(mm))
                if leftBehind { return false }
                cpuRelax()
                continue
            }
            if pte.isSwap {
                // A swap entry has no page and no index: just move it.
                let j = pteIndexAlloc(mm, to, cpu)
                guard j >= 0 else { ptl.unlock(Int(mm)); return false }
                expected[j] = expected[i]
                setPTE(mm, to, at: j, pte)
                setPTE(mm, from, at: i, .none)
                ptl.unlock(Int(mm))
                cpu.pointee.count(.mremapSwapMove)
                return true
            }
            let f = pte.target
            guard validFrame(f, mm: mm, vpn: from, cpu) else { ptl.unlock(Int(mm)); return false }
            refInc(f)
            ptl.unlock(Int(mm))
            let usePageLock = inject != .mremapNoPageLock
            if usePageLock { lockPage(f) }
            ptl.lock(Int(mm))
            let i2 = pteIndex(mm, from)
            guard i2 >= 0, PTE(raw: ptes[i2]).isPresent, PTE(raw: ptes[i2]).target == f else {
                // Reclaim or migration changed it while we waited: start over.
                ptl.unlock(Int(mm)); if usePageLock { unlockPage(f) }; put(f, cpu)
                continue
            }
            let cur = PTE(raw: ptes[i2])
            if rmap.canMoveWithoutCopy(self, frame: f, mm: mm) {
                let j = pteIndexAlloc(mm, to, cpu)
                guard j >= 0 else { ptl.unlock(Int(mm)); if usePageLock { unlockPage(f) }; put(f, cpu); return false }
                // New PTE first, then clear the old one: clearing may free
                // the old leaf, which may be the new one's leaf too.
                expected[j] = expected[i2]
                setPTE(mm, to, at: j, cur)
                setPTE(mm, from, at: i2, .none)
                raceWindow(cpu)  // the injected bug's window: PTE moved, index old
                rmap.pageMoved(self, frame: f, mm: mm, newVpn: to)
                cpu.pointee.count(.mremapMove)
            } else {
                if spare == 0 {
                    ptl.unlock(Int(mm)); if usePageLock { unlockPage(f) }; put(f, cpu)
                    spare = allocFrame(cpu)
                    if spare == 0 { return false }
                    continue
                }
                let j = pteIndexAlloc(mm, to, cpu)
                guard j >= 0 else { ptl.unlock(Int(mm)); if usePageLock { unlockPage(f) }; put(f, cpu); return false }
                let n = spare; spare = 0
                let e = expected[i2]
                checkContent(frames[Int(f)].content.load(ordering: .relaxed), expected: e, frame: f, mm: mm, vpn: from, cpu)
                frames[Int(n)].content.store(frames[Int(f)].content.load(ordering: .relaxed), ordering: .relaxed)
                rmap.pageAdded(self, frame: n, mm: mm, vpn: to)
                frames[Int(n)].mapcount.store(1, ordering: .relaxed)
                expected[j] = e
                setPTE(mm, to, at: j, .present(n, writable: false))
                setPTE(mm, from, at: i2, .none)
                mapDec(f, cpu)
                put(f, cpu)
                cpu.pointee.count(.mremapCopy)
            }
            ptl.unlock(Int(mm))
            if usePageLock { unlockPage(f) }
            put(f, cpu)
            return true
        }
    }

    /// munmap of one VMA, followed by an mmap of a fresh one elsewhere so the
    /// process keeps its size.
    func munmap(_ mm: UInt32, _ cpu: CPU) -> Bool {
        mmapLock.writeLock(Int(mm))
        defer { mmapLock.unlock(Int(mm)) }
        var k = cpu.pointee.random(below: MachineConfig.maxVMAs)
        for _ in 0..<MachineConfig.maxVMAs where vma(mm, k) == Kernel.noVMA { k = (k + 1) % MachineConfig.maxVMAs }
        guard vma(mm, k) != Kernel.noVMA else { return false }
        let old = vma(mm, k)
        zap(mm, vmaPosition: old, cpu)
        setVMA(mm, k, freeVMAPosition(mm, cpu))
        freeUnusedLeaf(mm, vmaPosition: old, cpu)
        return true
    }
}
