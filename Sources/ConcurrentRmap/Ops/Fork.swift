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
    func fork(_ parent: UInt32, _ cpu: CPU) -> ForkResult {
        let child = allocMM()
        guard child != 0 else { cpu.pointee.count(.forkFailed); return .outOfMemory }
        mmapLock.writeLock(Int(parent))
        for k in 0..<MachineConfig.maxVMAs { setVMA(child, k, vma(parent, k)) }
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
            return .outOfMemory
        }
        if !installProcess(child, near: cpu.pointee.random(below: config.maxProcesses)) {
            cpu.pointee.count(.processLimit)
            mmPut(child, cpu)
            return .processLimit
        }
        return .ok
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
            let ci = pteIndexAlloc(child, vpn)
            guard ci >= 0 else { return false }
            if pte.isSwap {
                swapCount[Int(pte.target)].add(1, ordering: .relaxed)
            } else {
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
