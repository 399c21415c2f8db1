import Synchronization

/// The public face of one simulated machine: the rmap scheme chosen, the
/// tables allocated, and the operations a worker can run.
///
/// Thread safety: every method may be called concurrently from threads that
/// are registered with RCU, each with its own `CPU`, except `audit()` and
/// `teardown(_:)`, which require that no operation is in flight.
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
        // Callbacks still queued for this machine's slots must run first.
        RCU.barrier()
        kernel.destroy()
    }

    // MARK: CPUs

    /// A worker's per-CPU state; release it with `releaseCPU`.
    public func makeCPU(id: Int, seed: UInt64) -> CPU {
        let p = CacheLine.allocate(CPUState.self, count: 1)
        p.initialize(to: CPUState(id: id, seed: seed))
        return p
    }

    /// Returns the CPU's cached frames and frees it.
    public func releaseCPU(_ cpu: CPU) {
        kernel.drain(cpu)
        cpu.deinitialize(count: 1)
        cpu.deallocate()
    }

    // MARK: Worker operations

    /// Runs one operation of kind `op` on a random process, the way a stress
    /// worker does. Returns false when it had nothing to act on (no process,
    /// table full, no page found): still counted as an attempt.
    public func perform(_ op: OpKind, cpu: CPU) -> Bool {
        let k = kernel
        switch op {
        case .reclaim:
            // kswapd: background reclaim only below the high watermark (a
            // quarter of memory free in the global pool); allocations that
            // find nothing run direct reclaim themselves.
            cpu.pointee.note(op, mm: 0, arg: 0)
            guard k.framePool.available < config.frames / 4 else { return false }
            return k.reclaim(cpu, scan: 64, target: 16) > 0
        case .migrate:
            cpu.pointee.note(op, mm: 0, arg: 0)
            return k.migrate(cpu)
        default:
            break
        }
        guard let (mm, slot) = k.pinProcess(near: cpu.pointee.random(below: config.maxProcesses)) else {
            cpu.pointee.note(op, mm: 0, arg: 0)
            return k.spawn(cpu)
        }
        defer { k.mmPut(mm, cpu) }
        switch op {
        case .fault:
            return k.faultAnywhere(mm, write: cpu.pointee.random() & 1 == 0, cpu).0 == .ok
        case .fork:
            cpu.pointee.note(op, mm: mm, arg: UInt32(slot))
            guard k.processCount < config.maxProcesses else { return false }
            return k.fork(mm, cpu) == .ok
        case .exit:
            cpu.pointee.note(op, mm: mm, arg: UInt32(slot))
            // Keep a quarter of the table populated, so demand for memory
            // stays above the frames and reclaim has work.
            guard k.processCount > max(2, config.maxProcesses / 4) else { return false }
            return k.exitProcess(slot: slot, mm: mm, cpu)
        case .exec:
            cpu.pointee.note(op, mm: mm, arg: UInt32(slot))
            return k.execProcess(slot: slot, mm: mm, cpu)
        case .mremap:
            cpu.pointee.note(op, mm: mm, arg: 0)
            return k.mremap(mm, cpu)
        case .munmap:
            cpu.pointee.note(op, mm: mm, arg: 0)
            return k.munmap(mm, cpu)
        case .reclaim, .migrate:
            return false
        }
    }

    /// Starts a new process; false when the table or the mm slots are full.
    public func spawn(cpu: CPU) -> Bool { kernel.spawn(cpu) }

    // MARK: Checks

    /// Full audit of every invariant. Every worker must be paused.
    public func audit() -> [Violation] {
        var found: [Violation] = []
        kernel.audit { v in found.append(v); log.record(v) }
        return found
    }

    /// Ends the run: exits every process, waits for RCU callbacks, returns
    /// the CPUs' frames, and checks that nothing is left. `cpu` must be a
    /// CPU of a thread registered with RCU; every other CPU must already be
    /// released and every worker stopped.
    public func teardown(cpu: CPU) -> [Violation] {
        kernel.exitAll(cpu)
        kernel.drain(cpu)
        RCU.barrier()
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

    public var processCount: Int { kernel.processCount }
    public var framesInUse: Int { kernel.framePool.inUse }
    public var swapSlotsInUse: Int { kernel.swapPool.inUse }
    public var groupsInUse: Int { kernel.rmap.contextsInUse }
    public var mmsInUse: Int { kernel.mmPool.inUse }
}
