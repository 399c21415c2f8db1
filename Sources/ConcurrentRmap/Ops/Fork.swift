/// fork (dup_mmap + copy_page_range).
///
/// Locks (order: `LockClass`): the parent's mmapLock (write), briefly the
/// scheme's rmapList and an inode's iMmap (each released before any ptl), then the parent's ptl and
/// the child's as ptlNested: walkers hold one ptl at a time, so this is the
/// only place two are held.
///
/// Order matters: the child (anongroup: its mm; anon_vma: each VMA) joins
/// the rmap *before* its PTEs are copied, as the scheme's `forkLinkPhase`
/// says; a walker then sees every copy (see each scheme for why).
extension Kernel {
    public enum ForkResult: Sendable, Equatable { case ok, processLimit, outOfMemory }

    /// Forks the pinned `parent` into a new process in a free table slot.
    /// On success the child comes back pinned (one user for the caller, one
    /// for the process table): drop it with `mmPut`.
    /// The child's table slot is near `slot` (every `stride`-th), or random.
    func fork(_ parent: UInt32, _ cpu: CPU, near slot: Int? = nil, stride: Int = 1) -> (result: ForkResult, child: UInt32, slot: Int) {
        let child = allocMM(cpu)
        guard child != 0 else { cpu.pointee.count(.forkFailed); return (.outOfMemory, 0, -1) }
        mmapWrite(parent)
        familyJoin(child: child, parent: parent)
        mms.publish(child)
        let linkFirst = rmap.forkLinkPhase(self) == .beforeCopy
        // Out of rmap contexts (cow-context): nothing is copied; the child's
        // teardown undoes the rest.
        var ok = linkFirst ? rmap.mmForked(self, parent: parent, child: child, cpu: cpu) : true
        var made: [(parent: UInt32, child: UInt32)] = []
        for t in 0..<MachineConfig.maxVMAs where ok {
            let pv = vmaHandle(parent, t)
            guard pv != 0 else { continue }
            let cv = newVMA(child, start: vmaStart(pv), pages: vmaPages(pv), pgoff: vmaPgoff(pv), ctx: vmaCtx(pv),
                            file: vmaFile(pv), cpu)
            guard cv != 0 else { ok = false; break }
            setVMAHandle(child, t, cv)
            // A file VMA joins i_mmap before any PTE could be copied.
            if inject != .fileForkNoIMmap { iMmapLink(cv) }
            if linkFirst {
                // Out of memory: the child VMA is left with nothing in the
                // rmap and no PTE; the child's teardown drops it.
                guard rmap.vmaForked(self, parent: pv, child: cv, cpu: cpu) else { ok = false; break }
            } else {
                made.append((pv, cv))
            }
            raceWindow(cpu)  // between linking and copying
            if !copyRange(parent, child, vma: pv, cpu) { ok = false; break }
        }
        raceWindow(cpu)
        if !linkFirst {
            for (pv, cv) in made where !rmap.vmaForked(self, parent: pv, child: cv, cpu: cpu) { ok = false }
            if !rmap.mmForked(self, parent: parent, child: child, cpu: cpu) { ok = false }
        }
        mmapUnlock(parent)
        guard ok else {
            cpu.pointee.count(.forkFailed)
            mmPut(child, cpu)
            return (.outOfMemory, 0, -1)
        }
        // Unreachable but through the rmap until installed: the caller's pin
        // can be added without mmget_not_zero.
        spaces.users[Int(child)].pointee.wrappingAdd(1, ordering: .relaxed)
        let at = installProcess(child, near: slot ?? cpu.pointee.random(below: config.maxProcesses), stride: stride)
        if at < 0 {
            cpu.pointee.count(.processLimit)
            mmPut(child, cpu)
            mmPut(child, cpu)
            return (.processLimit, 0, -1)
        }
        return (.ok, child, at)
    }

    /// copy_pte_range for one VMA: present and migration entries share the
    /// frame (read-only in both), swap entries share the slot. Walks one
    /// leaf at a time, as copy_pte_range does: each leaf of the parent and
    /// of the child is looked up once, not once per PTE.
    private func copyRange(_ parent: UInt32, _ child: UInt32, vma pv: UInt32, _ cpu: CPU) -> Bool {
        var vpn = vmaStart(pv)
        let end = vpn + UInt64(vmaPages(pv))
        ptlLock(parent)
        ptlLock(child, nested: true)
        defer { ptlUnlock(child); ptlUnlock(parent) }
        while vpn < end {
            let leafEnd = min(end, (vpn | UInt64(MachineConfig.ptesPerLeaf - 1)) + 1)
            let parentLeaf = pteIndex(parent, vpn)
            guard parentLeaf >= 0 else { vpn = leafEnd; continue }
            let parentBase = parentLeaf - Int(vpn & UInt64(MachineConfig.ptesPerLeaf - 1))
            var childBase = -1  // the child's leaf, allocated at the first PTE to copy
            while vpn < leafEnd {
                defer { vpn += 1 }
                let off = Int(vpn & UInt64(MachineConfig.ptesPerLeaf - 1))
                let pi = parentBase + off
                var pte = pte(at: pi)
                if pte.isNone { continue }
                if childBase < 0 {
                    let ci = pteIndexAlloc(child, vpn, cpu)
                    guard ci >= 0 else { return false }
                    childBase = ci - off
                }
                if pte.isSwap {
                    guard swap.contains(pte.target) else {
                        report(.swapCount, mm: parent, vpn: vpn, cpu: cpu, "swap entry names slot \(pte.target)")
                        continue
                    }
                    swap.count[Int(pte.target)].wrappingAdd(1, ordering: .relaxed)
                } else {
                    guard validFrame(pte.target, mm: parent, vpn: vpn, cpu) else { continue }
                    // A file page is not copied: the child refaults it from
                    // the page cache (the kernel's rule for shared mappings).
                    if isFilePage(pte.target) { continue }
                    refInc(pte.target)
                    if inject != .pteChainsForkNoEntry { rmap.pteInstalled(self, frame: pte.target, mm: child, vpn: vpn, cpu: cpu) }
                    mapInc(pte.target, cpu)
                    // Present and migration entries alike become read-only in
                    // both mms: a writable migration entry would come back as
                    // two writable PTEs of one page (copy_nonpresent_pte).
                    pte = pte.readOnly()
                    setPTE(at: pi, pte)
                }
                let ci = childBase + off
                expected[ci] = expected[pi]
                setPTE(at: ci, pte)
                raceWindow(cpu)
            }
        }
        return true
    }
}
