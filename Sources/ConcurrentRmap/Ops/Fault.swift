/// Outcome of one page fault.
public enum FaultResult: Sendable, Equatable {
    case ok, badAddress, outOfMemory
    /// Gave up on a state that cannot be (a migration entry left behind):
    /// the violation is recorded and waiting would never end.
    case inconsistent
}

/// handle_mm_fault: first touch, copy-on-write, swap-in (through the swap
/// cache), and the checks that ride on every access.
///
/// Locks (order: `LockClass`): mmapLock (read), the scheme's prepare
/// (rmapList, then ptl), ptl, and page locks by trylock only under the ptl.
/// A full allocation may run direct reclaim, so under the ptl a fault only
/// pops a frame from its own CPU's cache; when that is empty it drops the
/// ptl, allocates, and retries.
extension Kernel {
    /// A read (`write == false`) or write of `vpn` in pinned `mm`. A write
    /// stores a fresh value and records it as the expected content.
    func fault(_ mm: UInt32, vpn: UInt64, write: Bool, _ cpu: CPU) -> FaultResult {
        mmapRead(mm)
        defer { mmapUnlock(mm) }
        let vma = findVMA(mm, vpn)
        guard vma != 0 else { cpu.pointee.count(.badAddress); return .badAddress }
        return faultLocked(mm, vma: vma, vpn: vpn, write: write, cpu)
    }

    /// A fault at a random address of one of the mm's VMAs, chosen under
    /// the mmap lock (VMAs move under mremap). Returns the address too.
    func faultAnywhere(_ mm: UInt32, write: Bool, _ cpu: CPU) -> (FaultResult, UInt64) {
        mmapRead(mm)
        defer { mmapUnlock(mm) }
        guard let (vma, vpn) = randomAddress(mm, cpu) else { cpu.pointee.count(.badAddress); return (.badAddress, 0) }
        cpu.pointee.note(.fault, mm: mm, arg: UInt32(truncatingIfNeeded: vpn) | (write ? 0x8000_0000 : 0))
        return (faultLocked(mm, vma: vma, vpn: vpn, write: write, cpu), vpn)
    }

    /// The fault proper; the mmap lock is held for reading and `vma` holds `vpn`.
    private func faultLocked(_ mm: UInt32, vma: UInt32, vpn: UInt64, write: Bool, _ cpu: CPU) -> FaultResult {
        // The scheme's context for new pages (anon_vma_prepare), before the
        // ptl: it may allocate.
        // A shared file mapping never has anonymous pages.
        let file = vmaFile(vma)
        if !VMAFile.isShared(file) {
            guard rmap.vmaPrepare(self, mm: mm, vma: vma, cpu: cpu) else { cpu.pointee.count(.faultOOM); return .outOfMemory }
        }
        var spare: UInt32 = 0
        defer { if spare != 0 { put(spare, cpu) } }
        while true {
            ptlLock(mm)
            let i = pteIndexAlloc(mm, vpn, cpu)
            if i < 0 {
                ptlUnlock(mm)
                cpu.pointee.count(.faultOOM)
                return .outOfMemory
            }
            let pte = pte(at: i)
            if pte.isMigration {
                // Wait for the migration to finish, like migration_entry_wait.
                let leftBehind = migrationEntryLeftBehind(pte, at: i, mm: mm, vpn: vpn, cpu)
                ptlUnlock(mm)
                if leftBehind { return .inconsistent }
                cpu.pointee.count(.migrationWait)
                P.relax()
                continue
            }
            if pte.isSwap {
                switch swapIn(mm, vma: vma, vpn: vpn, at: i, pte: pte, spare: &spare, write: write, cpu) {
                case .done: ptlUnlock(mm); return .ok
                case .needFrame:
                    ptlUnlock(mm)
                    spare = allocFrame(cpu)
                    if spare == 0 { cpu.pointee.count(.faultOOM); return .outOfMemory }
                case .busy:
                    ptlUnlock(mm)
                    cpu.pointee.count(.migrationWait)
                    P.relax()
                case .failed: ptlUnlock(mm); return .inconsistent
                }
                continue
            }
            if file != 0 && (pte.isNone || (pte.isPresent && pte.target >= 1 && Int(pte.target) <= config.frames
                                              && isFilePage(pte.target))) {
                if let r = fileFaultStep(mm, vma: vma, vpn: vpn, at: i, pte: pte, write: write, spare: &spare, cpu) { return r }
                continue
            }
            // Decided once: pins come and go, so canReuse may change under us.
            let reuse = write && pte.isPresent && !pte.isWritable && canReuse(pte.target, cpu)
            let needsFrame = pte.isNone || (write && pte.isPresent && !pte.isWritable && !reuse)
            if needsFrame && spare == 0 {
                // This CPU's cached frames first, under the ptl; only when
                // there are none, drop the ptl, allocate (it may reclaim) and
                // look again.
                spare = allocFrameCached(cpu)
                if spare == 0 {
                    ptlUnlock(mm)
                    spare = allocFrame(cpu)
                    if spare == 0 { cpu.pointee.count(.faultOOM); return .outOfMemory }
                    continue
                }
            }
            if pte.isNone {
                let f = spare; spare = 0
                let value = write ? nextValue(cpu) : 0
                frames[Int(f)].content.store(value, ordering: .relaxed)
                rmap.pageAdded(self, frame: f, mm: mm, vma: vma, vpn: vpn)
                rmap.pteInstalled(self, frame: f, mm: mm, vpn: vpn, cpu: cpu)
                frames[Int(f)].mapcount.store(1, ordering: .relaxed)
                expected[i] = value
                setPTE(at: i, .present(f, writable: write))
                cpu.pointee.count(.firstTouch)
            } else {
                let f = pte.target
                guard validFrame(f, mm: mm, vpn: vpn, cpu) else { ptlUnlock(mm); return .inconsistent }
                checkMapped(f, mm: mm, vpn: vpn, cpu)
                checkContent(frames[Int(f)].content.load(ordering: .relaxed), expected: expected[i],
                             frame: f, mm: mm, vpn: vpn, cpu)
                raceWindow(cpu)  // PTE read, not yet rewritten: walkers must hold the ptl
                if !write {
                    setPTE(at: i, pte.with(young: true))
                } else if pte.isWritable {
                    let v = nextValue(cpu)
                    frames[Int(f)].content.store(v, ordering: .relaxed)
                    expected[i] = v
                    setPTE(at: i, pte.with(young: true))
                } else if reuse {
                    // Sole mapping, no other pin: take it over (do_wp_page
                    // reuse), on the VMA's own rmap context first.
                    rmap.pageReused(self, frame: f, mm: mm, vma: vma)
                    let v = nextValue(cpu)
                    frames[Int(f)].content.store(v, ordering: .relaxed)
                    expected[i] = v
                    setPTE(at: i, .present(f, writable: true))
                    cpu.pointee.count(.cowReuse)
                } else {
                    // Copy-on-write into the spare frame.
                    let n = spare; spare = 0
                    let v = nextValue(cpu)
                    frames[Int(n)].content.store(v, ordering: .relaxed)
                    rmap.pageAdded(self, frame: n, mm: mm, vma: vma, vpn: vpn)
                    rmap.pteInstalled(self, frame: n, mm: mm, vpn: vpn, cpu: cpu)
                    frames[Int(n)].mapcount.store(1, ordering: .relaxed)
                    expected[i] = v
                    setPTE(at: i, .present(n, writable: true))
                    mapDec(f, cpu)
                    if inject != .pteChainsCowKeepsOldEntry { rmap.pteCleared(self, frame: f, mm: mm, vpn: vpn, cpu: cpu) }
                    put(f, cpu)
                    cpu.pointee.count(.cowCopy)
                }
            }
            ptlUnlock(mm)
            return .ok
        }
    }

    /// do_wp_page's reuse test: a page mapped once with no other pin can be
    /// written in place. A page in the swap cache is pinned by it; if no
    /// swap entry names its slot any more, the cache copy is useless and is
    /// dropped first (try_to_free_swap), under the page lock (trylock: the
    /// ptl is held). ptl held.
    @inline(__always) func canReuse(_ f: UInt32, _ cpu: CPU) -> Bool {
        let fr = frames + Int(f)
        guard fr.pointee.mapcount.load(ordering: .relaxed) == 1 else { return false }
        if fr.pointee.flags.load(ordering: .acquiring) & FrameFlags.swapCache != 0 {
            guard tryLockPage(f) else { return false }
            let s = fr.pointee.swapSlot.load(ordering: .relaxed)
            let stillCached = fr.pointee.flags.load(ordering: .acquiring) & FrameFlags.swapCache != 0
            if stillCached && swap.count[Int(s)].load(ordering: .acquiring) == 1 && fr.pointee.refcount.load(ordering: .acquiring) == 2 {
                swapCacheRemove(f, cpu)
                unlockPage(f)
                // The cache's reference: we map the page, so this is not the last.
                put(f, cpu)
            } else {
                unlockPage(f)
                return false
            }
        }
        return fr.pointee.refcount.load(ordering: .acquiring) == 1
    }

    enum SwapInResult { case done, needFrame, busy, failed }

    /// do_swap_page, ptl held. The slot's page in the swap cache is mapped
    /// as it is when the fault only reads and the scheme allows it there
    /// (sharing comes back); otherwise the faulting mm gets its own copy.
    /// A page read back from swap (none cached) goes into the swap cache
    /// when the fault only reads, so other PTEs of the slot can find it.
    private func swapIn(_ mm: UInt32, vma: UInt32, vpn: UInt64, at i: Int, pte: PTE, spare: inout UInt32,
                        write: Bool, _ cpu: CPU) -> SwapInResult {
        let s = pte.target
        guard swap.contains(s) else {
            report(.swapCount, mm: mm, vpn: vpn, cpu: cpu, "swap entry names slot \(s), outside 1...\(config.swapSlots)")
            return .failed
        }
        switch swapCacheLookup(s, cpu) {
        case .busy:
            return .busy
        case .cached(let f):
            checkContent(frames[Int(f)].content.load(ordering: .relaxed), expected: expected[i], frame: f, mm: mm, vpn: vpn, cpu)
            if !write && rmap.canMapCached(self, frame: f, mm: mm, vma: vma, vpn: vpn) {
                // Our pin becomes the mapping's reference.
                rmap.pteInstalled(self, frame: f, mm: mm, vpn: vpn, cpu: cpu)
                mapInc(f, cpu)
                setPTE(at: i, .present(f, writable: false))
                unlockPage(f)
                swapPut(s, cpu)
                cpu.pointee.count(.swapCacheHit)
                return .done
            }
            guard spare != 0 else { unlockPage(f); put(f, cpu); return .needFrame }
            let n = spare; spare = 0
            let value = write ? nextValue(cpu) : frames[Int(f)].content.load(ordering: .relaxed)
            frames[Int(n)].content.store(value, ordering: .relaxed)
            rmap.pageAdded(self, frame: n, mm: mm, vma: vma, vpn: vpn)
            rmap.pteInstalled(self, frame: n, mm: mm, vpn: vpn, cpu: cpu)
            frames[Int(n)].mapcount.store(1, ordering: .relaxed)
            expected[i] = value
            setPTE(at: i, .present(n, writable: write))
            unlockPage(f)
            put(f, cpu)
            swapPut(s, cpu)
            cpu.pointee.count(write ? .swapIn : .swapCacheCopy)
            return .done
        case .none:
            guard spare != 0 else { return .needFrame }
            let n = spare
            let old = swap.content[Int(s)].load(ordering: .acquiring)
            checkContent(old, expected: expected[i], frame: 0, mm: mm, vpn: vpn, cpu)
            // A read fault puts the page into the swap cache before anything
            // else, locked, so that a racing fault of another PTE of this
            // slot waits for it instead of reading its own copy. (A fresh
            // frame's lock may still be held for a moment by a scanner that
            // saw it in its previous life: then the page is not cached.)
            var cached = false
            if !write && tryLockPage(n) {
                guard swapCacheAdd(n, slot: s) else {
                    unlockPage(n)
                    return .busy  // another fault cached its copy first: map that one
                }
                cached = true
            }
            spare = 0
            let value = write ? nextValue(cpu) : old
            frames[Int(n)].content.store(value, ordering: .relaxed)
            rmap.pageAdded(self, frame: n, mm: mm, vma: vma, vpn: vpn)
            rmap.pteInstalled(self, frame: n, mm: mm, vpn: vpn, cpu: cpu)
            frames[Int(n)].mapcount.store(1, ordering: .relaxed)
            expected[i] = value
            setPTE(at: i, .present(n, writable: write))  // swap -> present: leaf use count unchanged
            if cached { unlockPage(n) }
            swapPut(s, cpu)
            cpu.pointee.count(.swapIn)
            return .done
        }
    }

    /// A migration entry whose page is no longer locked was left behind by a
    /// migration that did not find it: a waiter would spin forever. Reports
    /// it and returns true (the caller gives up instead of waiting). ptl held.
    func migrationEntryLeftBehind(_ pte: PTE, at i: Int, mm: UInt32, vpn: UInt64, _ cpu: CPU) -> Bool {
        let f = pte.target
        guard f >= 1 && Int(f) <= config.frames else {
            report(.location, mm: mm, vpn: vpn, cpu: cpu, "migration entry names frame \(f), outside 1...\(config.frames)")
            return true
        }
        guard frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.locked == 0 else { return false }
        // Re-read: the migration may have just finished and rewritten it
        // (it takes this ptl to do so, so under the ptl one look suffices).
        guard ptes[i] == pte.raw else { return false }
        report(.incompleteWalk, frame: f, mm: mm, vpn: vpn, cpu: cpu,
               "migration entry left behind: its page is no longer locked")
        return true
    }
}
