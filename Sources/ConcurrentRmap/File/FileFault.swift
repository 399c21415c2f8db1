/// The file fault (filemap_fault + finish_fault, do_shared_fault,
/// do_cow_fault): the part of `faultLocked` for a file VMA whose PTE is
/// empty or maps a page cache page. Anonymous pages of a private file VMA
/// (its COW copies, present or swapped) take the anonymous path.
///
/// Locks (order: `LockClass`): mmapLock (read) held throughout; on a miss
/// the ptl is dropped, the page found or created and locked, the size
/// re-checked under the page lock, then the ptl taken again to map it.
extension Kernel {
    /// The file offset VMA `v` maps at `vpn`.
    @inline(__always) func fileIndex(_ v: UInt32, _ vpn: UInt64) -> UInt64 { vmaPgoff(v) + (vpn - vmaStart(v)) }

    /// Called with the ptl held (released on return) and the PTE at `i`
    /// empty or mapping a file page. nil: look again (the caller's loop).
    func fileFaultStep(_ mm: UInt32, vma: UInt32, vpn: UInt64, at i: Int, pte: PTE, write: Bool,
                       spare: inout UInt32, _ cpu: CPU) -> FaultResult? {
        let file = vmaFile(vma)
        let ino = VMAFile.inode(file), shared = VMAFile.isShared(file)
        let index = fileIndex(vma, vpn)
        if pte.isPresent {
            let f = pte.target
            guard validFrame(f, mm: mm, vpn: vpn, cpu) else { ptlUnlock(mm); return .inconsistent }
            checkMapped(f, mm: mm, vpn: vpn, cpu)
            checkWithinEOF(f, ino, frames[Int(f)].index.load(ordering: .relaxed), cpu)
            if pte.isWritable && !shared && checks != .off {
                report(.location, frame: f, mm: mm, vpn: vpn, cpu: cpu, "writable PTE of a page cache page in a private mapping")
            }
            raceWindow(cpu)
            if !write {
                setPTE(at: i, pte.with(young: true))
            } else if shared || inject == .filePrivateWriteInCache {
                // do_shared_fault / a write through a writable PTE: the
                // cache page itself is written and dirtied.
                let v = nextValue(cpu)
                frames[Int(f)].content.store(v, ordering: .relaxed)
                frames[Int(f)].flags.bitwiseOr(FrameFlags.dirty, ordering: .relaxed)
                expected[i] = v
                setPTE(at: i, .present(f, writable: true))
            } else {
                // do_cow_fault: an anonymous copy through the active scheme.
                if spare == 0 {
                    spare = allocFrameCached(cpu)
                    if spare == 0 {
                        ptlUnlock(mm)
                        spare = allocFrame(cpu)
                        if spare == 0 { cpu.pointee.count(.faultOOM); return .outOfMemory }
                        return nil
                    }
                }
                let n = spare; spare = 0
                let v = nextValue(cpu)
                frames[Int(n)].content.store(v, ordering: .relaxed)
                rmap.pageAdded(self, frame: n, mm: mm, vma: vma, vpn: vpn)
                rmap.pteInstalled(self, frame: n, mm: mm, vpn: vpn, cpu: cpu)
                frames[Int(n)].mapcount.store(1, ordering: .relaxed)
                expected[i] = v
                setPTE(at: i, .present(n, writable: true))
                mapDec(f, cpu)
                put(f, cpu)  // cannot free: the cache holds it
                cpu.pointee.count(.fileCow)
            }
            ptlUnlock(mm)
            return .ok
        }
        // A miss in the page table: find the page in the cache, or read it.
        ptlUnlock(mm)
        guard index < files.inode[Int(ino)].size.load(ordering: .sequentiallyConsistent) else {
            cpu.pointee.count(.fileSigbus)
            return .badAddress
        }
        raceWindow(cpu)  // size read, page not yet locked: a truncate may run to its end here
        let f: UInt32
        switch findOrCreateCachePage(ino, index, cpu) {
        case .outOfMemory: cpu.pointee.count(.faultOOM); return .outOfMemory
        case .page(let p): f = p
        }
        // The re-check under the page lock: a truncate that set the size
        // first has unmapped, or will find this page locked and wait.
        raceWindow(cpu)
        if inject != .fileFaultNoSizeCheck && index >= files.inode[Int(ino)].size.load(ordering: .sequentiallyConsistent) {
            if inCache(f, ino, index) {
                cacheRemove(f, discard: true, cpu)
                unlockPage(f)
                put(f, cpu)  // the cache's reference
            } else {
                unlockPage(f)
            }
            put(f, cpu)
            cpu.pointee.count(.fileSigbus)
            return .badAddress
        }
        ptlLock(mm)
        let j = pteIndexAlloc(mm, vpn, cpu)
        if j < 0 {
            ptlUnlock(mm); unlockPage(f); put(f, cpu)
            cpu.pointee.count(.faultOOM)
            return .outOfMemory
        }
        if self.pte(at: j).isNone {
            let writeShared = write && (shared || inject == .filePrivateWriteInCache)
            refInc(f)  // the mapping's reference
            mapInc(f, cpu)
            if writeShared {
                let v = nextValue(cpu)
                frames[Int(f)].content.store(v, ordering: .relaxed)
                frames[Int(f)].flags.bitwiseOr(FrameFlags.dirty, ordering: .relaxed)
            }
            expected[j] = frames[Int(f)].content.load(ordering: .relaxed)
            setPTE(at: j, .present(f, writable: writeShared))
            cpu.pointee.count(.fileFault)
        }
        ptlUnlock(mm)
        unlockPage(f)
        put(f, cpu)
        // A private write maps the page read-only first, then copies it.
        return write && !shared && inject != .filePrivateWriteInCache ? nil : .ok
    }
}
