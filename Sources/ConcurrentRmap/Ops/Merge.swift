/// vma_merge: two adjacent VMAs of one mm become one. mmap_region merges a
/// new mapping with its neighbours, mprotect merges a range whose
/// protection now matches theirs again (the model's split operation undoes
/// a split half the time), brk grows the heap's VMA the same way.
///
/// Compatible: `upper` starts where `lower` ends, its page offset continues
/// `lower`'s (anonymous offsets are addresses unless mremap moved the
/// VMA), both lie in one aligned slot (the model's placement rule: no VMA
/// crosses a slot, so none crosses a page-table leaf), and the scheme
/// agrees (`canMergeVMAs`). The model always keeps the lower VMA; Linux
/// keeps whichever the case needs (`next` grows down when only it merges).
///
/// Order, so that a walker not holding the mmap lock finds every PTE:
/// `vmaMerged` makes `lower`'s rmap state cover `upper`'s pages (anon_vma:
/// `lower` joins the list it lacked; anon_vma_chain: `lower` gets AVCs of
/// its own on `upper`'s chain), then `lower` grows, then `upper`
/// leaves the table and the rmap (`vmaUnmapped`) and is retired. Until the
/// unlink a walker may find a page through `upper`; after it, through the
/// grown `lower`. No PTE moves and no page changes its anchor.
///
/// Locks (order: `LockClass`): mmapLock (write), then the scheme's rmapList
/// inside `vmaMerged` and `vmaUnmapped`; no ptl.
extension Kernel {
    /// Whether VMA `lower` of `mm` may absorb VMA `upper`. mmap lock held
    /// for writing.
    func canMerge(_ mm: UInt32, lower: UInt32, upper: UInt32) -> Bool {
        guard lower != upper, vmaMM(lower) == mm, vmaMM(upper) == mm else { return false }
        let start = vmaStart(lower), pages = UInt64(vmaPages(lower))
        let slot = UInt64(config.vmaPages)
        guard start + pages == vmaStart(upper),
              vmaPgoff(lower) + pages == vmaPgoff(upper),
              start / slot == (vmaStart(upper) + UInt64(vmaPages(upper)) - 1) / slot,
              vmaFile(lower) == vmaFile(upper) else { return false }
        return rmap.canMergeVMAs(self, lower: lower, upper: upper)
    }

    /// A neighbour of VMA `v` of `mm` it may merge with, as (lower, upper):
    /// the previous VMA first (vma_merge tries `prev` first), else the
    /// next. mmap lock held for writing.
    func mergeCandidate(_ mm: UInt32, _ v: UInt32) -> (lower: UInt32, upper: UInt32)? {
        var next: UInt32 = 0
        for t in 0..<MachineConfig.maxVMAs {
            let n = vmaHandle(mm, t)
            guard n != 0 && n != v else { continue }
            if canMerge(mm, lower: n, upper: v) { return (n, v) }
            if next == 0 && canMerge(mm, lower: v, upper: n) { next = n }
        }
        return next == 0 ? nil : (v, next)
    }

    /// vma_merge of `upper` into `lower`, which `canMerge` allowed. mmap
    /// lock held for writing. False when the scheme ran out of memory (both
    /// VMAs stay as they were).
    @discardableResult
    func mergeLocked(_ mm: UInt32, lower: UInt32, upper: UInt32, _ cpu: CPU) -> Bool {
        let pages = vmaPages(lower) + vmaPages(upper)
        guard rmap.vmaMerged(self, kept: lower, removed: upper, cpu: cpu) else { return false }
        raceWindow(cpu)  // lower covers upper's pages in the rmap, not yet in its length
        resizeVMA(mm, lower, pages: pages)
        raceWindow(cpu)  // both cover upper's pages: a walker may go either way
        removeVMA(mm, upper)
        rmap.vmaUnmapped(self, vma: upper, cpu: cpu)
        iMmapUnlink(upper, cpu)
        retireVMA(upper, cpu)
        cpu.pointee.count(.vmaMerge)
        return true
    }

    /// Merges VMA `v` of `mm` with a compatible neighbour: the VMA that
    /// now covers `v`'s range, or 0 when `v` is not a VMA of `mm` or has no
    /// neighbour it may merge with.
    func mergeVMA(_ mm: UInt32, vma v: UInt32, _ cpu: CPU) -> UInt32 {
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        guard v != 0, (0..<MachineConfig.maxVMAs).contains(where: { vmaHandle(mm, $0) == v }),
              let (lower, upper) = mergeCandidate(mm, v) else { return 0 }
        return mergeLocked(mm, lower: lower, upper: upper, cpu) ? lower : 0
    }
}
