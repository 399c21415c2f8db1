/// Page tables: two levels, `pgd[mm*512 + vpn>>9]` naming a leaf of 512
/// PTEs, each with the checker's expected content word beside it. Every
/// access is under the owning mm's ptl; `setPTE` is the one path that
/// stores a PTE.
extension Kernel {
    /// Index into `ptes`/`expected` of (mm, vpn), or -1 when no leaf exists.
    @inline(__always) func pteIndex(_ mm: UInt32, _ vpn: UInt64) -> Int {
        let leaf = spaces.pgd[Int(mm) * 512 + Int(vpn >> 9)]
        return leaf == 0 ? -1 : Int(leaf) * MachineConfig.ptesPerLeaf + Int(vpn & 511)
    }

    /// Like pteIndex, allocating the leaf if needed. -1 when out of leaves.
    func pteIndexAlloc(_ mm: UInt32, _ vpn: UInt64, _ cpu: CPU) -> Int {
        let slot = Int(mm) * 512 + Int(vpn >> 9)
        var leaf = spaces.pgd[slot]
        if leaf == 0 {
            leaf = cacheAlloc(.leaves, cpu)
            if leaf == 0 { return -1 }
            spaces.leafUsed[Int(leaf)] = 0
            spaces.pgd[slot] = leaf
        }
        return Int(leaf) * MachineConfig.ptesPerLeaf + Int(vpn & 511)
    }

    /// The PTE at index `i` (ptl held).
    @inline(__always) func pte(at i: Int) -> PTE { PTE(raw: ptes[i]) }

    /// Stores a PTE: the one path every PTE write takes, so that the leaf's
    /// use count is always right. A leaf that empties stays in place
    /// (faults refill it); leaves are freed when the range they cover is
    /// unmapped (`freeUnusedLeaf`) or the mm dies, as Linux's free_pgtables
    /// does, not the moment they empty. The mm's ptl is held.
    @inline(__always) func setPTE(at i: Int, _ new: PTE) {
        let old = PTE(raw: ptes[i])
        ptes[i] = new.raw
        if old.isNone != new.isNone {
            spaces.leafUsed[i / MachineConfig.ptesPerLeaf] += new.isNone ? -1 : 1
        }
    }

    /// Whether a VMA of `mm` lies in leaf `d`. mmap lock held.
    func leafCoveredByVMA(_ mm: UInt32, _ d: Int) -> Bool {
        let lo = UInt64(d * MachineConfig.ptesPerLeaf), hi = lo + UInt64(MachineConfig.ptesPerLeaf)
        for k in 0..<MachineConfig.maxVMAs {
            let e = vmaEntry(mm, k)
            guard e != 0 else { continue }
            let a = VMAEntry.start(e), n = VMAEntry.pages(e)
            if a < hi && lo < a + n { return true }
        }
        return false
    }

    /// free_pgtables for the leaf that held `vpn`, after that range was
    /// unmapped or moved: frees it when no PTE and no VMA of the mm is left
    /// in it. mmap lock held for writing.
    func freeUnusedLeaf(_ mm: UInt32, at vpn: UInt64, _ cpu: CPU) {
        let d = Int(vpn >> 9)
        ptlLock(mm)
        let leaf = spaces.pgd[Int(mm) * 512 + d]
        if leaf != 0 && spaces.leafUsed[Int(leaf)] == 0 && !leafCoveredByVMA(mm, d) {
            spaces.pgd[Int(mm) * 512 + d] = 0
            cacheFree(.leaves, leaf, cpu)
        }
        ptlUnlock(mm)
    }
}
