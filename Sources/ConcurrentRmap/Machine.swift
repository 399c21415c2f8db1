import URCUShim
import Synchronization

/// A process pinned by a worker: its mm (one user held) and its slot in
/// the process table. Release it with `Machine.unpin`.
public struct PinnedProcess: Sendable, Equatable {
    public let mm: UInt32
    public let slot: Int
}

/// The public face of one simulated machine: the rmap scheme chosen, the
/// tables allocated, and the operations a worker can run. What to run and
/// on which process is the caller's policy (RunEngine's `Workload`).
///
/// The scheme is chosen at run time (`MachineConfig.scheme`); each call
/// crosses into a `KernelMachine` specialized for the scheme and the
/// platform through one dynamic call, and everything below it (the
/// operations, the rmap, the locks) is direct, specialized code.
///
/// Thread safety: every method may be called concurrently from threads that
/// are registered with RCU, each with its own `CPU`, except `audit()` and
/// `teardown(cpu:)`, which require that no operation is in flight.
public final class Machine: @unchecked Sendable {
    public let config: MachineConfig
    let core: any MachineDriver
    let log: ViolationLog

    public enum ConfigError: Error, CustomStringConvertible {
        case invalid(String)
        public var description: String { switch self { case .invalid(let s): s } }
    }

    public init(config: MachineConfig) throws {
        if let problem = config.validate() { throw ConfigError.invalid(problem) }
        _ = RCU.tsanAnnotated  // traps on a half-annotated build
        // The shim's planted bug is process-wide: set by each machine built
        // (one runs at a time), cleared by every other.
        crm_rcu_set_inject_poll_early(config.injection == .gpPollEarly ? 1 : 0)
        self.config = config
        log = ViolationLog()
        if config.controlled {
            precondition(ControlledScheduler.active != nil, "a controlled machine needs an active ControlledScheduler")
        }
        switch (config.scheme, config.controlled) {
        case (.anongroup, false): core = AnonGroupMachine(config: config, log: log)
        case (.anonVma, false): core = AnonVMAMachine(config: config, log: log)
        case (.anongroup, true): core = AnonGroupControlledMachine(config: config, log: log)
        case (.anonVma, true): core = AnonVMAControlledMachine(config: config, log: log)
        case (.anonVMAChain, false): core = AnonVMAChainMachine(config: config, log: log)
        case (.anonVMAChain, true): core = AnonVMAChainControlledMachine(config: config, log: log)
        case (.pteChains, false): core = PTEChainsMachine(config: config, log: log)
        case (.pteChains, true): core = PTEChainsControlledMachine(config: config, log: log)
        case (.cowContext, false): core = COWContextMachine(config: config, log: log)
        case (.cowContext, true): core = COWContextControlledMachine(config: config, log: log)
        }
    }

    public var scheme: SchemeKind { config.scheme }

    // MARK: CPUs

    /// A worker's per-CPU state; release it with `releaseCPU`. Traps when
    /// more CPUs exist at once than the machine was sized for
    /// (`MachineConfig.expectedCPUs` + 64).
    public func makeCPU(id: Int, seed: UInt64) -> CPU { core.makeCPU(id: id, seed: seed) }

    /// Returns the CPU's cached frames and slots and frees it.
    public func releaseCPU(_ cpu: CPU) { core.releaseCPU(cpu) }

    // MARK: Process-level operations

    /// Pins the mm of a live process at or after table slot `slot`; nil
    /// when no process runs.
    @inline(__always)
    public func pinProcess(near slot: Int, stride: Int = 1, cpu: CPU) -> PinnedProcess? {
        core.pinProcess(near: slot, stride: stride, cpu: cpu)
    }

    @inline(__always)
    public func unpin(_ p: PinnedProcess, cpu: CPU) { core.unpin(p, cpu: cpu) }

    /// Starts a new process; false when the table or the mm slots are full.
    /// The table slot is near `slot` (every `stride`-th), or random.
    public func spawnProcess(cpu: CPU, near slot: Int? = nil, stride: Int = 1) -> Bool {
        core.spawnProcess(cpu: cpu, near: slot, stride: stride)
    }

    public var processCount: Int { core.processCount }

    /// Processes in the share of the table that slot `slot` belongs to
    /// (slots modulo `config.shares`).
    @inline(__always)
    public func processCount(inShareOf slot: Int) -> Int { core.processCount(inShareOf: slot) }

    /// A read or write fault at a random address of one of the process's
    /// VMAs. False when it did not complete (no VMA, out of memory).
    @inline(__always)
    public func fault(_ p: PinnedProcess, write: Bool, cpu: CPU) -> Bool { core.fault(p, write: write, cpu: cpu) }

    /// fork; the child comes back pinned (unpin it), nil when the table or
    /// memory is full. The child's table slot is near `slot` (every
    /// `stride`-th), or random.
    public func fork(_ p: PinnedProcess, cpu: CPU, near slot: Int? = nil, stride: Int = 1) -> PinnedProcess? {
        core.fork(p, cpu: cpu, near: slot, stride: stride)
    }

    /// exit of the process (if it still runs this mm).
    public func exit(_ p: PinnedProcess, cpu: CPU) -> Bool { core.exit(p, cpu: cpu) }

    /// exec: the process gets a new image (new mm, new VMAs, new family);
    /// the pinned old mm dies when unpinned.
    public func exec(_ p: PinnedProcess, cpu: CPU) -> Bool { core.exec(p, cpu: cpu) }

    /// exec in a child right after fork (the workload's family bound);
    /// counted as `fork_exec`.
    public func execForkedChild(_ child: PinnedProcess, cpu: CPU) -> Bool {
        let ok = core.exec(child, cpu: cpu)
        if ok { cpu.pointee.count(.forkExec) }
        return ok
    }

    /// mremap of a random VMA to a free place.
    public func mremap(_ p: PinnedProcess, cpu: CPU) -> Bool { core.mremap(p, cpu: cpu) }

    /// munmap of a random VMA, and an mmap of a fresh one elsewhere.
    public func munmap(_ p: PinnedProcess, cpu: CPU) -> Bool { core.munmap(p, cpu: cpu) }

    /// Splits a random VMA in two (an mprotect of part of it), or unmaps its
    /// tail when the process has nearly as many VMAs as it may.
    public func split(_ p: PinnedProcess, cpu: CPU) -> Bool { core.split(p, cpu: cpu) }

    /// mmap of part of a random file, shared or private.
    public func mmapFile(_ p: PinnedProcess, cpu: CPU) -> Bool { core.mmapFile(p, cpu: cpu) }
    /// mmap(MAP_SHARED|MAP_ANONYMOUS) of a random size: a shmem inode of
    /// the pool, mapped whole. False when the pool is empty or the
    /// process's VMA table is full.
    public func mmapShmem(_ p: PinnedProcess, cpu: CPU) -> Bool { core.mmapShmem(p, cpu: cpu) }

    /// ftruncate of a random file: shrunk to a random size, or grown back
    /// to its full size when it is already small.
    public func truncate(cpu: CPU) -> Bool { core.truncate(cpu: cpu) }

    /// mms in the process's fork family.
    public func familySize(_ p: PinnedProcess) -> Int { core.familySize(p) }

    // MARK: Operations on a named VMA (trace replay; see Ops/TargetedOps.swift)

    /// Starts a new process and returns it pinned (unpin it); nil when the
    /// table or the mm slots are full.
    public func spawnPinned(cpu: CPU) -> PinnedProcess? { core.spawnPinned(cpu: cpu) }

    /// Pins the process at table slot `slot` exactly (after an exec, its new
    /// mm); nil when the slot is empty.
    public func pinProcess(atSlot slot: Int, cpu: CPU) -> PinnedProcess? {
        core.pinProcess(near: slot, stride: config.maxProcesses, cpu: cpu)
    }

    /// mmap of an anonymous private VMA of `pages` pages (clamped to
    /// 1...vmaPages); its handle, 0 when the process's table (16 VMAs) is full.
    public func mapVMA(_ p: PinnedProcess, pages: Int, cpu: CPU) -> UInt32 { core.mapVMA(p, pages: pages, cpu: cpu) }
    /// munmap of VMA `vma`; false when it is not one of the process's.
    public func unmapVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> Bool { core.unmapVMA(p, vma: vma, cpu: cpu) }
    /// vma_merge of VMA `vma` with an adjacent compatible VMA of the
    /// process (the previous one first): the VMA now covering `vma`'s range,
    /// or 0 when `vma` is not one of the process's or has no such neighbour.
    public func mergeVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> UInt32 { core.mergeVMA(p, vma: vma, cpu: cpu) }
    /// mremap of VMA `vma` to a new place; the moved VMA's handle, or 0.
    public func moveVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> UInt32 { core.moveVMA(p, vma: vma, cpu: cpu) }
    /// A read or write of one page of VMA `vma`; false when it did not complete.
    public func touch(_ p: PinnedProcess, vma: UInt32, page: Int, write: Bool, cpu: CPU) -> Bool {
        core.touch(p, vma: vma, page: page, write: write, cpu: cpu)
    }
    /// madvise(MADV_DONTNEED) of `count` pages of VMA `vma` from `first`.
    public func dropPages(_ p: PinnedProcess, vma: UInt32, first: Int, count: Int, cpu: CPU) -> Bool {
        core.dropPages(p, vma: vma, first: first, count: count, cpu: cpu)
    }
    /// The process's VMA table: entry `t` holds a handle or 0; fork copies
    /// entry `t` of the parent to entry `t` of the child.
    public func vmaTable(_ p: PinnedProcess) -> [UInt32] { core.vmaTable(p) }
    /// Pages of VMA `vma` (0 when it is not a live VMA).
    public func vmaPages(_ vma: UInt32) -> Int { core.vmaPages(vma) }

    // MARK: Memory-level operations

    /// Reclaim (kswapd, or a test): scan up to `scan` frames of the CPU's
    /// memory node (`node`, when given), stop after `target` freed; returns
    /// how many were freed. Swapped-out pages stay in the swap cache until
    /// the clock comes round, unless `keepCached` is false.
    public func reclaim(cpu: CPU, node: Int? = nil, scan: Int, target: Int, keepCached: Bool = true) -> Int {
        core.reclaim(cpu: cpu, node: node ?? cpu.pointee.node, scan: scan, target: target, keepCached: keepCached)
    }

    /// Migrates one randomly chosen mapped page; false when none was found.
    public func migrate(cpu: CPU) -> Bool { core.migrate(cpu: cpu) }

    /// Migrates the page at a random address of the pinned process (NUMA
    /// balancing's way: the pages of the task at hand).
    public func migrate(in p: PinnedProcess, cpu: CPU) -> Bool { core.migrate(in: p, cpu: cpu) }

    // MARK: Checks

    /// Full audit of every invariant. Every worker must be paused.
    public func audit() -> [Violation] {
        var found: [Violation] = []
        core.audit { v in found.append(v); log.record(v) }
        return found
    }

    /// Ends the run: exits every process, empties the swap cache, frees
    /// what the CPU retired after a grace period, returns the CPU's cached
    /// frames, and checks that nothing is left. `cpu` must be a CPU of a thread registered with RCU;
    /// every other CPU must already be released and every worker stopped.
    public func teardown(cpu: CPU) -> [Violation] {
        var found: [Violation] = []
        core.teardown(cpu: cpu) { v in found.append(v); log.record(v) }
        return found
    }

    // MARK: Observations

    public var violationCount: Int { log.total.load(ordering: .acquiring) }

    /// Names a lock of this machine by its address (controlled-run traces).
    public func lockName(address: UInt) -> String? { core.lockName(address: address) }
    /// The scheme's rmap metadata now (contexts, links, longest chain,
    /// bytes). Scans the tables: exact when no operation is in flight.
    public func rmapMetadata() -> RmapMetadata { core.rmapMetadata() }
    public var violations: [Violation] { log.all }
    public func violationCount(_ kind: ViolationKind) -> Int { log.count(kind) }
    /// Records a violation found outside the model (the watchdog's stalls).
    public func record(_ v: Violation) { log.record(v) }

    /// Frames that are neither free in the pool nor parked in a CPU's cache.
    public var framesInUse: Int { config.frames - core.freeFrames }
    /// Free frames, the per-CPU caches' included.
    public var freeFrames: Int { core.freeFrames }
    /// Whether fewer than `n` frames of the CPU's memory node are free in
    /// its pool and the CPU's own cache (cheap: kswapd's check).
    public func freeFramesBelow(_ n: Int, cpu: CPU) -> Bool { core.freeFramesBelow(n, cpu: cpu) }

    /// Frames of one memory node (kswapd's watermarks are per node).
    public var framesPerNode: Int { config.frames / config.nodes }
    public var swapSlotsInUse: Int { core.swapSlotsInUse }
    /// Pages in the swap cache.
    public var swapCachePages: Int { core.swapCachePages }
    /// The scheme's rmap contexts in use (anongroups or anon_vmas).
    public var contextsInUse: Int { core.contextsInUse }
    public var mmsInUse: Int { core.mmsInUse }
    public var vmasInUse: Int { core.vmasInUse }

    /// Fork families right now: how many, their mean and largest size
    /// (a racy read, for the steady-state samples).
    public func familyStats() -> (count: Int, mean: Double, max: Int) { core.familyStats() }

    /// mmap of `pages` pages of inode `inode` (1...config.inodes) from file
    /// page `pgoff`, shared or private (a replayed file mapping; pages and
    /// offset clamped to the file); its handle, 0 when the inode does not
    /// exist or the process's table is full.
    public func mapFile(_ p: PinnedProcess, inode: UInt32, pgoff: UInt64, pages: Int, shared: Bool, cpu: CPU) -> UInt32 {
        core.mapFile(p, inode: inode, pgoff: pgoff, pages: pages, shared: shared, cpu: cpu)
    }
    /// Pages in the page caches of all inodes (a racy read).
    public var pageCachePages: Int { core.pageCachePages }
    /// mmap(MAP_SHARED|MAP_ANONYMOUS) of `pages` pages (clamped to
    /// 1...vmaPages): a shmem inode of that size (a replayed shared
    /// anonymous mapping); its VMA, 0 when the pool is empty or the
    /// process's table is full.
    public func mapShmem(_ p: PinnedProcess, pages: Int, cpu: CPU) -> UInt32 { core.mapShmem(p, pages: pages, cpu: cpu) }
    /// Shmem inodes allocated now (a racy read).
    public var shmemInUse: Int { core.shmemInUse }
}

/// What `Machine` asks of its specialized core (a `KernelMachine`: one
/// class per (scheme, platform) pair).
protocol MachineDriver: AnyObject, Sendable {
    func makeCPU(id: Int, seed: UInt64) -> CPU
    func releaseCPU(_ cpu: CPU)
    func pinProcess(near slot: Int, stride: Int, cpu: CPU) -> PinnedProcess?
    func unpin(_ p: PinnedProcess, cpu: CPU)
    func spawnProcess(cpu: CPU, near slot: Int?, stride: Int) -> Bool
    var processCount: Int { get }
    func processCount(inShareOf slot: Int) -> Int
    func fault(_ p: PinnedProcess, write: Bool, cpu: CPU) -> Bool
    func fork(_ p: PinnedProcess, cpu: CPU, near slot: Int?, stride: Int) -> PinnedProcess?
    func exit(_ p: PinnedProcess, cpu: CPU) -> Bool
    func exec(_ p: PinnedProcess, cpu: CPU) -> Bool
    func mremap(_ p: PinnedProcess, cpu: CPU) -> Bool
    func munmap(_ p: PinnedProcess, cpu: CPU) -> Bool
    func split(_ p: PinnedProcess, cpu: CPU) -> Bool
    func mmapFile(_ p: PinnedProcess, cpu: CPU) -> Bool
    func truncate(cpu: CPU) -> Bool
    func familySize(_ p: PinnedProcess) -> Int
    func spawnPinned(cpu: CPU) -> PinnedProcess?
    func mapVMA(_ p: PinnedProcess, pages: Int, cpu: CPU) -> UInt32
    func unmapVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> Bool
    func moveVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> UInt32
    func mergeVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> UInt32
    func touch(_ p: PinnedProcess, vma: UInt32, page: Int, write: Bool, cpu: CPU) -> Bool
    func dropPages(_ p: PinnedProcess, vma: UInt32, first: Int, count: Int, cpu: CPU) -> Bool
    func vmaTable(_ p: PinnedProcess) -> [UInt32]
    func vmaPages(_ vma: UInt32) -> Int
    func reclaim(cpu: CPU, node: Int, scan: Int, target: Int, keepCached: Bool) -> Int
    func migrate(cpu: CPU) -> Bool
    func migrate(in p: PinnedProcess, cpu: CPU) -> Bool
    func audit(_ report: (Violation) -> Void)
    func teardown(cpu: CPU, _ report: (Violation) -> Void)
    var freeFrames: Int { get }
    func freeFramesBelow(_ n: Int, cpu: CPU) -> Bool
    var swapSlotsInUse: Int { get }
    var swapCachePages: Int { get }
    var contextsInUse: Int { get }
    var mmsInUse: Int { get }
    var vmasInUse: Int { get }
    func familyStats() -> (count: Int, mean: Double, max: Int)
    var bench: any MachineBenchDriver { get }
    func lockName(address: UInt) -> String?
    func rmapMetadata() -> RmapMetadata
    func mapFile(_ p: PinnedProcess, inode: UInt32, pgoff: UInt64, pages: Int, shared: Bool, cpu: CPU) -> UInt32
    var pageCachePages: Int { get }
    func mmapShmem(_ p: PinnedProcess, cpu: CPU) -> Bool
    func mapShmem(_ p: PinnedProcess, pages: Int, cpu: CPU) -> UInt32
    var shmemInUse: Int { get }
}

/// A machine specialized for one scheme and one platform: it owns the
/// kernel, and every `MachineDriver` method comes from the extension below.
///
/// Why a protocol with concrete classes, not one generic class: the
/// witnesses of a generic class's conformance are compiled generic (type
/// metadata passed at run time, every `P.lock` and `rmap.walk` an indirect
/// call), which made each operation several times slower. A concrete class
/// gets witnesses specialized for its own (scheme, platform) pair.
///
/// Ownership: the kernel's tables live until the class's `deinit`, which
/// calls `destroyKernel()`. Every CPU was released (drained) before, so no
/// retired slot still waits for a grace period.
protocol KernelMachine: MachineDriver, MachineBenchDriver {
    associatedtype R: RmapScheme
    associatedtype P: Platform
    var config: MachineConfig { get }
    var kernel: Kernel<R, P> { get }
}

/// The seed's anon groups on pthread and liburcu.
final class AnonGroupMachine: KernelMachine, @unchecked Sendable {
    typealias R = AnonGroupRmap
    typealias P = RealPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// anon_vma on pthread and liburcu.
final class AnonVMAMachine: KernelMachine, @unchecked Sendable {
    typealias R = AnonVMARmap
    typealias P = RealPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// The seed's anon groups under a controlled scheduler.
final class AnonGroupControlledMachine: KernelMachine, @unchecked Sendable {
    typealias R = AnonGroupRmap
    typealias P = ControlledPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// anon_vma under a controlled scheduler.
final class AnonVMAControlledMachine: KernelMachine, @unchecked Sendable {
    typealias R = AnonVMARmap
    typealias P = ControlledPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// anon_vma_chain on pthread and liburcu.
final class AnonVMAChainMachine: KernelMachine, @unchecked Sendable {
    typealias R = AnonVMAChainRmap
    typealias P = RealPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// anon_vma_chain under a controlled scheduler.
final class AnonVMAChainControlledMachine: KernelMachine, @unchecked Sendable {
    typealias R = AnonVMAChainRmap
    typealias P = ControlledPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// pte_chains on pthread and liburcu.
final class PTEChainsMachine: KernelMachine, @unchecked Sendable {
    typealias R = PTEChainsRmap
    typealias P = RealPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// COW contexts on pthread and liburcu.
final class COWContextMachine: KernelMachine, @unchecked Sendable {
    typealias R = COWContextRmap
    typealias P = RealPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// pte_chains under a controlled scheduler.
final class PTEChainsControlledMachine: KernelMachine, @unchecked Sendable {
    typealias R = PTEChainsRmap
    typealias P = ControlledPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

/// COW contexts under a controlled scheduler.
final class COWContextControlledMachine: KernelMachine, @unchecked Sendable {
    typealias R = COWContextRmap
    typealias P = ControlledPlatform
    let config: MachineConfig
    let kernel: Kernel<R, P>
    init(config: MachineConfig, log: ViolationLog) { self.config = config; kernel = Kernel(config: config, log: log) }
    deinit { destroyKernel() }
}

extension KernelMachine {
    func destroyKernel() {
        kernel.destroy()
    }

    func makeCPU(id: Int, seed: UInt64) -> CPU {
        let slot = kernel.caches.register()
        precondition(slot != 0, "more CPUs at once than MachineConfig.expectedCPUs allows")
        let p = CacheLine.allocate(CPUState.self, count: 1)
        p.initialize(to: CPUState(id: id, seed: seed, cacheSlot: slot, node: id % config.nodes))
        return p
    }

    func releaseCPU(_ cpu: CPU) {
        kernel.drain(cpu)
        kernel.caches.unregister(cpu.pointee.cacheSlot)
        cpu.deinitialize(count: 1)
        cpu.deallocate()
    }

    @inline(__always) func pinProcess(near slot: Int, stride: Int, cpu: CPU) -> PinnedProcess? {
        guard let (mm, s) = kernel.pinProcess(near: slot, stride: stride, cpu) else { return nil }
        return PinnedProcess(mm: mm, slot: s)
    }

    @inline(__always) func unpin(_ p: PinnedProcess, cpu: CPU) {
        kernel.mmPut(p.mm, cpu)
        kernel.betweenOperations(cpu)
    }

    func spawnProcess(cpu: CPU, near slot: Int?, stride: Int) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.spawn(cpu, near: slot, stride: stride)
    }
    var processCount: Int { kernel.processCount }
    @inline(__always) func processCount(inShareOf slot: Int) -> Int { kernel.processCount(inShareOf: slot) }
    @inline(__always) func fault(_ p: PinnedProcess, write: Bool, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.faultAnywhere(p.mm, write: write, cpu).0 == .ok
    }

    func fork(_ p: PinnedProcess, cpu: CPU, near slot: Int?, stride: Int) -> PinnedProcess? {
        defer { kernel.betweenOperations(cpu) }
        let r = kernel.fork(p.mm, cpu, near: slot, stride: stride)
        guard r.result == .ok else { return nil }
        return PinnedProcess(mm: r.child, slot: r.slot)
    }

    func exit(_ p: PinnedProcess, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.exitProcess(slot: p.slot, mm: p.mm, cpu)
    }

    func exec(_ p: PinnedProcess, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.execProcess(slot: p.slot, mm: p.mm, cpu)
    }

    func mremap(_ p: PinnedProcess, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.mremap(p.mm, cpu)
    }

    func munmap(_ p: PinnedProcess, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.munmap(p.mm, cpu)
    }

    func split(_ p: PinnedProcess, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.split(p.mm, cpu)
    }

    func mmapFile(_ p: PinnedProcess, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.mmapFile(p.mm, cpu)
    }

    func truncate(cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        kernel.truncate(cpu)
        return true
    }
    func familySize(_ p: PinnedProcess) -> Int { kernel.processes.families.size(of: p.mm) }

    func spawnPinned(cpu: CPU) -> PinnedProcess? {
        defer { kernel.betweenOperations(cpu) }
        return kernel.spawnPinned(cpu).map { PinnedProcess(mm: $0.mm, slot: $0.slot) }
    }
    func mapVMA(_ p: PinnedProcess, pages: Int, cpu: CPU) -> UInt32 {
        defer { kernel.betweenOperations(cpu) }
        return kernel.mapVMA(p.mm, pages: pages, cpu)
    }
    func unmapVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.unmapVMA(p.mm, vma: vma, cpu)
    }
    func mergeVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> UInt32 {
        defer { kernel.betweenOperations(cpu) }
        return kernel.mergeVMA(p.mm, vma: vma, cpu)
    }
    func moveVMA(_ p: PinnedProcess, vma: UInt32, cpu: CPU) -> UInt32 {
        defer { kernel.betweenOperations(cpu) }
        return kernel.moveVMA(p.mm, vma: vma, cpu)
    }
    func touch(_ p: PinnedProcess, vma: UInt32, page: Int, write: Bool, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.touch(p.mm, vma: vma, page: page, write: write, cpu) == .ok
    }
    func dropPages(_ p: PinnedProcess, vma: UInt32, first: Int, count: Int, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.dropPages(p.mm, vma: vma, first: first, count: count, cpu)
    }
    func vmaTable(_ p: PinnedProcess) -> [UInt32] { kernel.vmaTable(p.mm) }
    func vmaPages(_ vma: UInt32) -> Int {
        guard vma >= 1 && Int(vma) <= kernel.spaces.vmas.capacity,
              kernel.spaces.vmas.load(vma) == SlotState.live else { return 0 }
        return kernel.vmaPages(vma)
    }

    func reclaim(cpu: CPU, node: Int, scan: Int, target: Int, keepCached: Bool) -> Int {
        defer { kernel.betweenOperations(cpu) }
        return kernel.reclaim(cpu, node: node, scan: scan, target: target, keepCached: keepCached)
    }

    func migrate(cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.migrate(cpu)
    }

    func migrate(in p: PinnedProcess, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.migrate(in: p.mm, cpu)
    }

    func audit(_ report: (Violation) -> Void) { kernel.audit(report) }

    func teardown(cpu: CPU, _ report: (Violation) -> Void) {
        kernel.exitAll(cpu)
        kernel.dropSwapCache(cpu)
        kernel.dropPageCache(cpu)
        kernel.drain(cpu)
        kernel.leakCheck(report)
    }

    var freeFrames: Int { kernel.freeFrames }
    func freeFramesBelow(_ n: Int, cpu: CPU) -> Bool { kernel.freeFramesBelow(n, cpu: cpu) }
    var swapSlotsInUse: Int { kernel.swap.pool.inUse - kernel.caches.cachedCount(.swapSlots) }
    var swapCachePages: Int {
        var n = 0
        for s in 1...config.swapSlots where kernel.swap.cached[s].load(ordering: .relaxed) != 0 { n += 1 }
        return n
    }
    var contextsInUse: Int { kernel.rmap.contextsInUse - kernel.caches.cachedCount(.contexts) }
    var mmsInUse: Int { kernel.mms.pool.inUse - kernel.caches.cachedCount(.mms) }
    var vmasInUse: Int { kernel.spaces.vmas.pool.inUse - kernel.caches.cachedCount(.vmas) }

    func familyStats() -> (count: Int, mean: Double, max: Int) {
        let fam = kernel.processes.families
        var n = 0, total = 0, largest = 0
        for f in 1...fam.pool.capacity {
            let m = Int(fam.members[f].pointee.load(ordering: .relaxed))
            if m > 0 { n += 1; total += m; largest = Swift.max(largest, m) }
        }
        return (n, n > 0 ? Double(total) / Double(n) : 0, largest)
    }

    var bench: any MachineBenchDriver { self }

    func lockName(address: UInt) -> String? {
        if let i = kernel.spaces.ptl.locks.index(of: address) { return "ptl of mm \(i)" }
        if let i = kernel.spaces.mmapLock.locks.index(of: address) { return "mmap lock of mm \(i)" }
        if let i = kernel.files.iMmapLock.locks.index(of: address) { return "i_mmap lock of inode \(i)" }
        if let i = kernel.files.inodeLock.locks.index(of: address) { return "inode lock of inode \(i)" }
        return kernel.rmap.lockName(address: address)
    }

    func rmapMetadata() -> RmapMetadata { kernel.rmap.metadata(kernel) }

    func mapFile(_ p: PinnedProcess, inode: UInt32, pgoff: UInt64, pages: Int, shared: Bool, cpu: CPU) -> UInt32 {
        defer { kernel.betweenOperations(cpu) }
        return kernel.mapFileVMA(p.mm, inode: inode, pgoff: pgoff, pages: pages, shared: shared, cpu)
    }
    var pageCachePages: Int { kernel.pageCachePages }
    func mmapShmem(_ p: PinnedProcess, cpu: CPU) -> Bool {
        defer { kernel.betweenOperations(cpu) }
        return kernel.mmapShmem(p.mm, cpu)
    }
    func mapShmem(_ p: PinnedProcess, pages: Int, cpu: CPU) -> UInt32 {
        defer { kernel.betweenOperations(cpu) }
        guard kernel.files.shmemCount > 0 else { return 0 }
        return kernel.mmapShmem(p.mm, pages: max(1, min(pages, kernel.files.maxPages)), cpu)
    }
    var shmemInUse: Int { kernel.shmemInUse }
}
