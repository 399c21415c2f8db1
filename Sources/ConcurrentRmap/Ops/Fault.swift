/// Outcome of one page fault.
public enum FaultResult: Sendable, Equatable {
    case ok, badAddress, outOfMemory
    /// Gave up on a state that cannot be (a migration entry left behind):
    /// the violation is recorded and waiting would never end.
    case inconsistent
}

/// handle_mm_fault: first touch, copy-on-write, swap-in, and the checks
/// that ride on every access.
///
/// Locks: mmap lock (read) -> ptl. A fault never waits for a page lock and
/// never allocates with the ptl held (allocation may run direct reclaim,
/// which takes other mms' ptls); it drops the ptl, allocates, and retries.
extension Kernel {
    /// A read (`write == false`) or write of `vpn` in pinned `mm`. A write
    /// stores a fresh value and records it as the expected content.
    func fault(_ mm: UInt32, vpn: UInt64, write: Bool, _ cpu: CPU) -> FaultResult {
        mmapLock.readLock(Int(mm))
        defer { mmapLock.unlock(Int(mm)) }
        return faultLocked(mm, vpn: vpn, write: write, cpu)
    }

    /// A fault at a random address of one of the mm's VMAs, chosen under
    /// the mmap lock (VMAs move under mremap). Returns the address too.
    func faultAnywhere(_ mm: UInt32, write: Bool, _ cpu: CPU) -> (FaultResult, UInt64) {
        mmapLock.readLock(Int(mm))
        defer { mmapLock.unlock(Int(mm)) }
        guard let vpn = randomAddress(mm, cpu) else { cpu.pointee.count(.badAddress); return (.badAddress, 0) }
        cpu.pointee.note(.fault, mm: mm, arg: UInt32(truncatingIfNeeded: vpn) | (write ? 0x8000_0000 : 0))
        return (faultLocked(mm, vpn: vpn, write: write, cpu), vpn)
    }

    /// The fault proper; the mmap lock is held for reading.
    private func faultLocked(_ mm: UInt32, vpn: UInt64, write: Bool, _ cpu: CPU) -> FaultResult {
        guard inVMA(mm, vpn) else { cpu.pointee.count(.badAddress); return .badAddress }
        var spare: UInt32 = 0
        defer { if spare != 0 { put(spare, cpu) } }
        while true {
            ptl.lock(Int(mm))
            let i = pteIndexAlloc(mm, vpn, cpu)
            if i < 0 {
                ptl.unlock(Int(mm))
                cpu.pointee.count(.faultOOM)
                return .outOfMemory
            }
            let pte = PTE(raw: ptes[i])
            // Decided once: pins come and go, so canReuse may change under us.
            let reuse = write && pte.isPresent && !pte.isWritable && canReuse(pte.target)
            let needsFrame = pte.isNone || pte.isSwap || (write && pte.isPresent && !pte.isWritable && !reuse)
            if pte.isMigration {
                // Wait for the migration to finish, like migration_entry_wait.
                let leftBehind = migrationEntryLeftBehind(pte, at: i, mm: mm, vpn: vpn, cpu)
                ptl.unlock(Int(mm))
                if leftBehind { return .inconsistent }
                cpu.pointee.count(.migrationWait)
                cpuRelax()
                continue
            }
            if needsFrame && spare == 0 {
                ptl.unlock(Int(mm))
                spare = allocFrame(cpu)
                if spare == 0 { cpu.pointee.count(.faultOOM); return .outOfMemory }
                continue
            }
            if pte.isNone {
                let f = spare; spare = 0
                let value = write ? nextValue(cpu) : 0
                frames[Int(f)].content.store(value, ordering: .relaxed)
                rmap.pageAdded(self, frame: f, mm: mm, vpn: vpn)
                frames[Int(f)].mapcount.store(1, ordering: .relaxed)
                expected[i] = value
                setPTE(mm, vpn, at: i, .present(f, writable: write))
                cpu.pointee.count(.firstTouch)
            } else if pte.isSwap {
                swapIn(mm, vpn: vpn, at: i, pte: pte, frame: spare, write: write, cpu)
                spare = 0
            } else {
                let f = pte.target
                guard validFrame(f, mm: mm, vpn: vpn, cpu) else { ptl.unlock(Int(mm)); return .inconsistent }
                checkMapped(f, mm: mm, vpn: vpn, cpu)
                checkContent(frames[Int(f)].content.load(ordering: .relaxed), expected: expected[i],
                             frame: f, mm: mm, vpn: vpn, cpu)
                raceWindow(cpu)  // PTE read, not yet rewritten: walkers must hold the ptl
                if !write {
                    ptes[i] = pte.with(young: true).raw
                } else if pte.isWritable {
                    let v = nextValue(cpu)
                    frames[Int(f)].content.store(v, ordering: .relaxed)
                    expected[i] = v
                    ptes[i] = pte.with(young: true).raw
                } else if reuse {
                    // Sole mapping, no other pin: take it over (do_wp_page reuse).
                    let v = nextValue(cpu)
                    frames[Int(f)].content.store(v, ordering: .relaxed)
                    expected[i] = v
                    ptes[i] = PTE.present(f, writable: true).raw
                    cpu.pointee.count(.cowReuse)
                } else {
                    // Copy-on-write into the spare frame.
                    let n = spare; spare = 0
                    let v = nextValue(cpu)
                    frames[Int(n)].content.store(v, ordering: .relaxed)
                    rmap.pageAdded(self, frame: n, mm: mm, vpn: vpn)
                    frames[Int(n)].mapcount.store(1, ordering: .relaxed)
                    expected[i] = v
                    setPTE(mm, vpn, at: i, .present(n, writable: true))
                    mapDec(f, cpu)
                    put(f, cpu)
                    cpu.pointee.count(.cowCopy)
                }
            }
            ptl.unlock(Int(mm))
            return .ok
        }
    }

    /// A page mapped once with no other pin can be written in place.
    @inline(__always) func canReuse(_ f: UInt32) -> Bool {
        frames[Int(f)].mapcount.load(ordering: .relaxed) == 1
            && frames[Int(f)].refcount.load(ordering: .acquiring) == 1
    }

    /// do_swap_page: a new private page with the slot's content. ptl held.
    private func swapIn(_ mm: UInt32, vpn: UInt64, at i: Int, pte: PTE, frame f: UInt32, write: Bool, _ cpu: CPU) {
        let s = pte.target
        let old = swapContent[Int(s)].load(ordering: .acquiring)
        checkContent(old, expected: expected[i], frame: 0, mm: mm, vpn: vpn, cpu)
        let swappedVpn = swapVpn[Int(s)].load(ordering: .relaxed)
        let value = write ? nextValue(cpu) : old
        frames[Int(f)].content.store(value, ordering: .relaxed)
        rmap.pageAdded(self, frame: f, mm: mm, vpn: vpn)
        if swappedVpn != vpn {
            frames[Int(f)].index.store(rmap.swapInIndex(self, swappedVpn: swappedVpn, vpn: vpn), ordering: .relaxed)
        }
        frames[Int(f)].mapcount.store(1, ordering: .relaxed)
        expected[i] = value
        ptes[i] = PTE.present(f, writable: write).raw  // swap -> present: leaf use count unchanged
        swapPut(s, cpu)
        cpu.pointee.count(.swapIn)
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
