/// Splitting a VMA: an mprotect of part of it (__split_vma), or, when the
/// mm's VMA table is nearly full, a munmap of its tail (which splits and
/// drops the upper part at once). This is where anon_vma's complexity
/// lives: the new half must join the anon_vma before the old half shrinks.
///
/// Order (both cases keep every PTE reachable by walkers that do not hold
/// the mmap lock): split makes the upper half as a new VMA, tells the rmap
/// (`vmaSplit`: anon_vma links it at the tail of the list), and only then
/// shrinks the lower half. A walker that reads the old length finds the
/// page through the lower half; one that reads the new length meets the
/// upper half later in the list. The tail munmap zaps the PTEs first, then
/// shrinks the VMA.
///
/// Locks (order: `LockClass`): mmapLock (write), then the scheme's rmapList
/// or, for the zap, the ptl; never both.
extension Kernel {
    /// mprotect of part of a random VMA of pinned `mm`: half the time, if
    /// the VMA has a neighbour it may merge with, the protection that split
    /// them is undone and vma_merge joins them; otherwise the VMA, of at
    /// least two pages, is split (or shrunk) at a random page boundary.
    /// False when it has none.
    func split(_ mm: UInt32, _ cpu: CPU) -> Bool {
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        guard let t = randomVMA(mm, cpu) else { return false }
        let v = vmaHandle(mm, t)
        if cpu.pointee.random(below: 2) == 0, let (lower, upper) = mergeCandidate(mm, v) {
            return mergeLocked(mm, lower: lower, upper: upper, cpu)
        }
        let pages = vmaPages(v)
        guard pages >= 2 else { return false }
        let cut = 1 + cpu.pointee.random(below: pages - 1)
        // Keep one table entry free: mremap needs one for its new VMA.
        if vmaCount(mm) < MachineConfig.maxVMAs - 1 {
            return splitLocked(mm, v, at: cut, cpu)
        }
        shrinkLocked(mm, v, to: cut, cpu)
        return true
    }

    /// __split_vma: VMA `v` keeps its first `cut` pages; a new VMA takes the
    /// rest. mmap lock held for writing. False when out of VMA slots.
    func splitLocked(_ mm: UInt32, _ v: UInt32, at cut: Int, _ cpu: CPU) -> Bool {
        let start = vmaStart(v), pages = vmaPages(v)
        let upper = newVMA(mm, start: start + UInt64(cut), pages: pages - cut,
                           pgoff: vmaPgoff(v) + UInt64(cut), ctx: vmaCtx(v), file: vmaFile(v), cpu)
        guard upper != 0 else { return false }
        guard insertVMA(mm, upper) else { freeUnpublishedVMA(upper, cpu); return false }
        guard rmap.vmaSplit(self, vma: v, new: upper, cpu: cpu) else {
            // Out of memory: nothing of `upper` is in the rmap, and nobody
            // else holds this mm's mmap lock to have seen it.
            removeVMA(mm, upper)
            freeUnpublishedVMA(upper, cpu)
            return false
        }
        iMmapLink(upper)
        raceWindow(cpu)  // both halves cover the upper pages: a walker may go either way
        resizeVMA(mm, v, pages: cut)
        cpu.pointee.count(.vmaSplit)
        return true
    }

    /// munmap of the tail of VMA `v` after its first `cut` pages. mmap lock
    /// held for writing.
    func shrinkLocked(_ mm: UInt32, _ v: UInt32, to cut: Int, _ cpu: CPU) {
        let start = vmaStart(v), pages = vmaPages(v)
        zap(mm, from: start + UInt64(cut), pages: pages - cut, cpu)
        resizeVMA(mm, v, pages: cut)
        cpu.pointee.count(.vmaShrink)
    }
}
