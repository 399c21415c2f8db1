/// fork (dup_mmap + copy_page_range) and the process-level operations.
///
/// Locks: parent's mmap lock (write), then briefly the group lock (inside
/// the rmap, released before any ptl), then parent ptl -> child ptl. The child is unreachable except through the
/// group list, and walkers hold one ptl at a time, so parent -> child is the
/// only two-ptl order and cannot deadlock.
///
/// Order matters: the child joins the parent's rmap context *before* any PTE
/// is copied (see AnonGroupRmap for why a walker then sees every copy).
extension Kernel {
    public enum ForkResult: Sendable, Equatable { case ok, processLimit, outOfMemory }

    /// Forks the pinned `parent` into a new process in a free table slot.
    /// On success the child comes back pinned (one user for the caller, one
    /// for the process table): drop it with `mmPut`.
    /// The child's table slot is near `slot` (every `stride`-th), or random.
    func fork(_ parent: UInt32, _ cpu: CPU, near slot: Int? = nil, stride: Int = 1) -> (result: ForkResult, child: UInt32, slot: Int) {
        let child = allocMM(cpu)
        guard child != 0 else { cpu.pointee.count(.forkFailed); return (.outOfMemory, 0, -1) }
        mmapLock.writeLock(Int(parent))
        for k in 0..<MachineConfig.maxVMAs { setVMA(child, k, vma(parent, k)) }
        familyJoin(child: child, parent: parent)
        mms.publish(child)
        let linkFirst = inject != .forkLinkAfterCopy
        if linkFirst { rmap.mmForked(self, parent: parent, child: child, cpu: cpu) }
        raceWindow(cpu)  // between linking and copying
        var ok = true
        for k in 0..<MachineConfig.maxVMAs where vma(parent, k) != Kernel.noVMA {
            if !copyRange(parent, child, vmaPosition: vma(parent, k), cpu) { ok = false; break }
        }
        raceWindow(cpu)
        if !linkFirst { rmap.mmForked(self, parent: parent, child: child, cpu: cpu) }
        mmapLock.unlock(Int(parent))
        guard ok else {
            cpu.pointee.count(.forkFailed)
            mmPut(child, cpu)
            return (.outOfMemory, 0, -1)
        }
        // Unreachable but through the rmap until installed: the caller's pin
        // can be added without mmget_not_zero.
        mmUsers[Int(child)].pointee.add(1, ordering: .relaxed)
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
    /// frame (read-only in both), swap entries share the slot.
    private func copyRange(_ parent: UInt32, _ child: UInt32, vmaPosition pos: UInt32, _ cpu: CPU) -> Bool {
        let first = UInt64(pos) * UInt64(config.vmaPages)
        ptl.lock(Int(parent))
        ptl.lock(Int(child))
        defer { ptl.unlock(Int(child)); ptl.unlock(Int(parent)) }
        for vpn in first..<(first + UInt64(config.vmaPages)) {
            let pi = pteIndex(parent, vpn)
            guard pi >= 0 else { continue }
            var pte = PTE(raw: ptes[pi])
            if pte.isNone { continue }
            let ci = pteIndexAlloc(child, vpn, cpu)
            guard ci >= 0 else { return false }
            if pte.isSwap {
                guard pte.target >= 1 && Int(pte.target) <= config.swapSlots else {
                    report(.swapCount, mm: parent, vpn: vpn, cpu: cpu, "swap entry names slot \(pte.target)")
                    continue
                }
                swapCount[Int(pte.target)].add(1, ordering: .relaxed)
            } else {
                guard validFrame(pte.target, mm: parent, vpn: vpn, cpu) else { continue }
                refInc(pte.target)
                mapInc(pte.target, cpu)
                // Present and migration entries alike become read-only in
                // both mms: a writable migration entry would come back as
                // two writable PTEs of one page (copy_nonpresent_pte).
                pte = pte.readOnly()
                ptes[pi] = pte.raw
            }
            expected[ci] = expected[pi]
            setPTE(child, vpn, at: ci, pte)
            raceWindow(cpu)
        }
        return true
    }
}
