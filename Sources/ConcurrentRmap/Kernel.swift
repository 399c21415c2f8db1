import Synchronization
import URCUShim
#if canImport(Glibc)
import Glibc
#endif

/// Everything a `Kernel` reaches, allocated once. The state is split into
/// subsystems, each owning its tables, its audit and its leak check:
///
/// - `frameTable`: the frames (struct page) and their free lists per node;
/// - `swap`: the swap area and the swap cache;
/// - `spaces`: address spaces (mm slots, their locks, page tables, VMAs);
/// - `processes`: the process table, its shares and the fork families;
/// - `rmap`: the scheme (anongroup or anon_vma) with its own objects;
/// - `caches`: the per-CPU caches in front of every pool.
struct KernelState<R: RmapScheme> {
    let config: MachineConfig
    let inject: Injection
    let checks: CheckLevel
    /// `config.hunting`, read once per operation (`betweenOperations`).
    let hunting: Bool
    let rmap: R
    unowned(unsafe) let log: ViolationLog
    let frameTable: FrameTable
    let swap: SwapArea
    let spaces: AddressSpaces
    let processes: ProcessTable
    let caches: CPUCaches
    /// Inodes and their page caches.
    let files: Inodes
    /// The liburcu flavor this machine's readers and grace periods use.
    let flavor: RCUFlavor

    init(config: MachineConfig, log: ViolationLog) {
        self.config = config
        inject = config.injection
        checks = config.checks
        hunting = config.hunting
        self.log = log
        rmap = R(config: config, log: log)
        frameTable = FrameTable(count: config.frames, nodes: config.nodes)
        swap = SwapArea(slots: config.swapSlots, nodes: config.nodes)
        spaces = AddressSpaces(config: config, log: log)
        processes = ProcessTable(config: config)
        caches = CPUCaches(slots: config.maxCPUs, frameCache: config.frameCacheSize)
        files = Inodes(count: config.inodes, shmem: config.shmemInodes, maxPages: config.vmaPages, tree: config.iMmap == .tree,
                       libraries: config.libraries)
        flavor = RCU.flavor
    }
}

/// The simulated machine's operations, over its state.
///
/// One pointer to the tables (`KernelState`), which are allocated once:
/// copying a Kernel is free of ARC and costs one word, so each worker holds
/// its own copy and operations are methods on it. (A kernel that held its
/// tables inline was a 1 KB struct, and Swift copied it into closure
/// contexts several times per operation.) Handles are 1-based UInt32 (0 is
/// "none") and index the slabs directly.
///
/// Generic over the rmap scheme `R` and the platform `P` (locks, RCU,
/// waits): both are chosen at compile time, so the hot paths are direct,
/// specialized calls.
///
/// Ownership: `Machine` creates it and calls `destroy()` after every worker
/// stopped and every CPU was drained. Nothing else frees its memory.
struct Kernel<R: RmapScheme, P: Platform>: @unchecked Sendable {
    let s: UnsafeMutablePointer<KernelState<R>>

    init(config: MachineConfig, log: ViolationLog) {
        s = .allocate(capacity: 1)
        s.initialize(to: KernelState(config: config, log: log))
        frames[0].mapcount.store(0x5a5a_1234, ordering: .relaxed)
        precondition(MemoryLayout<Frame>.stride == 64, "a frame is one cache line")
        precondition((UnsafeMutableRawPointer(frames) + Frame.mapcountOffset).load(as: Int32.self) == 0x5a5a_1234,
                     "Frame layout changed: update Frame.mapcountOffset")
        frames[0].mapcount.store(0, ordering: .relaxed)
    }

    func destroy() {
        rmap.destroy()
        frameTable.destroy()
        swap.destroy()
        spaces.destroy()
        processes.destroy()
        caches.destroy()
        files.destroy()
        s.deinitialize(count: 1)
        s.deallocate()
    }

    @inline(__always) var config: MachineConfig { s.pointee.config }
    @inline(__always) var inject: Injection { s.pointee.inject }
    @inline(__always) var checks: CheckLevel { s.pointee.checks }
    @inline(__always) var rmap: R { s.pointee.rmap }
    @inline(__always) var log: ViolationLog { s.pointee.log }
    @inline(__always) var frameTable: FrameTable { s.pointee.frameTable }
    @inline(__always) var swap: SwapArea { s.pointee.swap }
    @inline(__always) var spaces: AddressSpaces { s.pointee.spaces }
    @inline(__always) var processes: ProcessTable { s.pointee.processes }
    @inline(__always) var caches: CPUCaches { s.pointee.caches }
    @inline(__always) var files: Inodes { s.pointee.files }
    @inline(__always) var flavor: RCUFlavor { s.pointee.flavor }

    // The tables every operation touches, by their usual names.
    @inline(__always) var frames: UnsafeMutablePointer<Frame> { s.pointee.frameTable.frames }
    @inline(__always) var mms: RCUSlab { s.pointee.spaces.mms }
    @inline(__always) var ptes: UnsafeMutablePointer<UInt64> { s.pointee.spaces.ptes }
    @inline(__always) var expected: UnsafeMutablePointer<UInt64> { s.pointee.spaces.expected }

    // MARK: Reporting and perturbation

    func report(_ kind: ViolationKind, frame: UInt32 = 0, mm: UInt32 = 0, vpn: UInt64 = 0,
                cpu: CPU?, _ detail: @autoclosure () -> String) {
        log.record(Violation(kind: kind, frame: frame, mm: mm, vpn: vpn,
                             op: cpu?.pointee.currentOp, cpu: cpu?.pointee.id ?? -1, detail: detail()))
    }

    /// A marked race window: with `perturb` on, the platform may delay the
    /// CPU here (the real one yields or spins at random, like KCSAN), so
    /// rare interleavings happen often. Under a controlled platform it is a
    /// scheduling point either way.
    @inline(__always) func raceWindow(_ cpu: CPU) {
        if config.perturb { P.raceWindow(cpu.pointee.random()) } else { P.schedulingPoint() }
    }

    /// A long reader: with `perturb` on, about one rmap walk in 4096 stays
    /// 1-3 ms inside its read-side section, as rcutorture's readers
    /// sometimes do. Harmless to a correct design (grace periods just wait);
    /// it opens the window in which a free that does not wait for readers
    /// lands under the walker.
    @inline(__always) func longReaderDelay(_ cpu: CPU) {
        guard config.perturb else { return }
        P.longRead(cpu.pointee.random())
    }

    // MARK: Locks and RCU, through the platform

    // Each names its class (`LockClass`) and its caller's line, for the
    // controlled platform's lock-order check.
    @inline(__always) func ptlLock(_ mm: UInt32, nested: Bool = false, file: StaticString = #fileID, line: UInt = #line) {
        P.lock(spaces.ptl.locks[Int(mm)], nested ? .ptlNested : .ptl, LockSite(file, line))
    }
    @inline(__always) func ptlTryLock(_ mm: UInt32, file: StaticString = #fileID, line: UInt = #line) -> Bool {
        P.tryLock(spaces.ptl.locks[Int(mm)], .ptl, LockSite(file, line))
    }
    @inline(__always) func ptlUnlock(_ mm: UInt32) { P.unlock(spaces.ptl.locks[Int(mm)]) }
    /// lockdep_assert_held(ptl): PTE stores and clears need their mm's ptl.
    @inline(__always) func assertPTLHeld(_ mm: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        P.assertHeld(.ptl, key: UInt(bitPattern: spaces.ptl.locks[Int(mm)]), LockSite(file, line))
    }
    @inline(__always) func mmapRead(_ mm: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        P.readLock(spaces.mmapLock.locks[Int(mm)], .mmapLock, LockSite(file, line))
    }
    @inline(__always) func mmapWrite(_ mm: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        P.writeLock(spaces.mmapLock.locks[Int(mm)], .mmapLock, LockSite(file, line))
    }
    @inline(__always) func mmapUnlock(_ mm: UInt32) { P.unlock(spaces.mmapLock.locks[Int(mm)]) }

    /// rcu_read_lock, with the CPU's nesting depth kept for the watchdog: a
    /// read-side section left open (a forgotten unlock) stops every grace
    /// period, and the watchdog names the CPU that holds it.
    @inline(__always) func rcuReadLock(_ cpu: CPU) {
        P.rcuReadLock()
        cpu.pointee.enterReadSide()
    }

    @inline(__always) func rcuReadUnlock(_ cpu: CPU) {
        cpu.pointee.exitReadSide()
        P.rcuReadUnlock()
    }

    /// The read side of an rmap walk under `--sync rcu`, with the planted
    /// read-side bugs shared by every scheme: worker 0 stalls inside its
    /// first section (rcu-reader-stall), or leaves one section open and
    /// goes on running (rcu-unlock-forgotten). Every later grace period
    /// waits for it either way.
    @inline(__always) func walkReadLock(_ cpu: CPU) {
        rcuReadLock(cpu)
        if inject == .rcuReaderStall && cpu.pointee.id == 0 {
            P.park()  // never leaves the read-side section
        }
    }

    @inline(__always) func walkReadUnlock(_ cpu: CPU) {
        if inject == .rcuUnlockForgotten && cpu.pointee.id == 0 && !cpu.pointee.forgotUnlock {
            cpu.pointee.forgotUnlock = true
        } else {
            rcuReadUnlock(cpu)
        }
    }

    // MARK: Cheap checks on access

    /// A PTE's frame number must name a frame: a corrupt one would make the
    /// model read and write outside its tables. Reported (always, whatever
    /// the check level: going on would be undefined), and the caller skips
    /// the entry.
    @inline(__always) func validFrame(_ f: UInt32, mm: UInt32, vpn: UInt64, _ cpu: CPU) -> Bool {
        if f >= 1 && Int(f) <= config.frames { return true }
        report(.location, mm: mm, vpn: vpn, cpu: cpu, "PTE names frame \(f), outside 1...\(config.frames)")
        return false
    }

    /// Invariants 1 and 2 for a PTE of `mm` at `vpn` that maps `f`; the mm's
    /// ptl and mmap lock are held.
    @inline(__always) func checkMapped(_ f: UInt32, mm: UInt32, vpn: UInt64, _ cpu: CPU) {
        guard checks != .off else { return }
        let fr = frames + Int(f)
        if fr.pointee.flags.load(ordering: .relaxed) & FrameFlags.free != 0 {
            report(.freedWhileMapped, frame: f, mm: mm, vpn: vpn, cpu: cpu, "PTE maps a free frame")
            return
        }
        if !locationOK(f, mm: mm, vpn: vpn) {
            report(.location, frame: f, mm: mm, vpn: vpn, cpu: cpu,
                   "page.mapping/index (\(fr.pointee.mapping.load(ordering: .relaxed)), 0x\(String(fr.pointee.index.load(ordering: .relaxed), radix: 16))) do not name this PTE")
        }
        if fr.pointee.mapcount.load(ordering: .relaxed) < 1 {
            report(.mapcount, frame: f, mm: mm, vpn: vpn, cpu: cpu, "mapped page has mapcount < 1")
        }
    }

    /// Invariant 4: a read returns the last value written (`full` checks).
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
