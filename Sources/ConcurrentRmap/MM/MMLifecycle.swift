import Synchronization
import URCUShim

/// mm life cycle, the process table, and tearing an address space down.
///
/// An mm is reachable three ways: from the process table (which holds one
/// user reference), from a pinning worker (`users`, taken with inc-not-zero
/// inside an RCU read-side section so the slot cannot be recycled between
/// the load and the increment), and from its rmap (walkers, under RCU or the
/// scheme's lock). When the last user drops it, the mm is torn down: state
/// dying, PTEs zapped under the ptl, VMAs unmapped and retired, then it
/// leaves its rmap context and its slot is freed after a grace period.
///
///     free --allocMM--> (unpublished) --publish--> live --last mmPut--> dying
///          --teardown--> waiting for a grace period --its CPU's retire batch--> free
extension Kernel {
    // MARK: Creation, pinning, release

    /// Allocates an mm slot with one user and no VMAs, not yet published
    /// (state still free); 0 when out of slots.
    func allocMM(_ cpu: CPU) -> UInt32 {
        let mm = cacheAlloc(.mms, cpu)
        guard mm != 0 else { return 0 }
        for k in 0..<MachineConfig.maxVMAs { setVMAHandle(mm, k, 0) }
        spaces.users[Int(mm)].pointee.store(1, ordering: .relaxed)
        return mm
    }

    /// Undoes `allocMM` (and the VMAs and family of a new image) for an mm
    /// nobody has seen.
    private func freeUnpublishedMM(_ mm: UInt32, _ cpu: CPU) {
        for k in 0..<MachineConfig.maxVMAs {
            let v = vmaHandle(mm, k)
            if v != 0 { setVMAHandle(mm, k, 0); freeUnpublishedVMA(v, cpu) }
        }
        spaces.users[Int(mm)].pointee.store(0, ordering: .relaxed)
        spaces.mms.freeUnpublished(mm)
    }

    /// A new process image: a fresh mm with `vmasPerProcess` empty VMAs (each
    /// filling a free slot, its page offset its own start, as a new
    /// anonymous mapping) and its shared libraries (`mapLibraries`), in a
    /// new rmap context and a new family. Returns 0
    /// when out of slots.
    func newProcessMM(_ cpu: CPU) -> UInt32 {
        let mm = allocMM(cpu)
        guard mm != 0 else { return 0 }
        for _ in 0..<config.vmasPerProcess {
            let start = freeSlotStart(mm, cpu)
            let v = newVMA(mm, start: start, pages: config.vmaPages, pgoff: start, ctx: 0, cpu)
            guard v != 0, insertVMA(mm, v) else {
                if v != 0 { freeUnpublishedVMA(v, cpu) }
                freeUnpublishedMM(mm, cpu)
                return 0
            }
        }
        guard familyStart(mm, cpu) else {
            freeUnpublishedMM(mm, cpu)
            return 0
        }
        mms.publish(mm)
        guard rmap.mmStarted(self, mm: mm, cpu: cpu) else {
            // Never reachable by anyone: undo without a grace period.
            familyLeave(mm, cpu)
            mms.state[Int(mm)].pointee.store(SlotState.free, ordering: .releasing)
            for k in 0..<MachineConfig.maxVMAs {
                let v = vmaHandle(mm, k)
                if v != 0 { setVMAHandle(mm, k, 0); freeUnpublishedVMA(v, cpu) }
            }
            spaces.users[Int(mm)].pointee.store(0, ordering: .relaxed)
            cacheFree(.mms, mm, cpu)
            return 0
        }
        // Published and in its rmap context: walkers may now meet it on a
        // library's i_mmap.
        mapLibraries(mm, cpu)
        return mm
    }

    /// mmget_not_zero. Only valid while the slot cannot be recycled: inside an
    /// RCU read-side section, or with another reference held.
    @inline(__always) func mmTryGet(_ mm: UInt32) -> Bool {
        let users = spaces.users[Int(mm)]
        if inject == .mmPinNoZeroCheck {
            // The planted bug: mmget where mmget_not_zero was needed. An mm
            // whose last user just left is pinned back to life.
            users.pointee.wrappingAdd(1, ordering: .acquiring)
            return true
        }
        var u = users.pointee.load(ordering: .relaxed)
        while u > 0 {
            let (done, now) = users.pointee.compareExchange(expected: u, desired: u + 1, ordering: .acquiring)
            if done { return true }
            u = now
        }
        return false
    }

    /// mmput: drop a user; the last one tears the mm down.
    func mmPut(_ mm: UInt32, _ cpu: CPU) {
        let now = spaces.users[Int(mm)].pointee.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            // Exactly one teardown per life: a second "last user" (a pin that
            // resurrected a dying mm) must not zap, unlink or retire its slot
            // again, or the slot is freed twice.
            guard mms.transition(mm, from: SlotState.live, to: SlotState.dying) else {
                report(.lifetime, mm: mm, cpu: cpu,
                       "mm \(mm) lost its last user again while \(SlotState.name(mms.load(mm))): a pin took a user count that was already 0")
                return
            }
            teardown(mm, cpu)
        } else if now < 0 {
            report(.lifetime, mm: mm, cpu: cpu, "mm users went negative")
        }
    }

    /// exit_mmap + the rmap's unlink + RCU-deferred free of the slot. The
    /// state is already dying (set by the last `mmPut`).
    func teardown(_ mm: UInt32, _ cpu: CPU) {
        mmapWrite(mm)
        for k in 0..<MachineConfig.maxVMAs {
            let v = vmaHandle(mm, k)
            guard v != 0 else { continue }
            zap(mm, v, cpu)
            setVMAHandle(mm, k, 0)
            rmap.vmaUnmapped(self, vma: v, cpu: cpu)
            iMmapUnlink(v, cpu)
            retireVMA(v, cpu)
        }
        // free_pgtables: every leaf goes, empty or not (a non-empty one
        // holds PTEs outside every VMA: a leak).
        ptlLock(mm)
        let dir = spaces.pgd + Int(mm) * 512  // hoisted: the scan reads 512 entries
        for d in 0..<512 where dir[d] != 0 {
            let leaf = dir[d]
            if spaces.leafUsed[Int(leaf)] != 0 {
                report(.leak, mm: mm, cpu: cpu, "page-table leaf \(leaf) holds \(spaces.leafUsed[Int(leaf)]) PTEs outside every VMA at exit")
            }
            dir[d] = 0
            cacheFree(.leaves, leaf, cpu)
        }
        ptlUnlock(mm)
        mmapUnlock(mm)
        rmap.mmExited(self, mm: mm, cpu: cpu)
        familyLeave(mm, cpu)
        raceWindow(cpu)  // between unlinking and freeing
        if !retire(mms, mm, from: SlotState.dying, cpu) {
            report(.lifetime, mm: mm, cpu: cpu, "mm \(mm) retired twice (state \(SlotState.name(mms.load(mm))))")
        }
    }

    /// zap_pte_range over VMA `v` of `mm`: drop every PTE's frame or swap
    /// reference. mmap lock held for writing.
    func zap(_ mm: UInt32, _ v: UInt32, _ cpu: CPU) {
        zap(mm, from: vmaStart(v), pages: vmaPages(v), cpu)
    }

    /// zap_pte_range over `pages` pages of `mm` from `first`, one leaf at a
    /// time (each leaf is looked up once).
    func zap(_ mm: UInt32, from first: UInt64, pages: Int, _ cpu: CPU) {
        let mask = UInt64(MachineConfig.ptesPerLeaf - 1)
        var vpn = first
        let end = first + UInt64(pages)
        ptlLock(mm)
        while vpn < end {
            let leafEnd = min(end, (vpn | mask) + 1)
            let i0 = pteIndex(mm, vpn)
            guard i0 >= 0 else { vpn = leafEnd; continue }
            let base = i0 - Int(vpn & mask)
            while vpn < leafEnd {
                defer { vpn += 1 }
                let i = base + Int(vpn & mask)
                let pte = pte(at: i)
                if pte.isNone { continue }
                setPTE(at: i, .none)
                if pte.isSwap {
                    swapPut(pte.target, cpu)
                } else if validFrame(pte.target, mm: mm, vpn: vpn, cpu) {
                    mapDec(pte.target, cpu)
                    if inject != .pteChainsZapKeepsEntry { rmap.pteCleared(self, frame: pte.target, mm: mm, vpn: vpn, cpu: cpu) }
                    put(pte.target, cpu)
                }
            }
        }
        ptlUnlock(mm)
    }

    // MARK: Process table

    /// Pins the mm of a live process at table slot `slot` or after it,
    /// looking at every `stride`-th slot (a worker's own share of the
    /// table); nil when none of those slots holds a process.
    func pinProcess(near slot: Int, stride: Int = 1, _ cpu: CPU) -> (mm: UInt32, slot: Int)? {
        rcuReadLock(cpu)
        defer { rcuReadUnlock(cpu) }
        var pinned: UInt32 = 0
        let at = processes.scan(from: slot, stride: stride) { _, e in
            let mm = e.pointee.load(ordering: .acquiring)
            guard mm != 0 && mms.contains(mm) else { return false }
            raceWindow(cpu)  // between reading the table and pinning: the process may exit
            guard mmTryGet(mm) else { return false }
            pinned = mm
            return true
        }
        return at.map { (pinned, $0) }
    }

    /// Places `mm` (holding one user for the table) in a free process slot:
    /// the first free one of every `stride`-th slot from `slot` on, wrapping
    /// within them (a worker's share of the table), then any; returns the
    /// slot, or -1 when the table is full.
    func installProcess(_ mm: UInt32, near slot: Int, stride: Int = 1) -> Int {
        if stride > 1, let s = claimProcessSlot(mm, near: slot, stride: stride) { return s }
        return claimProcessSlot(mm, near: slot, stride: 1) ?? -1
    }

    /// One pass of `installProcess`, over the slots `pinProcess` visits.
    private func claimProcessSlot(_ mm: UInt32, near slot: Int, stride: Int) -> Int? {
        processes.scan(from: slot, stride: stride) { s, e in
            // Load first: a failed compare-exchange still takes the line
            // exclusive, and most slots scanned are taken.
            guard e.pointee.load(ordering: .relaxed) == 0,
                  e.pointee.compareExchange(expected: 0, desired: mm, ordering: .releasing).exchanged else { return false }
            processes.shareCounts[s % processes.shares].pointee.wrappingAdd(1, ordering: .relaxed)
            return true
        }
    }

    /// Starts a new process (a fresh image) in a slot near `slot` (every
    /// `stride`-th); false when out of slots.
    func spawn(_ cpu: CPU, near slot: Int? = nil, stride: Int = 1) -> Bool {
        let mm = newProcessMM(cpu)
        guard mm != 0 else { return false }
        if installProcess(mm, near: slot ?? cpu.pointee.random(below: config.maxProcesses), stride: stride) < 0 {
            mmPut(mm, cpu)
            return false
        }
        return true
    }

    /// spawn, returning the new process pinned (the caller's user added
    /// before it is installed, as fork's child): (mm, slot), or nil.
    func spawnPinned(_ cpu: CPU) -> (mm: UInt32, slot: Int)? {
        let mm = newProcessMM(cpu)
        guard mm != 0 else { return nil }
        spaces.users[Int(mm)].pointee.wrappingAdd(1, ordering: .relaxed)
        let at = installProcess(mm, near: cpu.pointee.random(below: config.maxProcesses))
        if at < 0 {
            mmPut(mm, cpu)
            mmPut(mm, cpu)
            return nil
        }
        return (mm, at)
    }

    var processCount: Int { processes.count }

    /// Processes in the share of slot `slot`.
    @inline(__always) func processCount(inShareOf slot: Int) -> Int {
        processes.shareCounts[slot % processes.shares].pointee.load(ordering: .relaxed)
    }

    /// exit: remove the process in `slot` if it still runs `mm`, and drop the
    /// table's reference. The caller's own pin keeps the mm until it lets go.
    func exitProcess(slot: Int, mm: UInt32, _ cpu: CPU) -> Bool {
        guard processes.entry(slot).pointee.compareExchange(expected: mm, desired: 0, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        processes.shareCounts[slot % processes.shares].pointee.wrappingSubtract(1, ordering: .relaxed)
        mmPut(mm, cpu)
        return true
    }

    /// exec: the process in `slot` gets a new image (new mm, new rmap context);
    /// the old mm loses the table's reference.
    func execProcess(slot: Int, mm: UInt32, _ cpu: CPU) -> Bool {
        let fresh = newProcessMM(cpu)
        guard fresh != 0 else { return false }
        guard processes.entry(slot).pointee.compareExchange(expected: mm, desired: fresh, ordering: .acquiringAndReleasing).exchanged else {
            mmPut(fresh, cpu)
            return false
        }
        mmPut(mm, cpu)
        return true
    }

    /// Exits every process (teardown at the end of a run).
    func exitAll(_ cpu: CPU) {
        for s in 0..<config.maxProcesses {
            let mm = processes.entry(s).pointee.load(ordering: .acquiring)
            if mm != 0 { _ = exitProcess(slot: s, mm: mm, cpu) }
        }
    }
}
