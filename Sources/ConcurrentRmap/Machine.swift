import Synchronization

/// A process pinned by a worker: its mm (one user held) and its slot in
/// the process table. Release it with `Machine.unpin`.
public struct PinnedProcess: Sendable, Equatable {
    public let mm: UInt32
    public let slot: Int
}

/// The public face of one simulated machine: the rmap scheme chosen, the
/// tables allocated, and the operations a worker can run. What to run and
/// on which process is the caller's policy (StressKit's `Workload`).
///
/// Thread safety: every method may be called concurrently from threads that
/// are registered with RCU, each with its own `CPU`, except `audit()` and
/// `teardown(cpu:)`, which require that no operation is in flight.
public final class Machine: @unchecked Sendable {
    public let config: MachineConfig
    let kernel: Kernel<AnonGroupRmap>
    let log: ViolationLog

    public enum ConfigError: Error, CustomStringConvertible {
        case invalid(String)
        public var description: String { switch self { case .invalid(let s): s } }
    }

    public init(config: MachineConfig) throws {
        if let problem = config.validate() { throw ConfigError.invalid(problem) }
        _ = RCU.tsanAnnotated  // traps on a half-annotated build
        self.config = config
        log = ViolationLog()
        kernel = Kernel(config: config, log: log)
    }

    deinit {
        // Callbacks still queued for this machine's slots must run first, on
        // the flavor they were queued on.
        RCU.barrier(kernel.flavor)
        kernel.destroy()
    }

    // MARK: CPUs

    /// A worker's per-CPU state; release it with `releaseCPU`. Traps when
    /// more CPUs exist at once than the machine was sized for
    /// (`MachineConfig.expectedCPUs` + 64).
    public func makeCPU(id: Int, seed: UInt64) -> CPU {
        let slot = kernel.caches.register()
        precondition(slot != 0, "more CPUs at once than MachineConfig.expectedCPUs allows")
        let p = CacheLine.allocate(CPUState.self, count: 1)
        p.initialize(to: CPUState(id: id, seed: seed, cacheSlot: slot, node: id % config.nodes))
        return p
    }

    /// Returns the CPU's cached frames and slots and frees it.
    public func releaseCPU(_ cpu: CPU) {
        kernel.drain(cpu)
        kernel.caches.unregister(cpu.pointee.cacheSlot)
        cpu.deinitialize(count: 1)
        cpu.deallocate()
    }

    // MARK: Process-level operations

    /// Pins the mm of a live process at or after table slot `slot`; nil
    /// when no process runs.
    @inline(__always)
    public func pinProcess(near slot: Int, stride: Int = 1, cpu: CPU) -> PinnedProcess? {
        guard let (mm, s) = kernel.pinProcess(near: slot, stride: stride, cpu) else { return nil }
        return PinnedProcess(mm: mm, slot: s)
    }

    @inline(__always)
    public func unpin(_ p: PinnedProcess, cpu: CPU) { kernel.mmPut(p.mm, cpu) }

    /// Starts a new process; false when the table or the mm slots are full.
    /// The table slot is near `slot` (every `stride`-th), or random.
    public func spawnProcess(cpu: CPU, near slot: Int? = nil, stride: Int = 1) -> Bool {
        kernel.spawn(cpu, near: slot, stride: stride)
    }

    public var processCount: Int { kernel.processCount }

    /// Processes in the share of the table that slot `slot` belongs to
    /// (slots modulo `config.shares`).
    @inline(__always)
    public func processCount(inShareOf slot: Int) -> Int { kernel.processCount(inShareOf: slot) }

    /// A read or write fault at a random address of one of the process's
    /// VMAs. False when it did not complete (no VMA, out of memory).
    @inline(__always)
    public func fault(_ p: PinnedProcess, write: Bool, cpu: CPU) -> Bool {
        kernel.faultAnywhere(p.mm, write: write, cpu).0 == .ok
    }

    /// fork; the child comes back pinned (unpin it), nil when the table or
    /// memory is full.
    /// The child's table slot is near `slot` (every `stride`-th), or random.
    public func fork(_ p: PinnedProcess, cpu: CPU, near slot: Int? = nil, stride: Int = 1) -> PinnedProcess? {
        let r = kernel.fork(p.mm, cpu, near: slot, stride: stride)
        guard r.result == .ok else { return nil }
        return PinnedProcess(mm: r.child, slot: r.slot)
    }

    /// exit of the process (if it still runs this mm).
    public func exit(_ p: PinnedProcess, cpu: CPU) -> Bool { kernel.exitProcess(slot: p.slot, mm: p.mm, cpu) }

    /// exec: the process gets a new image (new mm, new rmap context, new
    /// family); the pinned old mm dies when unpinned.
    public func exec(_ p: PinnedProcess, cpu: CPU) -> Bool { kernel.execProcess(slot: p.slot, mm: p.mm, cpu) }

    /// exec in a child right after fork (the workload's family bound);
    /// counted as `fork_exec`.
    public func execForkedChild(_ child: PinnedProcess, cpu: CPU) -> Bool {
        let ok = kernel.execProcess(slot: child.slot, mm: child.mm, cpu)
        if ok { cpu.pointee.count(.forkExec) }
        return ok
    }

    /// mremap of a random VMA to a free position.
    public func mremap(_ p: PinnedProcess, cpu: CPU) -> Bool { kernel.mremap(p.mm, cpu) }

    /// munmap of a random VMA, and an mmap of a fresh one elsewhere.
    public func munmap(_ p: PinnedProcess, cpu: CPU) -> Bool { kernel.munmap(p.mm, cpu) }

    /// mms in the process's fork family.
    public func familySize(_ p: PinnedProcess) -> Int { kernel.families.size(of: p.mm) }

    // MARK: Memory-level operations

    /// Reclaim (kswapd, or a test): scan up to `scan` frames of the CPU's
    /// memory node (`node`, when given), stop after `target` freed; returns
    /// how many were freed.
    public func reclaim(cpu: CPU, node: Int? = nil, scan: Int, target: Int) -> Int {
        kernel.reclaim(cpu, node: node ?? cpu.pointee.node, scan: scan, target: target)
    }

    /// Migrates one randomly chosen mapped page; false when none was found.
    public func migrate(cpu: CPU) -> Bool { kernel.migrate(cpu) }

    /// Migrates the page at a random address of the pinned process (NUMA
    /// balancing's way: the pages of the task at hand).
    public func migrate(in p: PinnedProcess, cpu: CPU) -> Bool { kernel.migrate(in: p.mm, cpu) }

    // MARK: Checks

    /// Full audit of every invariant. Every worker must be paused.
    public func audit() -> [Violation] {
        var found: [Violation] = []
        kernel.audit { v in found.append(v); log.record(v) }
        return found
    }

    /// Ends the run: exits every process, waits for RCU callbacks, returns
    /// the CPU's cached frames, and checks that nothing is left. `cpu` must
    /// be a CPU of a thread registered with RCU; every other CPU must
    /// already be released and every worker stopped.
    public func teardown(cpu: CPU) -> [Violation] {
        kernel.exitAll(cpu)
        kernel.drain(cpu)
        RCU.barrier(kernel.flavor)
        var found: [Violation] = []
        kernel.leakCheck { v in found.append(v); log.record(v) }
        return found
    }

    // MARK: Observations

    public var violationCount: Int { log.total.load(ordering: .acquiring) }
    public var violations: [Violation] { log.all }
    public func violationCount(_ kind: ViolationKind) -> Int { log.count(kind) }
    /// Records a violation found outside the model (the watchdog's stalls).
    public func record(_ v: Violation) { log.record(v) }

    /// Frames that are neither free in the pool nor parked in a CPU's cache.
    public var framesInUse: Int { config.frames - kernel.freeFrames }
    /// Free frames, the per-CPU caches' included.
    public var freeFrames: Int { kernel.freeFrames }
    /// Whether fewer than `n` frames of the CPU's memory node are free
    /// (cheap: kswapd's check).
    public func freeFramesBelow(_ n: Int, cpu: CPU) -> Bool { kernel.freeFramesBelow(n, node: cpu.pointee.node) }

    /// Frames of one memory node (kswapd's watermarks are per node).
    public var framesPerNode: Int { config.frames / config.nodes }
    public var swapSlotsInUse: Int { kernel.swapPool.inUse - kernel.caches.cachedCount(.swapSlots) }
    public var groupsInUse: Int { kernel.rmap.contextsInUse - kernel.caches.cachedCount(.groups) }
    public var mmsInUse: Int { kernel.mms.pool.inUse - kernel.caches.cachedCount(.mms) }

    /// Fork families right now: how many, their mean and largest size
    /// (a racy read, for the steady-state samples).
    public func familyStats() -> (count: Int, mean: Double, max: Int) {
        let fam = kernel.families
        var n = 0, total = 0, largest = 0
        for f in 1...fam.pool.capacity {
            let m = Int(fam.members[f].pointee.load(ordering: .relaxed))
            if m > 0 { n += 1; total += m; largest = Swift.max(largest, m) }
        }
        return (n, n > 0 ? Double(total) / Double(n) : 0, largest)
    }
}
