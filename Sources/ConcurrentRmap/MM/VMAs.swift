import Synchronization

/// VMAs: each mm's table of VMAs (under its mmap lock; each entry holds the
/// handle and a copy of the geometry, see `VMAEntry`) and the VMA objects
/// (an RCU slab: walkers of the anon_vma scheme read them).
///
/// Placement: the address space is cut into aligned slots of `vmaPages`
/// pages; a new VMA fills a free slot, splits cut a VMA inside its slot,
/// and mremap moves a VMA to the start of a free slot. So no VMA crosses a
/// page-table leaf, and a slot is free when no VMA of the mm lies in it.
///
/// Life cycle: free --newVMA--> live (in a table) --retireVMA--> waiting for
/// a grace period --> free. A VMA leaves its table before it is retired;
/// the rmap is told (`vmaUnmapped`) in between.
extension Kernel {
    @inline(__always) func vmaEntry(_ mm: UInt32, _ k: Int) -> UInt64 {
        spaces.vmaTable[Int(mm) * AddressSpaces.vmaStride + k]
    }

    @inline(__always) func vmaHandle(_ mm: UInt32, _ k: Int) -> UInt32 { VMAEntry.handle(vmaEntry(mm, k)) }

    /// Puts VMA `v` (0: none) in entry `k` of `mm`'s table, with its geometry.
    @inline(__always) func setVMAHandle(_ mm: UInt32, _ k: Int, _ v: UInt32) {
        spaces.vmaTable[Int(mm) * AddressSpaces.vmaStride + k] =
            v == 0 ? 0 : VMAEntry.make(v, start: vmaStart(v), pages: vmaPages(v))
    }

    @inline(__always) func vmaRecord(_ v: UInt32) -> UnsafeMutablePointer<VMARecord> { spaces.vma + Int(v) }
    @inline(__always) func vmaStart(_ v: UInt32) -> UInt64 { vmaRecord(v).pointee.start.load(ordering: .acquiring) }
    @inline(__always) func vmaPages(_ v: UInt32) -> Int { Int(vmaRecord(v).pointee.pages.load(ordering: .acquiring)) }
    @inline(__always) func vmaPgoff(_ v: UInt32) -> UInt64 { vmaRecord(v).pointee.pgoff.load(ordering: .acquiring) }
    @inline(__always) func vmaCtx(_ v: UInt32) -> UInt32 { vmaRecord(v).pointee.ctx.load(ordering: .acquiring) }
    @inline(__always) func vmaMM(_ v: UInt32) -> UInt32 { vmaRecord(v).pointee.mm.load(ordering: .relaxed) }
    /// `VMAFile` of `v`: 0 when anonymous.
    @inline(__always) func vmaFile(_ v: UInt32) -> UInt32 { vmaRecord(v).pointee.file.load(ordering: .relaxed) }

    /// vma_address: where VMA `v` would map a page of page offset `index`
    /// (its mm and virtual page), or nil when `v` does not cover it. The
    /// object-based walks (anon_vma, anon_vma_chain) call it per VMA.
    @inline(__always) func vmaAddress(_ v: UInt32, index: UInt64) -> (mm: UInt32, vpn: UInt64)? {
        let r = vmaRecord(v)
        let start = r.pointee.start.load(ordering: .acquiring)
        let pages = UInt64(r.pointee.pages.load(ordering: .acquiring))
        let pgoff = r.pointee.pgoff.load(ordering: .acquiring)
        guard index >= pgoff && index - pgoff < pages else { return nil }
        return (r.pointee.mm.load(ordering: .relaxed), start + (index - pgoff))
    }

    /// VMA `v` of `mm` now has `pages` pages (split, tail munmap): the
    /// record (release: walkers read it) and the mm's table. mmap lock held
    /// for writing.
    func resizeVMA(_ mm: UInt32, _ v: UInt32, pages: Int) {
        let ino = VMAFile.inode(vmaFile(v))
        if files.tree && ino != 0 && vmaRecord(v).pointee.iLinked.load(ordering: .relaxed) {
            // The tree's key ends with the VMA: both change under the
            // i_mmap lock, or a walk prunes the subtree that holds it.
            iMmapWrite(ino)
            vmaRecord(v).pointee.pages.store(UInt32(pages), ordering: .releasing)
            treeResized(v)
            iMmapUnlock(ino)
        } else {
            vmaRecord(v).pointee.pages.store(UInt32(pages), ordering: .releasing)
        }
        for k in 0..<MachineConfig.maxVMAs where vmaHandle(mm, k) == v { setVMAHandle(mm, k, v) }
    }

    /// The VMA of `mm` that contains `vpn`, or 0. mmap lock held. Reads
    /// only the mm's table block.
    @inline(__always) func findVMA(_ mm: UInt32, _ vpn: UInt64) -> UInt32 {
        let base = spaces.vmaTable + Int(mm) * AddressSpaces.vmaStride
        for k in 0..<MachineConfig.maxVMAs {
            let e = base[k]
            if e != 0 && vpn &- VMAEntry.start(e) < VMAEntry.pages(e) { return VMAEntry.handle(e) }
        }
        return 0
    }

    /// The number of VMAs of `mm`. mmap lock held.
    func vmaCount(_ mm: UInt32) -> Int {
        var n = 0
        for k in 0..<MachineConfig.maxVMAs where vmaHandle(mm, k) != 0 { n += 1 }
        return n
    }

    /// A random VMA of `mm` (its table index), or nil when it has none.
    @inline(__always) func randomVMA(_ mm: UInt32, _ cpu: CPU) -> Int? {
        let k0 = cpu.pointee.random(below: MachineConfig.maxVMAs)
        for d in 0..<MachineConfig.maxVMAs {
            let k = (k0 + d) % MachineConfig.maxVMAs
            if vmaHandle(mm, k) != 0 { return k }
        }
        return nil
    }

    /// A random address inside one of the mm's VMAs, with the VMA, or nil
    /// if it has none. mmap lock held.
    @inline(__always) func randomAddress(_ mm: UInt32, _ cpu: CPU) -> (vma: UInt32, vpn: UInt64)? {
        guard let k = randomVMA(mm, cpu) else { return nil }
        let e = vmaEntry(mm, k)
        return (VMAEntry.handle(e), VMAEntry.start(e) + UInt64(cpu.pointee.random(below: Int(VMAEntry.pages(e)))))
    }

    /// The start of a random slot no VMA of `mm` lies in. mmap lock held.
    func freeSlotStart(_ mm: UInt32, _ cpu: CPU) -> UInt64 {
        let slots = MachineConfig.vpnLimit / config.vmaPages
        let size = UInt64(config.vmaPages)
        while true {
            let start = UInt64(cpu.pointee.random(below: slots)) * size
            var clash = false
            for k in 0..<MachineConfig.maxVMAs {
                let e = vmaEntry(mm, k)
                if e != 0 && VMAEntry.start(e) / size == start / size { clash = true; break }
            }
            if !clash { return start }
        }
    }

    /// A new VMA object of `mm` (not yet in its table); 0 when out of VMA
    /// slots. Its fields are set before it is published.
    func newVMA(_ mm: UInt32, start: UInt64, pages: Int, pgoff: UInt64, ctx: UInt32, file: UInt32 = 0, _ cpu: CPU) -> UInt32 {
        let v = cacheAlloc(.vmas, cpu)
        guard v != 0 else { return 0 }
        let r = vmaRecord(v)
        r.pointee.mm.store(mm, ordering: .relaxed)
        r.pointee.start.store(start, ordering: .relaxed)
        r.pointee.pages.store(UInt32(pages), ordering: .relaxed)
        r.pointee.pgoff.store(pgoff, ordering: .relaxed)
        r.pointee.ctx.store(ctx, ordering: .relaxed)
        r.pointee.file.store(file, ordering: .relaxed)
        r.pointee.iNext.store(0, ordering: .relaxed)
        r.pointee.iPrev.store(0, ordering: .relaxed)
        r.pointee.iLinked.store(false, ordering: .relaxed)
        spaces.vmas.publish(v)
        return v
    }

    /// Puts VMA `v` in the first free entry of `mm`'s table; false when full.
    /// mmap lock held for writing (or the mm not yet published).
    func insertVMA(_ mm: UInt32, _ v: UInt32) -> Bool {
        for k in 0..<MachineConfig.maxVMAs where vmaHandle(mm, k) == 0 {
            setVMAHandle(mm, k, v)
            return true
        }
        return false
    }

    /// Takes `v` out of `mm`'s table. mmap lock held for writing.
    func removeVMA(_ mm: UInt32, _ v: UInt32) {
        for k in 0..<MachineConfig.maxVMAs where vmaHandle(mm, k) == v { setVMAHandle(mm, k, 0) }
    }

    /// Frees VMA `v`: after a grace period when the scheme's walkers read
    /// VMAs (anon_vma: they may still be on it), at once when they do not
    /// (anongroup walks mms; only the mm's own operations, under its mmap
    /// lock, see its VMAs).
    func retireVMA(_ v: UInt32, _ cpu: CPU) {
        if !R.walkersReadVMAs {
            guard spaces.vmas.transition(v, from: SlotState.live, to: SlotState.free) else {
                report(.lifetime, cpu: cpu, "VMA \(v) freed twice (state \(SlotState.name(spaces.vmas.load(v))))")
                return
            }
            cacheFree(.vmas, v, cpu)
            return
        }
        if !retire(spaces.vmas, v, from: SlotState.live, cpu) {
            report(.lifetime, cpu: cpu, "VMA \(v) retired twice (state \(SlotState.name(spaces.vmas.load(v))))")
        }
    }

    /// Frees a VMA nobody has seen (no table, no rmap list).
    func freeUnpublishedVMA(_ v: UInt32, _ cpu: CPU) {
        spaces.vmas.state[Int(v)].pointee.store(SlotState.free, ordering: .releasing)
        cacheFree(.vmas, v, cpu)
    }
}
