import Synchronization
import URCUShim
#if canImport(Glibc)
import Glibc
#endif

/// Life-cycle states of slab slots (mms, anongroups).
///
///     mm:    free --alloc--> live --last user--> dying --unlinked--> rcuPending
///     group: free --alloc--> live --last reference------------------> rcuPending
///     both:  rcuPending --grace period (call_rcu)--> free
///
/// A walker that reaches a slot under RCU may see any state but `free`;
/// seeing `free` is a lifetime violation.
enum SlotState {
    static let free: UInt32 = 0
    static let live: UInt32 = 1
    static let dying: UInt32 = 2
    static let rcuPending: UInt32 = 3
}

/// What an RCU callback needs to return a slot to its pool.
struct SlotFreeTarget {
    let pool: HandlePool
    let states: UnsafeMutablePointer<Atomic<UInt32>>
    /// Bumped with a plain write when the slot is freed, and read with a
    /// plain read by every walker that visits the slot. The values mean
    /// nothing; the accesses are what matter: a free that does not wait for
    /// the walkers is a data race ThreadSanitizer reports, while the grace
    /// period's happens-before edges (URCUShim) make the correct free clean.
    /// It plays the part of KASAN's poisoning of freed memory.
    let generation: UnsafeMutablePointer<UInt64>
}

/// Runs on liburcu's call_rcu thread after a grace period: the slot is
/// unreachable by every reader that could have seen it, so it may be reused.
let freeSlotAfterGracePeriod: crm_rcu_fn = { owner, arg in
    let target = owner!.assumingMemoryBound(to: SlotFreeTarget.self)
    target.pointee.generation[Int(arg)] &+= 1
    target.pointee.states[Int(arg)].store(SlotState.free, ordering: .releasing)
    target.pointee.pool.free(UInt32(truncatingIfNeeded: arg))
}

/// The simulated machine's state: every table the operations share.
///
/// A struct of unsafe pointers into slabs allocated once: copying it is
/// free of ARC, so each worker holds its own copy and operations are
/// methods on it. Handles are 1-based UInt32 (0 is "none") and index
/// the slabs directly.
///
/// Ownership: `Machine` creates it and calls `destroy()` after every worker
/// stopped and `RCU.barrier()` ran. Nothing else frees its memory.
struct Kernel<R: RmapScheme>: @unchecked Sendable {
    let config: MachineConfig
    let inject: Injection
    let checks: CheckLevel
    let rmap: R
    unowned(unsafe) let log: ViolationLog

    // Frames (struct page) and their allocator.
    let frames: UnsafeMutablePointer<Frame>
    let framePool: HandlePool
    let clockHand: UnsafeMutablePointer<Atomic<UInt32>>

    // Swap area: content, number of swap entries, and the vpn swapped out from.
    let swapContent: UnsafeMutablePointer<Atomic<UInt64>>
    let swapCount: UnsafeMutablePointer<Atomic<Int32>>
    let swapVpn: UnsafeMutablePointer<Atomic<UInt64>>
    let swapPool: HandlePool

    // mms.
    let mmPool: HandlePool
    let mmState: UnsafeMutablePointer<Atomic<UInt32>>
    /// Users of each mm; pinned and unpinned around every operation by every
    /// worker, so each count has a cache line of its own.
    let mmUsers: PaddedArray<Atomic<Int32>>
    /// The page-table lock of each mm (the 2004 page_table_lock).
    let ptl: MutexArray
    /// The mmap lock of each mm: faults read, fork/mremap/munmap write.
    let mmapLock: RWLockArray
    /// Page directory: 512 leaf handles per mm. Under ptl.
    let pgd: UnsafeMutablePointer<UInt32>
    /// VMA start positions (in VMA-sized units), `noVMA` when unused. Under mmapLock.
    let vmaStart: UnsafeMutablePointer<UInt32>
    let mmRCU: UnsafeMutablePointer<crm_rcu_work>
    /// See SlotFreeTarget.generation.
    let mmGeneration: UnsafeMutablePointer<UInt64>
    let mmFreeTarget: UnsafeMutablePointer<SlotFreeTarget>

    // Page-table leaves: 512 PTEs, 512 expected content words, a use count.
    let leafPool: HandlePool
    let ptes: UnsafeMutablePointer<UInt64>
    let expected: UnsafeMutablePointer<UInt64>
    let leafUsed: UnsafeMutablePointer<Int32>

    // Process table: mm handle per process, published with release.
    let procs: UnsafeMutablePointer<Atomic<UInt32>>
    let liveProcs: UnsafeMutablePointer<Atomic<Int>>

    static var noVMA: UInt32 { UInt32.max }
    var leafSize: Int { MachineConfig.ptesPerLeaf }
    var vmaSlots: Int { MachineConfig.vpnLimit / config.vmaPages }

    init(config: MachineConfig, log: ViolationLog) {
        self.config = config
        inject = config.injection
        checks = config.checks
        self.log = log
        rmap = R(config: config)

        let nf = config.frames
        frames = .allocate(capacity: nf + 1)
        for i in 0...nf { (frames + i).initialize(to: Frame()) }
        framePool = HandlePool(capacity: nf)
        clockHand = .allocate(capacity: 1)
        clockHand.initialize(to: Atomic(1))

        let ns = config.swapSlots
        swapContent = .allocate(capacity: ns + 1)
        swapCount = .allocate(capacity: ns + 1)
        swapVpn = .allocate(capacity: ns + 1)
        for i in 0...ns {
            (swapContent + i).initialize(to: Atomic(Frame.poison))
            (swapCount + i).initialize(to: Atomic(0))
            (swapVpn + i).initialize(to: Atomic(0))
        }
        swapPool = HandlePool(capacity: ns)

        let nm = config.mmSlots
        mmPool = HandlePool(capacity: nm)
        mmState = .allocate(capacity: nm + 1)
        mmUsers = PaddedArray(count: nm + 1)
        for i in 0...nm {
            (mmState + i).initialize(to: Atomic(SlotState.free))
            mmUsers[i].initialize(to: Atomic(0))
        }
        ptl = MutexArray(count: nm + 1)
        mmapLock = RWLockArray(count: nm + 1)
        pgd = .allocate(capacity: (nm + 1) * 512)
        pgd.initialize(repeating: 0, count: (nm + 1) * 512)
        vmaStart = .allocate(capacity: (nm + 1) * MachineConfig.maxVMAs)
        vmaStart.initialize(repeating: Kernel.noVMA, count: (nm + 1) * MachineConfig.maxVMAs)
        mmRCU = .allocate(capacity: nm + 1)
        mmRCU.initialize(repeating: crm_rcu_work(), count: nm + 1)
        mmGeneration = .allocate(capacity: nm + 1)
        mmGeneration.initialize(repeating: 0, count: nm + 1)
        mmFreeTarget = .allocate(capacity: 1)
        mmFreeTarget.initialize(to: SlotFreeTarget(pool: mmPool, states: mmState, generation: mmGeneration))

        let nl = config.leafCount
        leafPool = HandlePool(capacity: nl)
        ptes = .allocate(capacity: (nl + 1) * MachineConfig.ptesPerLeaf)
        ptes.initialize(repeating: 0, count: (nl + 1) * MachineConfig.ptesPerLeaf)
        expected = .allocate(capacity: (nl + 1) * MachineConfig.ptesPerLeaf)
        expected.initialize(repeating: 0, count: (nl + 1) * MachineConfig.ptesPerLeaf)
        leafUsed = .allocate(capacity: nl + 1)
        leafUsed.initialize(repeating: 0, count: nl + 1)

        procs = .allocate(capacity: config.maxProcesses)
        for i in 0..<config.maxProcesses { (procs + i).initialize(to: Atomic(0)) }
        liveProcs = .allocate(capacity: 1)
        liveProcs.initialize(to: Atomic(0))
        frames[0].mapcount.store(0x5a5a_1234, ordering: .relaxed)
        precondition((UnsafeMutableRawPointer(frames) + Frame.mapcountOffset).load(as: Int32.self) == 0x5a5a_1234,
                     "Frame layout changed: update Frame.mapcountOffset")
        frames[0].mapcount.store(0, ordering: .relaxed)
    }

    func destroy() {
        rmap.destroy()
        frames.deinitialize(count: config.frames + 1); frames.deallocate()
        framePool.destroy()
        clockHand.deinitialize(count: 1); clockHand.deallocate()
        swapContent.deinitialize(count: config.swapSlots + 1); swapContent.deallocate()
        swapCount.deinitialize(count: config.swapSlots + 1); swapCount.deallocate()
        swapVpn.deinitialize(count: config.swapSlots + 1); swapVpn.deallocate()
        swapPool.destroy()
        mmPool.destroy()
        mmState.deinitialize(count: config.mmSlots + 1); mmState.deallocate()
        for i in 0...config.mmSlots { mmUsers[i].deinitialize(count: 1) }
        mmUsers.deallocate()
        ptl.destroy()
        mmapLock.destroy()
        pgd.deallocate()
        vmaStart.deallocate()
        mmRCU.deallocate()
        mmFreeTarget.deinitialize(count: 1); mmFreeTarget.deallocate()
        mmGeneration.deallocate()
        leafPool.destroy()
        ptes.deallocate()
        expected.deallocate()
        leafUsed.deallocate()
        procs.deinitialize(count: config.maxProcesses); procs.deallocate()
        liveProcs.deinitialize(count: 1); liveProcs.deallocate()
    }

    // MARK: Reporting and perturbation

    func report(_ kind: ViolationKind, frame: UInt32 = 0, mm: UInt32 = 0, vpn: UInt64 = 0,
                cpu: CPU?, _ detail: @autoclosure () -> String) {
        log.record(Violation(kind: kind, frame: frame, mm: mm, vpn: vpn,
                             op: cpu?.pointee.currentOp, cpu: cpu?.pointee.id ?? -1, detail: detail()))
    }

    /// A race window: with `perturb` on, sometimes yield or spin here so that
    /// rare interleavings happen often (like KCSAN's delays).
    @inline(__always) func raceWindow(_ cpu: CPU) {
        guard config.perturb else { return }
        let r = cpu.pointee.random() >> 59
        if r == 0 {
            sched_yield()
        } else if r == 1 {
            var x = r
            for _ in 0..<Int(200 + (cpu.pointee.random() & 511)) { x = x &* 31 &+ 7 }
            if x == 42 { sched_yield() }  // keeps the spin from being optimized out
        }
    }

    /// A long reader: with `perturb` on, about one rmap walk in 4096 sleeps
    /// 1-3 ms inside its read-side section, as rcutorture's readers
    /// sometimes do. Harmless to a correct design (grace periods just wait);
    /// it opens the window in which a free that does not wait for readers
    /// lands under the walker.
    @inline(__always) func longReaderDelay(_ cpu: CPU) {
        guard config.perturb else { return }
        let r = cpu.pointee.random()
        if r & 4095 == 0 { usleep(useconds_t(1000 + (r >> 12) % 2000)) }
    }

    // MARK: Frames: counts, page lock, allocation

    @inline(__always) func refInc(_ f: UInt32) { frames[Int(f)].refcount.add(1, ordering: .relaxed) }

    /// get_page_unless_zero: pin a frame that may be freed concurrently.
    @inline(__always) func tryPin(_ f: UInt32) -> Bool {
        var c = frames[Int(f)].refcount.load(ordering: .relaxed)
        while c > 0 {
            let (done, now) = frames[Int(f)].refcount.compareExchange(
                expected: c, desired: c + 1, ordering: .acquiring)
            if done { return true }
            c = now
        }
        return false
    }

    /// The injected bug's view of a mapcount: a plain Int32 over the
    /// atomic's storage, so that ThreadSanitizer sees the unsynchronized
    /// accesses for what they are. The offset is checked in `init`.
    @inline(__always) func plainMapcount(_ f: UInt32) -> UnsafeMutablePointer<Int32> {
        (UnsafeMutableRawPointer(frames + Int(f)) + Frame.mapcountOffset).assumingMemoryBound(to: Int32.self)
    }

    @inline(__always) func mapInc(_ f: UInt32, _ cpu: CPU) {
        if inject == .racyMapcount {
            let v = plainMapcount(f).pointee
            raceWindow(cpu)
            plainMapcount(f).pointee = v + 1
        } else {
            frames[Int(f)].mapcount.add(1, ordering: .relaxed)
        }
    }

    @inline(__always) func mapDec(_ f: UInt32, _ cpu: CPU) {
        let now: Int32
        if inject == .racyMapcount {
            let v = plainMapcount(f).pointee
            raceWindow(cpu)
            now = v - 1
            plainMapcount(f).pointee = now
        } else {
            now = frames[Int(f)].mapcount.subtract(1, ordering: .relaxed).newValue
        }
        if now < 0 && checks != .off {
            report(.mapcount, frame: f, cpu: cpu, "mapcount went negative (\(now))")
        }
    }

    /// put_page: drop a pin or a mapping's reference; frees on the last one.
    @inline(__always) func put(_ f: UInt32, _ cpu: CPU) {
        let now = frames[Int(f)].refcount.subtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            freePage(f, cpu)
        } else if now < 0 {
            report(.refcount, frame: f, cpu: cpu, "refcount went negative (\(now))")
        }
    }

    /// The last reference is gone: detach from the rmap, poison, free.
    func freePage(_ f: UInt32, _ cpu: CPU) {
        let fr = frames + Int(f)
        let mc = fr.pointee.mapcount.load(ordering: .relaxed)
        if mc != 0 {
            report(.freedWhileMapped, frame: f, cpu: cpu, "frame freed with mapcount \(mc)")
        }
        if fr.pointee.flags.load(ordering: .relaxed) & FrameFlags.anon != 0 {
            rmap.pageFreed(self, frame: f)
        }
        fr.pointee.content.store(Frame.poison, ordering: .relaxed)
        fr.pointee.index.store(Frame.poison, ordering: .relaxed)
        fr.pointee.mapping.store(0, ordering: .relaxed)
        fr.pointee.flags.store(FrameFlags.free, ordering: .releasing)
        cpu.pointee.count(.pagesFreed)
        let mag = cpu.pointee.magazine
        if cpu.pointee.magazineCount == CPUState.magazineSize {
            let half = CPUState.magazineSize / 2
            framePool.free(batch: half, from: mag + half)
            cpu.pointee.magazineCount = half
        }
        mag[cpu.pointee.magazineCount] = f
        cpu.pointee.magazineCount += 1
    }

    /// Allocates a frame, running direct reclaim when memory is short.
    /// Never call with a ptl held: reclaim takes ptls. Returns 0 when out of
    /// memory. The frame comes back with refcount 1 and nothing else set.
    func allocFrame(_ cpu: CPU) -> UInt32 {
        if cpu.pointee.magazineCount == 0 {
            var attempt = 0
            while true {
                let n = framePool.alloc(batch: CPUState.magazineSize / 2, into: cpu.pointee.magazine)
                if n > 0 { cpu.pointee.magazineCount = n; break }
                if attempt == 4 { return 0 }
                attempt += 1
                cpu.pointee.count(.directReclaim)
                reclaim(cpu, scan: 256, target: 16)
                if cpu.pointee.magazineCount > 0 { break }  // reclaim freed into our magazine
            }
        }
        cpu.pointee.magazineCount -= 1
        let f = cpu.pointee.magazine[cpu.pointee.magazineCount]
        let fr = frames + Int(f)
        if checks != .off {
            let fl = fr.pointee.flags.load(ordering: .acquiring)
            let rc = fr.pointee.refcount.load(ordering: .relaxed)
            let mc = fr.pointee.mapcount.load(ordering: .relaxed)
            let ct = fr.pointee.content.load(ordering: .relaxed)
            if fl != FrameFlags.free || rc != 0 || mc != 0 || ct != Frame.poison {
                report(.freedWhileMapped, frame: f, cpu: cpu,
                       "free frame in use: flags=\(fl) refcount=\(rc) mapcount=\(mc) poisoned=\(ct == Frame.poison)")
            }
        }
        fr.pointee.flags.store(0, ordering: .relaxed)
        fr.pointee.refcount.store(1, ordering: .relaxed)
        return f
    }

    /// Returns the CPU's cached frames to the global pool (before the CPU
    /// goes away, and before a leak check).
    func drain(_ cpu: CPU) {
        if cpu.pointee.magazineCount > 0 {
            framePool.free(batch: cpu.pointee.magazineCount, from: cpu.pointee.magazine)
            cpu.pointee.magazineCount = 0
        }
    }

    @inline(__always) func tryLockPage(_ f: UInt32) -> Bool {
        frames[Int(f)].flags.bitwiseOr(FrameFlags.locked, ordering: .acquiring).oldValue & FrameFlags.locked == 0
    }

    func lockPage(_ f: UInt32) {
        while !tryLockPage(f) { cpuRelax() }
    }

    @inline(__always) func unlockPage(_ f: UInt32) {
        frames[Int(f)].flags.bitwiseAnd(~FrameFlags.locked, ordering: .releasing)
    }

    // MARK: Swap slots

    func swapPut(_ s: UInt32, _ cpu: CPU) {
        let now = swapCount[Int(s)].subtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            swapContent[Int(s)].store(Frame.poison, ordering: .relaxed)
            swapPool.free(s)
        } else if now < 0 {
            report(.swapCount, cpu: cpu, "swap slot \(s) count went negative")
        }
    }

    // MARK: Page tables (caller holds the mm's ptl)

    /// Index into `ptes`/`expected` of (mm, vpn), or -1 when no leaf exists.
    @inline(__always) func pteIndex(_ mm: UInt32, _ vpn: UInt64) -> Int {
        let leaf = pgd[Int(mm) * 512 + Int(vpn >> 9)]
        return leaf == 0 ? -1 : Int(leaf) * leafSize + Int(vpn & 511)
    }

    /// Like pteIndex, allocating the leaf if needed. -1 when out of leaves.
    func pteIndexAlloc(_ mm: UInt32, _ vpn: UInt64) -> Int {
        let slot = Int(mm) * 512 + Int(vpn >> 9)
        var leaf = pgd[slot]
        if leaf == 0 {
            leaf = leafPool.alloc()
            if leaf == 0 { return -1 }
            leafUsed[Int(leaf)] = 0
            pgd[slot] = leaf
        }
        return Int(leaf) * leafSize + Int(vpn & 511)
    }

    /// Sets a PTE, keeping the leaf's use count; frees a leaf that empties.
    @inline(__always) func setPTE(_ mm: UInt32, _ vpn: UInt64, at i: Int, _ new: PTE) {
        let old = PTE(raw: ptes[i])
        ptes[i] = new.raw
        if old.isNone != new.isNone {
            let leaf = i / leafSize
            leafUsed[leaf] += new.isNone ? -1 : 1
            if leafUsed[leaf] == 0 {
                pgd[Int(mm) * 512 + Int(vpn >> 9)] = 0
                leafPool.free(UInt32(leaf))
            }
        }
    }

    // MARK: Cheap checks on access (ptl held, PTE maps `f`)

    @inline(__always) func checkMapped(_ f: UInt32, mm: UInt32, vpn: UInt64, _ cpu: CPU) {
        guard checks != .off else { return }
        let fr = frames + Int(f)
        if fr.pointee.flags.load(ordering: .relaxed) & FrameFlags.free != 0 {
            report(.freedWhileMapped, frame: f, mm: mm, vpn: vpn, cpu: cpu, "PTE maps a free frame")
            return
        }
        if !rmap.locationOK(self, frame: f, mm: mm, vpn: vpn) {
            report(.location, frame: f, mm: mm, vpn: vpn, cpu: cpu,
                   "page.mapping/index (\(fr.pointee.mapping.load(ordering: .relaxed)), 0x\(String(fr.pointee.index.load(ordering: .relaxed), radix: 16))) do not name this PTE")
        }
        if fr.pointee.mapcount.load(ordering: .relaxed) < 1 {
            report(.mapcount, frame: f, mm: mm, vpn: vpn, cpu: cpu, "mapped page has mapcount < 1")
        }
    }

    @inline(__always) func checkContent(_ value: UInt64, expected e: UInt64, frame f: UInt32,
                                        mm: UInt32, vpn: UInt64, _ cpu: CPU) {
        if checks == .full && value != e {
            report(.content, frame: f, mm: mm, vpn: vpn, cpu: cpu,
                   "read 0x\(String(value, radix: 16)), expected 0x\(String(e, radix: 16))")
        }
    }

    /// A fresh content word: unique per CPU and write.
    @inline(__always) func nextValue(_ cpu: CPU) -> UInt64 {
        cpu.pointee.writeSeq &+= 1
        return UInt64(cpu.pointee.id + 1) << 40 | (cpu.pointee.writeSeq & 0xFF_FFFF_FFFF)
    }
}
