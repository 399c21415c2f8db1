import Synchronization
import URCUShim

/// mm life cycle, VMAs, the process table, and tearing an address space down.
///
/// An mm is reachable three ways: from the process table (which holds one
/// user reference), from a pinning worker (`mmUsers`, taken with
/// inc-not-zero inside an RCU read-side section so the slot cannot be
/// recycled between the load and the increment), and from its rmap context
/// (walkers, under RCU or the group lock). When the last user drops it, the
/// mm is torn down: state dying, PTEs zapped under the ptl, then it leaves
/// its rmap context and its slot is freed after a grace period.
extension Kernel {
    // MARK: VMAs (mmap lock held)

    @inline(__always) func vma(_ mm: UInt32, _ k: Int) -> UInt32 {
        vmaStart[Int(mm) * Kernel.vmaStride + k]
    }

    @inline(__always) func setVMA(_ mm: UInt32, _ k: Int, _ pos: UInt32) {
        vmaStart[Int(mm) * Kernel.vmaStride + k] = pos
    }

    /// A VMA-sized position not used by `mm`, chosen at random.
    func freeVMAPosition(_ mm: UInt32, _ cpu: CPU) -> UInt32 {
        while true {
            let pos = UInt32(cpu.pointee.random(below: vmaSlots))
            var clash = false
            for k in 0..<MachineConfig.maxVMAs where vma(mm, k) == pos { clash = true }
            if !clash { return pos }
        }
    }

    /// A random address inside one of the mm's VMAs, or nil if it has none.
    func randomAddress(_ mm: UInt32, _ cpu: CPU) -> UInt64? {
        let k0 = cpu.pointee.random(below: MachineConfig.maxVMAs)
        for d in 0..<MachineConfig.maxVMAs {
            let pos = vma(mm, (k0 + d) % MachineConfig.maxVMAs)
            if pos != Kernel.noVMA {
                return UInt64(pos) * UInt64(config.vmaPages) + UInt64(cpu.pointee.random(below: config.vmaPages))
            }
        }
        return nil
    }

    @inline(__always) func inVMA(_ mm: UInt32, _ vpn: UInt64) -> Bool {
        let pos = UInt32(truncatingIfNeeded: vpn / UInt64(config.vmaPages))
        for k in 0..<MachineConfig.maxVMAs where vma(mm, k) == pos { return true }
        return false
    }

    // MARK: Creation, pinning, release

    /// Allocates an mm slot with one user and no VMAs, not yet published
    /// (state still free); 0 when out of slots.
    func allocMM(_ cpu: CPU) -> UInt32 {
        let mm = cacheAlloc(.mms, cpu)
        guard mm != 0 else { return 0 }
        for k in 0..<MachineConfig.maxVMAs { setVMA(mm, k, Kernel.noVMA) }
        mmUsers[Int(mm)].pointee.store(1, ordering: .relaxed)
        return mm
    }

    /// A new process image: a fresh mm in a new rmap context and a new
    /// family, with `vmasPerProcess` empty VMAs. Returns 0 when out of slots.
    func newProcessMM(_ cpu: CPU) -> UInt32 {
        let mm = allocMM(cpu)
        guard mm != 0 else { return 0 }
        for k in 0..<config.vmasPerProcess { setVMA(mm, k, freeVMAPosition(mm, cpu)) }
        guard familyStart(mm, cpu) else {
            mmUsers[Int(mm)].pointee.store(0, ordering: .relaxed)
            mms.freeUnpublished(mm)
            return 0
        }
        mms.publish(mm)
        guard rmap.mmStarted(self, mm: mm, cpu: cpu) else {
            // Never reachable by anyone: undo without a grace period.
            familyLeave(mm, cpu)
            mmUsers[Int(mm)].pointee.store(0, ordering: .relaxed)
            mms.freeUnpublished(mm)
            return 0
        }
        return mm
    }

    /// mmget_not_zero. Only valid while the slot cannot be recycled: inside an
    /// RCU read-side section, or with another reference held.
    @inline(__always) func mmTryGet(_ mm: UInt32) -> Bool {
        if inject == .mmPinNoZeroCheck {
            // The planted bug: mmget where mmget_not_zero was needed. An mm
            // whose last user just left is pinned back to life.
            mmUsers[Int(mm)].pointee.add(1, ordering: .acquiring)
            return true
        }
        var u = mmUsers[Int(mm)].pointee.load(ordering: .relaxed)
        while u > 0 {
            let (done, now) = mmUsers[Int(mm)].pointee.compareExchange(expected: u, desired: u + 1, ordering: .acquiring)
            if done { return true }
            u = now
        }
        return false
    }

    /// mmput: drop a user; the last one tears the mm down.
    func mmPut(_ mm: UInt32, _ cpu: CPU) {
        let now = mmUsers[Int(mm)].pointee.subtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            // Exactly one teardown per life: a second "last user" (a pin that
            // resurrected a dying mm) must not zap, unlink or queue its free
            // again, or liburcu's callback queue is corrupted.
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
        mmapLock.writeLock(Int(mm))
        for k in 0..<MachineConfig.maxVMAs where vma(mm, k) != Kernel.noVMA {
            zap(mm, vmaPosition: vma(mm, k), cpu)
            setVMA(mm, k, Kernel.noVMA)
        }
        // free_pgtables: every leaf goes, empty or not (a non-empty one
        // holds PTEs outside every VMA: a leak).
        ptl.lock(Int(mm))
        for d in 0..<512 where pgd[Int(mm) * 512 + d] != 0 {
            let leaf = pgd[Int(mm) * 512 + d]
            if leafUsed[Int(leaf)] != 0 {
                report(.leak, mm: mm, cpu: cpu, "page-table leaf \(leaf) holds \(leafUsed[Int(leaf)]) PTEs outside every VMA at exit")
            }
            pgd[Int(mm) * 512 + d] = 0
            cacheFree(.leaves, leaf, cpu)
        }
        ptl.unlock(Int(mm))
        mmapLock.unlock(Int(mm))
        rmap.mmExited(self, mm: mm, cpu: cpu)
        familyLeave(mm, cpu)
        raceWindow(cpu)  // between unlinking and freeing
        if !retire(mms, mm, from: SlotState.dying, cpu) {
            report(.lifetime, mm: mm, cpu: cpu, "mm \(mm) retired twice (state \(SlotState.name(mms.load(mm))))")
        }
    }

    /// zap_pte_range over one VMA: drop every PTE's frame or swap reference.
    /// mmap lock held for writing.
    func zap(_ mm: UInt32, vmaPosition pos: UInt32, _ cpu: CPU) {
        let first = UInt64(pos) * UInt64(config.vmaPages)
        ptl.lock(Int(mm))
        for vpn in first..<(first + UInt64(config.vmaPages)) {
            let i = pteIndex(mm, vpn)
            guard i >= 0 else { continue }
            let pte = PTE(raw: ptes[i])
            if pte.isNone { continue }
            setPTE(mm, vpn, at: i, .none)
            if pte.isSwap {
                swapPut(pte.target, cpu)
            } else if validFrame(pte.target, mm: mm, vpn: vpn, cpu) {
                mapDec(pte.target, cpu)
                put(pte.target, cpu)
            }
        }
        ptl.unlock(Int(mm))
    }

    // MARK: Process table

    /// Pins the mm of a live process at table slot `slot` or after it,
    /// looking at every `stride`-th slot (a worker's own share of the
    /// table); nil when none of those slots holds a process.
    func pinProcess(near slot: Int, stride: Int = 1, _ cpu: CPU) -> (mm: UInt32, slot: Int)? {
        let n = config.maxProcesses
        rcuReadLock(cpu)
        defer { rcuReadUnlock(cpu) }
        // Slots r, r + stride, r + 2*stride, ... below n, from slot onwards.
        let r = slot % n % stride
        let count = (n - r + stride - 1) / stride
        let first = (slot % n) / stride
        for k in 0..<count {
            let s = r + ((first + k) % count) * stride
            let mm = procs[s].pointee.load(ordering: .acquiring)
            if mm != 0 && mms.contains(mm) && mmTryGet(mm) { return (mm, s) }
        }
        return nil
    }

    /// Places `mm` (holding one user for the table) in a free process slot,
    /// preferring slot `slot` and every `stride`-th one after it (a worker's
    /// share of the table), then any; returns the slot, or -1 when the table
    /// is full.
    func installProcess(_ mm: UInt32, near slot: Int, stride: Int = 1) -> Int {
        let n = config.maxProcesses
        for pass in (stride > 1 ? [stride, 1] : [1]) {
            var s = slot % n
            for _ in 0..<n {
                if procs[s].pointee.compareExchange(expected: 0, desired: mm, ordering: .releasing).exchanged {
                    shareCounts[s % config.shares].pointee.add(1, ordering: .relaxed)
                    return s
                }
                s += pass
                if s >= n { if pass > 1 { break }; s -= n }
            }
        }
        return -1
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

    /// Processes in the table (a sum of the per-share counts).
    var processCount: Int {
        var n = 0
        for i in 0..<config.shares { n += shareCounts[i].pointee.load(ordering: .relaxed) }
        return n
    }

    /// Processes in the share of slot `slot`.
    @inline(__always) func processCount(inShareOf slot: Int) -> Int {
        shareCounts[slot % config.shares].pointee.load(ordering: .relaxed)
    }

    /// exit: remove the process in `slot` if it still runs `mm`, and drop the
    /// table's reference. The caller's own pin keeps the mm until it lets go.
    func exitProcess(slot: Int, mm: UInt32, _ cpu: CPU) -> Bool {
        guard procs[slot].pointee.compareExchange(expected: mm, desired: 0, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        shareCounts[slot % config.shares].pointee.subtract(1, ordering: .relaxed)
        mmPut(mm, cpu)
        return true
    }

    /// exec: the process in `slot` gets a new image (new mm, new rmap context);
    /// the old mm loses the table's reference.
    func execProcess(slot: Int, mm: UInt32, _ cpu: CPU) -> Bool {
        let fresh = newProcessMM(cpu)
        guard fresh != 0 else { return false }
        guard procs[slot].pointee.compareExchange(expected: mm, desired: fresh, ordering: .acquiringAndReleasing).exchanged else {
            mmPut(fresh, cpu)
            return false
        }
        mmPut(mm, cpu)
        return true
    }

    /// Exits every process (teardown at the end of a run).
    func exitAll(_ cpu: CPU) {
        for s in 0..<config.maxProcesses {
            let mm = procs[s].pointee.load(ordering: .acquiring)
            if mm != 0 { _ = exitProcess(slot: s, mm: mm, cpu) }
        }
    }
}
