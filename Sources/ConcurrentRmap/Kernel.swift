import Synchronization
import URCUShim
#if canImport(Glibc)
import Glibc
#endif

/// Everything a `Kernel` reaches, allocated once: see `Kernel`.
struct KernelState<R: RmapScheme> {
    let config: MachineConfig
    let inject: Injection
    let checks: CheckLevel
    let rmap: R
    unowned(unsafe) let log: ViolationLog

    // Frames (struct page) and their allocator.
    let frames: UnsafeMutablePointer<Frame>
    /// Free frames per memory node, and each node's reclaim clock.
    let frameNodes: FrameNodes

    // Swap area: content, number of swap entries, and the vpn swapped out from.
    let swapContent: UnsafeMutablePointer<Atomic<UInt64>>
    let swapCount: UnsafeMutablePointer<Atomic<Int32>>
    let swapVpn: UnsafeMutablePointer<Atomic<UInt64>>
    let swapPool: HandlePool

    // mms: an RCU slab (state, generation, deferred free) plus per-mm fields.
    let mms: RCUSlab
    /// Users of each mm; pinned and unpinned around every operation by every
    /// worker, so each count has a cache line of its own.
    let mmUsers: PaddedArray<Atomic<Int32>>
    /// The page-table lock of each mm (the 2004 page_table_lock).
    let ptl: MutexArray
    /// The mmap lock of each mm: faults read, fork/mremap/munmap write.
    let mmapLock: RWLockArray
    /// Page directory: 512 leaf handles per mm. Under ptl.
    let pgd: UnsafeMutablePointer<UInt32>
    /// VMA start positions (in VMA-sized units), `noVMA` when unused. Under
    /// mmapLock. One 128-byte block per mm (`vmaStride` entries): every fault
    /// reads its mm's VMAs while mremap and exec of other mms rewrite theirs.
    let vmaStart: UnsafeMutablePointer<UInt32>

    // Page-table leaves: 512 PTEs, 512 expected content words, a use count.
    let leafPool: HandlePool
    let ptes: UnsafeMutablePointer<UInt64>
    let expected: UnsafeMutablePointer<UInt64>
    let leafUsed: UnsafeMutablePointer<Int32>

    // Process table: mm handle per process, published with release.
    /// Padded: pinProcess reads entries that fork, exit and exec of other
    /// processes write.
    let procs: PaddedArray<Atomic<UInt32>>
    /// Processes per share of the table (slot modulo `config.shares`), each
    /// on lines of its own: a worker forks and exits in its own share, so a
    /// single count would be written by every CPU on every fork and exit.
    let shareCounts: PaddedArray<Atomic<Int>>
    /// Fork families: mms related by fork without exec (the workload bounds
    /// their size). `mmFamily[mm]` is fixed for the mm's life.
    let families: Families

    /// Per-CPU caches in front of the frame, leaf, swap, mm, group and
    /// family pools.
    let caches: CPUCaches
    /// The liburcu flavor this machine's callbacks are queued on.
    let flavor: RCUFlavor


    init(config: MachineConfig, log: ViolationLog) {
        self.config = config
        inject = config.injection
        checks = config.checks
        self.log = log
        rmap = R(config: config, log: log)

        let nf = config.frames
        frames = CacheLine.allocate(Frame.self, count: nf + 1)
        for i in 0...nf { (frames + i).initialize(to: Frame()) }
        frameNodes = FrameNodes(frames: nf, nodes: config.nodes)

        let ns = config.swapSlots
        swapContent = .allocate(capacity: ns + 1)
        swapCount = .allocate(capacity: ns + 1)
        swapVpn = .allocate(capacity: ns + 1)
        for i in 0...ns {
            (swapContent + i).initialize(to: Atomic(Frame.poison))
            (swapCount + i).initialize(to: Atomic(0))
            (swapVpn + i).initialize(to: Atomic(0))
        }
        swapPool = HandlePool(capacity: ns, trackOwnership: true)

        let nm = config.mmSlots
        mms = RCUSlab(kind: .mms, capacity: nm, log: log)
        mmUsers = PaddedArray(count: nm + 1)
        for i in 0...nm { mmUsers[i].initialize(to: Atomic(0)) }
        ptl = MutexArray(count: nm + 1)
        mmapLock = RWLockArray(count: nm + 1)
        pgd = .allocate(capacity: (nm + 1) * 512)
        pgd.initialize(repeating: 0, count: (nm + 1) * 512)
        vmaStart = CacheLine.allocate(UInt32.self, count: (nm + 1) * Kernel<R>.vmaStride)
        vmaStart.initialize(repeating: Kernel<R>.noVMA, count: (nm + 1) * Kernel<R>.vmaStride)

        let nl = config.leafCount
        leafPool = HandlePool(capacity: nl, trackOwnership: true)
        ptes = .allocate(capacity: (nl + 1) * MachineConfig.ptesPerLeaf)
        ptes.initialize(repeating: 0, count: (nl + 1) * MachineConfig.ptesPerLeaf)
        expected = .allocate(capacity: (nl + 1) * MachineConfig.ptesPerLeaf)
        expected.initialize(repeating: 0, count: (nl + 1) * MachineConfig.ptesPerLeaf)
        leafUsed = .allocate(capacity: nl + 1)
        leafUsed.initialize(repeating: 0, count: nl + 1)

        procs = PaddedArray(count: config.maxProcesses)
        for i in 0..<config.maxProcesses { procs[i].initialize(to: Atomic(0)) }
        shareCounts = PaddedArray(count: config.shares)
        for i in 0..<config.shares { shareCounts[i].initialize(to: Atomic(0)) }
        families = Families(mmSlots: nm)
        caches = CPUCaches(slots: config.maxCPUs, frameCache: config.frameCacheSize)
        flavor = RCU.flavor
        precondition(MemoryLayout<Frame>.stride == 64, "a frame is one cache line")
        frames[0].mapcount.store(0x5a5a_1234, ordering: .relaxed)
        precondition((UnsafeMutableRawPointer(frames) + Frame.mapcountOffset).load(as: Int32.self) == 0x5a5a_1234,
                     "Frame layout changed: update Frame.mapcountOffset")
        frames[0].mapcount.store(0, ordering: .relaxed)
    }

}

/// The simulated machine's state: every table the operations share.
///
/// One pointer to the tables (`KernelState`), which are allocated once:
/// copying a Kernel is free of ARC and costs one word, so each worker holds
/// its own copy and operations are methods on it. (A kernel that held its
/// tables inline was a 1 KB struct, and Swift copied it into closure
/// contexts several times per operation.) Handles are 1-based UInt32 (0 is
/// "none") and index the slabs directly; each table is reached through a
/// forwarding property that loads just that field.
///
/// Ownership: `Machine` creates it and calls `destroy()` after every worker
/// stopped and `RCU.barrier()` ran. Nothing else frees its memory.
struct Kernel<R: RmapScheme>: @unchecked Sendable {
    let s: UnsafeMutablePointer<KernelState<R>>

    @inline(__always) var config: MachineConfig { s.pointee.config }
    @inline(__always) var inject: Injection { s.pointee.inject }
    @inline(__always) var checks: CheckLevel { s.pointee.checks }
    @inline(__always) var rmap: R { s.pointee.rmap }
    @inline(__always) var log: ViolationLog { s.pointee.log }
    @inline(__always) var frames: UnsafeMutablePointer<Frame> { s.pointee.frames }
    @inline(__always) var frameNodes: FrameNodes { s.pointee.frameNodes }
    @inline(__always) var swapContent: UnsafeMutablePointer<Atomic<UInt64>> { s.pointee.swapContent }
    @inline(__always) var swapCount: UnsafeMutablePointer<Atomic<Int32>> { s.pointee.swapCount }
    @inline(__always) var swapVpn: UnsafeMutablePointer<Atomic<UInt64>> { s.pointee.swapVpn }
    @inline(__always) var swapPool: HandlePool { s.pointee.swapPool }
    @inline(__always) var mms: RCUSlab { s.pointee.mms }
    @inline(__always) var mmUsers: PaddedArray<Atomic<Int32>> { s.pointee.mmUsers }
    @inline(__always) var ptl: MutexArray { s.pointee.ptl }
    @inline(__always) var mmapLock: RWLockArray { s.pointee.mmapLock }
    @inline(__always) var pgd: UnsafeMutablePointer<UInt32> { s.pointee.pgd }
    @inline(__always) var vmaStart: UnsafeMutablePointer<UInt32> { s.pointee.vmaStart }
    @inline(__always) var leafPool: HandlePool { s.pointee.leafPool }
    @inline(__always) var ptes: UnsafeMutablePointer<UInt64> { s.pointee.ptes }
    @inline(__always) var expected: UnsafeMutablePointer<UInt64> { s.pointee.expected }
    @inline(__always) var leafUsed: UnsafeMutablePointer<Int32> { s.pointee.leafUsed }
    @inline(__always) var procs: PaddedArray<Atomic<UInt32>> { s.pointee.procs }
    @inline(__always) var shareCounts: PaddedArray<Atomic<Int>> { s.pointee.shareCounts }
    @inline(__always) var families: Families { s.pointee.families }
    @inline(__always) var caches: CPUCaches { s.pointee.caches }
    @inline(__always) var flavor: RCUFlavor { s.pointee.flavor }

    static var vmaStride: Int { CacheLine.size / MemoryLayout<UInt32>.stride }
    static var noVMA: UInt32 { UInt32.max }
    var leafSize: Int { MachineConfig.ptesPerLeaf }
    var vmaSlots: Int { MachineConfig.vpnLimit / config.vmaPages }

    init(config: MachineConfig, log: ViolationLog) {
        s = .allocate(capacity: 1)
        s.initialize(to: KernelState(config: config, log: log))
    }

    func destroy() {
        rmap.destroy()
        frames.deinitialize(count: config.frames + 1); frames.deallocate()
        frameNodes.destroy()
        swapContent.deinitialize(count: config.swapSlots + 1); swapContent.deallocate()
        swapCount.deinitialize(count: config.swapSlots + 1); swapCount.deallocate()
        swapVpn.deinitialize(count: config.swapSlots + 1); swapVpn.deallocate()
        swapPool.destroy()
        mms.destroy()
        for i in 0...config.mmSlots { mmUsers[i].deinitialize(count: 1) }
        mmUsers.deallocate()
        ptl.destroy()
        mmapLock.destroy()
        pgd.deallocate()
        vmaStart.deallocate()
        leafPool.destroy()
        ptes.deallocate()
        expected.deallocate()
        leafUsed.deallocate()
        for i in 0..<config.maxProcesses { procs[i].deinitialize(count: 1) }
        procs.deallocate()
        for i in 0..<config.shares { shareCounts[i].deinitialize(count: 1) }
        shareCounts.deallocate()
        families.destroy()
        caches.destroy()
        s.deinitialize(count: 1)
        s.deallocate()
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

    /// The last reference is gone: detach from the rmap, poison, free into
    /// this CPU's cache.
    func freePage(_ f: UInt32, _ cpu: CPU) {
        let fr = frames + Int(f)
        let fl = fr.pointee.flags.load(ordering: .relaxed)
        if fl & FrameFlags.free != 0 {
            // Refuse: pushing it again would hand one frame to two owners.
            report(.freedWhileMapped, frame: f, cpu: cpu, "frame freed twice")
            return
        }
        let mc = fr.pointee.mapcount.load(ordering: .relaxed)
        if mc != 0 {
            report(.freedWhileMapped, frame: f, cpu: cpu, "frame freed with mapcount \(mc)")
        }
        if fl & FrameFlags.anon != 0 {
            rmap.pageFreed(self, frame: f, cpu: cpu)
        }
        fr.pointee.content.store(Frame.poison, ordering: .relaxed)
        fr.pointee.index.store(Frame.poison, ordering: .relaxed)
        fr.pointee.mapping.store(0, ordering: .relaxed)
        fr.pointee.flags.store(FrameFlags.free, ordering: .releasing)
        cpu.pointee.count(.pagesFreed)
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        let ok = caches.push(s, .frames, f, spillTo: frameNodes)
        caches.unlock(s)
        if !ok { report(.freedWhileMapped, frame: f, cpu: cpu, "frame pool overflow: a frame was freed twice") }
    }

    /// Allocates a frame, running direct reclaim when memory is short.
    /// Never call with a ptl held: reclaim takes ptls. Returns 0 when out of
    /// memory. The frame comes back with refcount 1 and nothing else set.
    ///
    /// Order of the hand-out: `flags = 0` first, then `refcount = 1` with
    /// release. A scanner that read this frame's flags in its previous life
    /// pins it with `tryPin`, whose compare-exchange acquires: once its pin
    /// succeeds it sees flags already 0, so the page-lock bit its trylock
    /// then sets cannot be erased by our store (on a weakly ordered CPU a
    /// relaxed pair could land in the other order).
    func allocFrame(_ cpu: CPU) -> UInt32 {
        let s = cpu.pointee.cacheSlot
        let home = cpu.pointee.node % frameNodes.count
        var attempt = 0
        var f: UInt32 = 0
        while true {
            caches.lock(s)
            f = caches.pop(s, .frames, of: frameNodes.pool(home))
            if f == 0 {
                // Refill from the home node first, then from the others.
                for k in 0..<frameNodes.count {
                    let n = (home + k) % frameNodes.count
                    if caches.refill(s, .frames, from: frameNodes.pool(n)) > 0 {
                        f = caches.pop(s, .frames, of: frameNodes.pool(n))
                        break
                    }
                }
            }
            caches.unlock(s)
            if f != 0 { break }
            // Free frames may be parked in other CPUs' caches: drain them
            // before reclaiming (Linux drains the pcp lists likewise).
            if caches.drainOthers(.frames, except: s, to: frameNodes) > 0 { continue }
            if attempt == 4 { return 0 }
            attempt += 1
            cpu.pointee.count(.directReclaim)
            // The home node first; later attempts go round the others.
            reclaim(cpu, node: (home + attempt - 1) % frameNodes.count, scan: 256, target: 16)
        }
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
        fr.pointee.refcount.store(1, ordering: .releasing)
        return f
    }

    /// Returns everything the CPU has cached to the global pools (before the
    /// CPU goes away, and before a leak check).
    func drain(_ cpu: CPU) {
        flushRetired(cpu)
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        caches.spillAll(s, .frames, to: frameNodes)
        for kind in CacheKind.allCases where kind != .frames { caches.spillAll(s, kind, to: pool(for: kind)) }
        caches.unlock(s)
    }

    /// Free frames: in the node pools or parked in a CPU's cache.
    var freeFrames: Int { frameNodes.available + caches.cachedCount(.frames) }

    /// Whether fewer than `n` frames of node `node` are free (kswapd's
    /// check). Decided from the node's pool alone when the caches cannot
    /// change the answer, so the frequent check does not read every CPU's
    /// cache line (each written by its owner on every allocation); when they
    /// can, every cached frame is counted as the node's (an over-count when
    /// there are several nodes, which only makes kswapd lazier).
    @inline(__always) func freeFramesBelow(_ n: Int, node: Int) -> Bool {
        let pool = frameNodes.pool(node % frameNodes.count).available
        if pool >= n { return false }
        if pool + caches.mostCached(.frames) < n { return true }
        return pool + caches.cachedCount(.frames) < n
    }

    // MARK: Per-CPU caches of the other pools

    @inline(__always) func pool(for kind: CacheKind) -> HandlePool {
        switch kind {
        case .frames: preconditionFailure("frames go through allocFrame/freePage and their nodes")
        case .leaves: leafPool
        case .swapSlots: swapPool
        case .mms: mms.pool
        case .groups: rmap.slotPool
        case .families: families.pool
        }
    }

    /// A handle of `kind` from this CPU's cache, refilled from the pool in
    /// a batch; when the pool is dry, the other CPUs' caches are drained
    /// before giving up. 0 when none is free.
    @inline(__always) func cacheAlloc(_ kind: CacheKind, _ cpu: CPU) -> UInt32 {
        let pool = pool(for: kind)
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        var h = caches.pop(s, kind, of: pool)
        if h == 0 && caches.refill(s, kind, from: pool) > 0 { h = caches.pop(s, kind, of: pool) }
        caches.unlock(s)
        if h == 0 && caches.drainOthers(kind, except: s, to: pool) > 0 { h = pool.alloc() }
        return h
    }

    /// Returns a handle of `kind` through this CPU's cache. A handle that is
    /// not allocated (a double free) is refused and reported.
    @inline(__always) func cacheFree(_ kind: CacheKind, _ h: UInt32, _ cpu: CPU) {
        let pool = pool(for: kind)
        guard pool.release(h) else {
            report(.lifetime, cpu: cpu, "\(kind.name) \(h) freed twice (or never allocated)")
            return
        }
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        let ok = caches.push(s, kind, h, spillTo: pool)
        caches.unlock(s)
        if !ok { report(.lifetime, cpu: cpu, "\(kind.name) pool overflow while freeing \(h)") }
    }

    // MARK: RCU read side

    /// rcu_read_lock, with the CPU's nesting depth kept for the watchdog: a
    /// read-side section left open (a forgotten unlock) stops every grace
    /// period, and the watchdog names the CPU that holds it.
    @inline(__always) func rcuReadLock(_ cpu: CPU) {
        RCU.readLock()
        cpu.pointee.enterReadSide()
    }

    @inline(__always) func rcuReadUnlock(_ cpu: CPU) {
        cpu.pointee.exitReadSide()
        RCU.readUnlock()
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
        guard s >= 1 && Int(s) <= config.swapSlots else {
            report(.swapCount, cpu: cpu, "swap entry names slot \(s), outside 1...\(config.swapSlots)")
            return
        }
        let now = swapCount[Int(s)].subtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            swapContent[Int(s)].store(Frame.poison, ordering: .relaxed)
            cacheFree(.swapSlots, s, cpu)
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
    func pteIndexAlloc(_ mm: UInt32, _ vpn: UInt64, _ cpu: CPU) -> Int {
        let slot = Int(mm) * 512 + Int(vpn >> 9)
        var leaf = pgd[slot]
        if leaf == 0 {
            leaf = cacheAlloc(.leaves, cpu)
            if leaf == 0 { return -1 }
            leafUsed[Int(leaf)] = 0
            pgd[slot] = leaf
        }
        return Int(leaf) * leafSize + Int(vpn & 511)
    }

    /// Sets a PTE, keeping the leaf's use count. A leaf that empties stays
    /// in place (faults refill it); leaves are freed when the range they
    /// cover is unmapped (`freeUnusedLeaves`) or the mm dies, as Linux's
    /// free_pgtables does, not the moment they empty.
    @inline(__always) func setPTE(_ mm: UInt32, _ vpn: UInt64, at i: Int, _ new: PTE) {
        let old = PTE(raw: ptes[i])
        ptes[i] = new.raw
        if old.isNone != new.isNone {
            leafUsed[i / leafSize] += new.isNone ? -1 : 1
        }
    }

    /// Whether a VMA of `mm` lies in leaf `d` (VMAs never cross a leaf).
    /// mmap lock held.
    @inline(__always) func leafCoveredByVMA(_ mm: UInt32, _ d: Int) -> Bool {
        let perLeaf = MachineConfig.ptesPerLeaf / config.vmaPages
        for k in 0..<MachineConfig.maxVMAs where vma(mm, k) != Kernel.noVMA && Int(vma(mm, k)) / perLeaf == d {
            return true
        }
        return false
    }

    /// free_pgtables for the leaf that held VMA position `pos`, after that
    /// range was unmapped or moved: frees it when no PTE and no VMA of the mm
    /// is left in it. mmap lock held for writing.
    func freeUnusedLeaf(_ mm: UInt32, vmaPosition pos: UInt32, _ cpu: CPU) {
        let d = Int(pos) * config.vmaPages / MachineConfig.ptesPerLeaf
        ptl.lock(Int(mm))
        let leaf = pgd[Int(mm) * 512 + d]
        if leaf != 0 && leafUsed[Int(leaf)] == 0 && !leafCoveredByVMA(mm, d) {
            pgd[Int(mm) * 512 + d] = 0
            cacheFree(.leaves, leaf, cpu)
        }
        ptl.unlock(Int(mm))
    }

    // MARK: Cheap checks on access (ptl held, PTE maps `f`)

    /// A PTE's frame number must name a frame: a corrupt one would make the
    /// model read and write outside its tables. Reported (always, whatever
    /// the check level: going on would be undefined), and the caller skips
    /// the entry.
    @inline(__always) func validFrame(_ f: UInt32, mm: UInt32, vpn: UInt64, _ cpu: CPU) -> Bool {
        if f >= 1 && Int(f) <= config.frames { return true }
        report(.location, mm: mm, vpn: vpn, cpu: cpu, "PTE names frame \(f), outside 1...\(config.frames)")
        return false
    }

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
