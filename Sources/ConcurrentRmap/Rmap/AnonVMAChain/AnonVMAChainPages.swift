import Synchronization

/// The page events of the anon_vma_chain scheme: a page names the anon_vma
/// of the VMA that faulted it and its linear offset; fork, split, mremap
/// and merge never touch it; COW reuse moves it to the reusing VMA's own
/// anon_vma.
extension AnonVMAChainRmap {
    /// __page_set_anon_rmap: the VMA's own anon_vma, and the linear offset.
    @inline(__always) func pageAdded<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) {
        let r = k.vmaRecord(vma)
        let index = r.pointee.pgoff.load(ordering: .relaxed) &+ (vpn &- r.pointee.start.load(ordering: .relaxed))
        let fr = k.frames + Int(frame)
        fr.pointee.index.store(index, ordering: .relaxed)
        fr.pointee.mapping.store(r.pointee.ctx.load(ordering: .acquiring), ordering: .relaxed)
        fr.pointee.flags.bitwiseOr(FrameFlags.anon, ordering: .releasing)
    }

    /// page_move_anon_rmap: do_wp_page writes in place a page mapped only
    /// here, which may still name an ancestor's anon_vma (COWed in an
    /// ancestor, shared by fork, the others gone). It moves to this VMA's
    /// own anon_vma, whose set is this VMA and its descendants: a walk no
    /// longer visits the whole ancestry's VMAs for it, and the ancestor's
    /// anon_vma may be reused or freed. Under the ptl; the kernel holds the
    /// page lock too, which the model's fault does not take (either anon_vma
    /// lists this VMA, so a walker finds it through either).
    @inline(__always) func pageReused<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32) {
        guard k.inject != .avcMoveAnonRmapSkipped else { return }
        let own = k.vmaRecord(vma).pointee.ctx.load(ordering: .acquiring)
        let fr = k.frames + Int(frame)
        if own != 0 && fr.pointee.mapping.load(ordering: .relaxed) != own {
            fr.pointee.mapping.store(own, ordering: .releasing)
        }
    }

    func pageCloned<P>(_ k: Kernel<Self, P>, from: UInt32, to: UInt32) { k.copyAnonAnchor(from: from, to: to) }

    /// Pages hold no reference on their anon_vma: a mapped page keeps a VMA
    /// in its anon_vma's set.
    @inline(__always) func pageFreed<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU) {}

    @inline(__always) func moveNeedsPageLock<P>(_ k: Kernel<Self, P>) -> Bool { false }
    @inline(__always) func pageMove<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32) -> PageMove { .keep }
    func pageMoved<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, newVpn: UInt64, cpu: CPU) {}

    /// do_swap_page: a swap-cache page no PTE maps takes the faulting VMA's
    /// anon_vma and offset; one still mapped elsewhere is mapped here if its
    /// anon_vma is on this VMA's chain at its offset (fork, split, mremap
    /// and merge keep that for a swap entry they carried). Else the caller copies.
    func canMapCached<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) -> Bool {
        if k.frames[Int(frame)].mapcount.load(ordering: .relaxed) == 0 {
            pageAdded(k, frame: frame, mm: mm, vma: vma, vpn: vpn)
            return true
        }
        return linearOK(k, frame: frame, vma: vma, vpn: vpn)
    }

    /// The page's offset is this VMA's at `vpn`, and its anon_vma lists the
    /// VMA (is on its chain). Under the VMA's mmap lock (and the ptl).
    @inline(__always) func linearOK<P>(_ k: Kernel<Self, P>, frame: UInt32, vma: UInt32, vpn: UInt64) -> Bool {
        let r = k.vmaRecord(vma)
        let fr = k.frames + Int(frame)
        guard fr.pointee.index.load(ordering: .relaxed)
                == r.pointee.pgoff.load(ordering: .relaxed) &+ (vpn &- r.pointee.start.load(ordering: .relaxed)) else { return false }
        let av = fr.pointee.mapping.load(ordering: .relaxed)
        return av != 0 && (av == r.pointee.ctx.load(ordering: .acquiring) || chainHas(vma, av))
    }

    /// Invariant 1: the PTE's VMA is in the page's anon_vma's set, at the
    /// page's offset; and a page mapped writable names the VMA's own
    /// anon_vma (it was faulted or COWed here, or moved here when reused:
    /// what __page_check_anon_rmap asserts).
    func locationOK<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64) -> Bool {
        let vma = k.findVMA(mm, vpn)
        guard vma != 0, linearOK(k, frame: frame, vma: vma, vpn: vpn) else { return false }
        let i = k.pteIndex(mm, vpn)
        if i >= 0 {
            let pte = k.pte(at: i)
            if pte.isPresent && pte.isWritable && pte.target == frame
                && k.frames[Int(frame)].mapping.load(ordering: .relaxed) != k.vmaCtx(vma) {
                return false
            }
        }
        return true
    }
}
