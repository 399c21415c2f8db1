import Synchronization

/// The VMA events of the anon_vma_chain scheme: anon_vma_prepare,
/// anon_vma_fork, anon_vma_clone (split, mremap), merge, and
/// unlink_anon_vmas. Every chain a VMA has is of one tree, so each event
/// takes one root lock.
extension AnonVMAChainRmap {
    /// __anon_vma_prepare: the VMA's first page needs its own anon_vma, a
    /// new root. Allocated outside every lock, then published under the
    /// anon_vma's lock and the mm's ptl with a re-check: faults of one mm
    /// run side by side under the mmap lock for reading (the loser frees
    /// its unused objects). The lock, then the ptl: the walkers' nesting.
    func vmaPrepare<P>(_ k: Kernel<Self, P>, mm: UInt32, vma: UInt32, cpu: CPU) -> Bool {
        if k.vmaCtx(vma) != 0 { return true }
        let c = allocAVC()
        guard c != 0 else { return false }
        let av = allocAnonVMA(k, root: 0, parent: 0, cpu)
        guard av != 0 else { avcSlab.freeUnpublished(c); return false }
        k.raceWindow(cpu)  // set up, not yet on the VMA: a racing fault may prepare too
        lockRoot(k, av)
        k.ptlLock(mm)
        if k.vmaCtx(vma) == 0 {
            chainLink(vma, c, av)
            let a = anonVMAs[Int(av)]
            a.pointee.numChildren.store(1, ordering: .relaxed)  // a root is its own parent
            a.pointee.numActiveVMAs.store(1, ordering: .relaxed)
            k.vmaRecord(vma).pointee.ctx.store(av, ordering: .releasing)
            k.ptlUnlock(mm)
            unlockRoot(k, av)
            return true
        }
        k.ptlUnlock(mm)
        unlockRoot(k, av)
        avcSlab.freeUnpublished(c)
        freeUnusedAnonVMA(k, av, cpu)
        return true
    }

    /// anon_vma_clone: `dst` gets an AVC on every anon_vma of `src`'s chain,
    /// oldest (the root) first. With `mayReuse` (fork, dst has no anon_vma
    /// yet) it adopts the first one no VMA uses as its own and with at
    /// most one child. dst's own anon_vma, if any, gains an active VMA.
    /// False when out of AVCs: dst's chain is undone and its anon_vma cleared.
    private func clone<P>(_ k: Kernel<Self, P>, dst: UInt32, src: UInt32, mayReuse: Bool, cpu: CPU) -> Bool {
        let srcAV = k.vmaCtx(src)
        let root = rootOf(srcAV)
        let dstRecord = k.vmaRecord(dst)
        lockRoot(k, root)
        var c = chains[Int(src)].tail.load(ordering: .relaxed)
        var ok = true
        while c != 0 {
            let av = avcs[Int(c)].anonVma.load(ordering: .relaxed)
            let n = allocAVC()
            guard n != 0 else { ok = false; break }
            chainLink(dst, n, av)
            if mayReuse && dstRecord.pointee.ctx.load(ordering: .relaxed) == 0 {
                let a = anonVMAs[Int(av)]
                let children = a.pointee.numChildren.load(ordering: .relaxed)
                let active = a.pointee.numActiveVMAs.load(ordering: .relaxed)
                // The 6.2 rule; the planted bug is the 3.19 one-count
                // `degree`, which did not tell active VMAs from children.
                let reusable = k.inject == .avcReuseDegree ? children + active < 3 && av != srcAV : children < 2 && active == 0
                if reusable { dstRecord.pointee.ctx.store(av, ordering: .releasing) }
            }
            c = avcs[Int(c)].vmaPrev.load(ordering: .relaxed)
        }
        let own = dstRecord.pointee.ctx.load(ordering: .relaxed)
        if ok && own != 0 && !(k.inject == .avcReuseDegree && mayReuse) {
            anonVMAs[Int(own)].pointee.numActiveVMAs.wrappingAdd(1, ordering: .relaxed)
        }
        unlockRoot(k, root)
        if !ok {
            dstRecord.pointee.ctx.store(0, ordering: .releasing)
            unlinkAll(k, dst, cpu)
        }
        return ok
    }

    /// anon_vma_fork: the child's VMA clones the parent's chain (so walks
    /// find the pages it shares), then gets an anon_vma of its own, child
    /// of the parent's, for the pages it will COW, unless it reused one.
    /// Parent's mmap lock held for writing; before the PTEs are copied.
    func vmaForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool {
        let pav = k.vmaCtx(parent)
        let rec = k.vmaRecord(child)
        rec.pointee.ctx.store(0, ordering: .releasing)  // inherited by the copy: reused or replaced
        guard pav != 0 else { return true }
        guard clone(k, dst: child, src: parent, mayReuse: s.pointee.reuse, cpu: cpu) else { return false }
        if rec.pointee.ctx.load(ordering: .relaxed) != 0 { return true }
        let root = rootOf(pav)
        let c = allocAVC()
        let av = c == 0 ? 0 : allocAnonVMA(k, root: root, parent: pav, cpu)
        guard av != 0 else {
            if c != 0 { avcSlab.freeUnpublished(c) }
            unlinkAll(k, child, cpu)
            return false
        }
        anonVMAs[Int(av)].pointee.numActiveVMAs.store(1, ordering: .relaxed)
        // The lock lives in the root: it must outlive this anon_vma.
        anonVMAs[Int(root)].pointee.refcount.wrappingAdd(1, ordering: .relaxed)
        lockRoot(k, root)
        chainLink(child, c, av)
        anonVMAs[Int(pav)].pointee.numChildren.wrappingAdd(1, ordering: .relaxed)
        rec.pointee.ctx.store(av, ordering: .releasing)
        unlockRoot(k, root)
        return true
    }

    /// mremap's copy_vma: the new VMA shares the old one's anon_vma and
    /// clones its chain, before any PTE moves.
    func vmaCopied<P>(_ k: Kernel<Self, P>, old: UInt32, new: UInt32, cpu: CPU) -> Bool {
        cloneSharing(k, dst: new, src: old, cpu: cpu)
    }

    /// `dst` shares `src`'s anon_vma and, unless it has none, clones its
    /// chain (split, mremap's copy, merge's dup_anon_vma). `link: false` is
    /// avc-split-no-clone: the anon_vma without the chain.
    private func cloneSharing<P>(_ k: Kernel<Self, P>, dst: UInt32, src: UInt32, link: Bool = true, cpu: CPU) -> Bool {
        let av = k.vmaCtx(src)
        k.vmaRecord(dst).pointee.ctx.store(av, ordering: .releasing)
        guard av != 0, link else { return true }
        return clone(k, dst: dst, src: src, mayReuse: false, cpu: cpu)
    }

    /// The page offset is what page.index holds, so the moved VMA keeps it.
    func movedPgoff<P>(_ k: Kernel<Self, P>, old pgoff: UInt64, newStart: UInt64) -> UInt64 { pgoff }

    /// __split_vma: the new half shares the anon_vma and clones the chain
    /// (the planted bug leaves its chain empty: no set lists it).
    func vmaSplit<P>(_ k: Kernel<Self, P>, vma: UInt32, new: UInt32, cpu: CPU) -> Bool {
        cloneSharing(k, dst: new, src: vma, link: k.inject != .avcSplitNoClone, cpu: cpu)
    }

    /// is_mergeable_anon_vma: the same anon_vma, or one has none and the
    /// other's chain is just its own anon_vma (nothing of an ancestry would
    /// be lost or gained). The RCU-only what-if refuses two VMAs of one
    /// anon_vma: `upper`'s pages move to `lower`, which is earlier in every
    /// set, and a lockless walker standing on `lower`'s AVC when `upper`'s
    /// is unlinked misses both (explore found it); anon-vma's what-if
    /// refuses the same merge.
    func canMergeVMAs<P>(_ k: Kernel<Self, P>, lower: UInt32, upper: UInt32) -> Bool {
        let a = k.vmaCtx(lower), b = k.vmaCtx(upper)
        if a == b { return a == 0 || walkLocked }
        if a == 0 { return chains[Int(upper)].length.load(ordering: .relaxed) == 1 }
        if b == 0 { return chains[Int(lower)].length.load(ordering: .relaxed) == 1 }
        return false
    }

    /// vma_merge: `removed` is absorbed into `kept` (mmap lock held for
    /// writing). When only `removed` has an anon_vma, `kept` gets AVCs of
    /// its own on `removed`'s chain (dup_anon_vma) before it grows: until
    /// the caller unlinks `removed`, both are in the sets, so a walker finds
    /// `removed`'s pages through one or the other. (Re-pointing `removed`'s
    /// AVCs at `kept` instead loses them for the window in which `kept`
    /// does not yet cover them.) False when out of AVCs: nothing changed.
    func vmaMerged<P>(_ k: Kernel<Self, P>, kept: UInt32, removed: UInt32, cpu: CPU) -> Bool {
        guard k.vmaCtx(kept) == 0, k.vmaCtx(removed) != 0 else { return true }
        return cloneSharing(k, dst: kept, src: removed, cpu: cpu)
    }

    /// unlink_anon_vmas at VMA teardown (munmap, exit, the old half of
    /// mremap, a merged-away VMA).
    func vmaUnmapped<P>(_ k: Kernel<Self, P>, vma: UInt32, cpu: CPU) {
        unlinkAll(k, vma, cpu)
    }

    /// unlink_anon_vmas: under the root's lock, every AVC of the chain
    /// leaves its anon_vma's set (newest first, so the root goes last); an
    /// anon_vma left empty stops being a child of its parent; the VMA's own
    /// loses an active VMA. Then, outside the lock, the emptied anon_vmas
    /// are put. The planted bug also puts the VMA's own anon_vma when its
    /// last active VMA leaves, although descendants still link to it.
    func unlinkAll<P>(_ k: Kernel<Self, P>, _ vma: UInt32, _ cpu: CPU) {
        let ch = chains + Int(vma)
        var c = ch.pointee.head.load(ordering: .relaxed)
        let own = k.vmaCtx(vma)
        guard c != 0 || own != 0 else { return }
        let root = rootOf(c != 0 ? avcs[Int(c)].anonVma.load(ordering: .relaxed) : own)
        var extraPut: UInt32 = 0
        lockRoot(k, root)
        while c != 0 {
            let next = avcs[Int(c)].vmaNext.load(ordering: .relaxed)
            let av = avcs[Int(c)].anonVma.load(ordering: .relaxed)
            if setRemove(c) {
                // Left on the chain: put outside the lock, below.
                anonVMAs[Int(anonVMAs[Int(av)].pointee.parent.load(ordering: .relaxed))].pointee.numChildren
                    .wrappingSubtract(1, ordering: .relaxed)
            } else {
                chainRemove(vma, c)
                freeAVC(k, c, cpu)
            }
            c = next
        }
        if own != 0 {
            let left = anonVMAs[Int(own)].pointee.numActiveVMAs.wrappingSubtract(1, ordering: .relaxed).newValue
            if k.inject == .avcUnlinkFreeInUse && left == 0 && anonVMAs[Int(own)].pointee.count.load(ordering: .relaxed) > 0 {
                extraPut = own
            }
            k.vmaRecord(vma).pointee.ctx.store(0, ordering: .releasing)
        }
        unlockRoot(k, root)
        c = ch.pointee.head.load(ordering: .relaxed)
        while c != 0 {
            let next = avcs[Int(c)].vmaNext.load(ordering: .relaxed)
            putAnonVMA(k, avcs[Int(c)].anonVma.load(ordering: .relaxed), cpu)
            chainRemove(vma, c)
            freeAVC(k, c, cpu)
            c = next
        }
        if extraPut != 0 { putAnonVMA(k, extraPut, cpu) }
    }
}
