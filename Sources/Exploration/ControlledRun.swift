import ConcurrentRmap
import RunEngine
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// What one controlled execution is: the run settings (scheme, threads,
/// mix, sizes, planted bug, seed), the strategy and its seed, the step
/// budget, and for a replay the schedule's switches.
public struct ControlledSpec: Sendable, Equatable {
    public var settings: RunSettings
    public var strategy: ScheduleStrategy
    /// Seeds the strategy's choices (random picks, PCT priorities).
    public var scheduleSeed: UInt64
    public var steps: Int
    public var switches: [ScheduleSwitch]

    public init(settings: RunSettings, strategy: ScheduleStrategy, scheduleSeed: UInt64, steps: Int, switches: [ScheduleSwitch] = []) {
        self.settings = settings
        self.strategy = strategy
        self.scheduleSeed = scheduleSeed
        self.steps = steps
        self.switches = switches
    }

    /// The machine of the default test size: small enough that pools run
    /// dry, reclaim and migration meet the same pages, and a schedule of a
    /// few thousand steps covers every operation.
    public static func testSettings(scheme: SchemeKind = .anongroup, threads: Int = 3, seed: UInt64 = 1,
                                    inject: Injection = .none) -> RunSettings {
        var s = RunSettings()
        s.scheme = scheme
        s.threads = threads
        s.seed = seed
        s.inject = inject
        s.frames = 64
        s.swapSlots = 256
        s.processes = 12
        s.population = 8
        s.familySize = 4
        s.vmaPages = 8
        s.vmasPerProcess = 2
        // Three files beside the library: truncate, faults and walks meet.
        s.inodes = 4
        s.shmemInodes = 8
        s.mix = "fault=40,fork=6,exit=5,exec=3,mremap=8,munmap=3,split=3,reclaim=16,migrate=16"
        if inject.needsFileOperations { s.mix += "," + fileOperations }
        return s
    }

    /// The operations of the shared (file) branch that the test mix leaves
    /// out, so that the unit tests' schedules stay those of the anonymous
    /// branch: a planted file or shmem bug adds them (its paths are
    /// reached only through them), and so does `explore` with no `--mix`.
    public static let fileOperations = "mmap-file=4,truncate=3,mmap-shmem=3"
}

/// How one controlled execution ended.
public struct ControlledOutcome: Sendable {
    /// The first violation recorded (during the steps, the final audit or
    /// the teardown's leak check), or nil: clean.
    public var violation: Violation?
    /// The step at which it was first seen (for a final-audit or leak
    /// violation: the last step).
    public var step: Int
    /// Scheduling points taken in all.
    public var steps: Int
    /// Operations started, all workers together.
    public var operations: Int
    /// Non-default decisions of this execution (what a schedule file keeps).
    public var switches: [ScheduleSwitch]
    /// Set when the run was abandoned (deadlock, livelock): its threads are
    /// left blocked and its machine is leaked.
    public var abandoned: String?
    /// A strict replay that met a decision it could not follow.
    public var divergence: String?
    /// The scheduler's last events, oldest first, with names.
    public var trace: [String]
    /// synchronize_rcu calls that returned (the workers' own grace periods).
    public var gracePeriods: Int

    public var signature: String? { violation.map { $0.kind.rawValue } }
}

/// Runs one controlled execution: real threads, one at a time, every
/// platform call a scheduling point (see `ControlledScheduler`).
///
/// Deterministic: the machine, its CPUs, the population and each worker's
/// operation stream come from the settings' seed; the interleaving from
/// the strategy and its seed (or the replayed switches). Nothing reads the
/// wall clock. One controlled execution at a time per process.
public enum ControlledRun {
    /// The per-worker operation check: no operation may return inside an
    /// RCU read-side section or holding a sleeping lock (the kernel checks
    /// the same on return to user space).
    static func checkOperationEnd(_ sched: ControlledScheduler, worker: Int, op: OpKind, machine m: Machine) {
        let h = sched.holds(worker)
        if h.rcuDepth > 0 {
            m.record(Violation(kind: .stall, op: op, cpu: worker,
                               detail: "\(op.name) returned inside an RCU read-side section (depth \(h.rcuDepth)): every later grace period waits for it"))
        }
        if h.locks > 0 {
            m.record(Violation(kind: .stall, op: op, cpu: worker,
                               detail: "\(op.name) returned holding \(h.locks) lock(s)"))
        }
    }

    public static func execute(_ spec: ControlledSpec, strict: Bool = false, keepTrace: Bool = false) throws -> ControlledOutcome {
        let s = spec.settings
        var config = s.machineConfig
        config.controlled = true
        config.expectedCPUs = s.threads
        let mix = try s.operationMix()
        let table = mix.table()
        let workload = Workload(s)
        let sched = ControlledScheduler(threads: s.threads, strategy: spec.strategy, seed: spec.scheduleSeed,
                                        stepBudget: spec.steps, switches: spec.switches, strict: strict)
        precondition(ControlledScheduler.active == nil, "one controlled execution at a time")
        ControlledScheduler.active = sched
        defer { ControlledScheduler.active = nil }

        let machine = try Machine(config: config)
        sched.watchViolations({ [unowned machine] in machine.violationCount },
                              record: { [unowned machine] v in machine.record(v) })
        let boot = machine.makeCPU(id: s.threads, seed: s.seed)
        _ = workload.populate(machine, cpu: boot)
        var cpus: [CPU] = []
        for id in 0..<s.threads { cpus.append(machine.makeCPU(id: id, seed: s.seed)) }
        let started = UnsafeMutablePointer<Int>.allocate(capacity: s.threads)
        started.initialize(repeating: 0, count: s.threads)
        defer { started.deallocate() }

        var threads: [pthread_t] = []
        for id in 0..<s.threads {
            let cpu = cpus[id]
            threads.append(startThread {
                sched.threadBegin(id)
                table.withUnsafeBufferPointer { ops in
                    while sched.mayStartOperation() {
                        let op = ops[Int(cpu.pointee.randomOperation() >> 54)]
                        started[id] += 1
                        sched.opStart(kind: op.rawValue, mm: 0, arg: 0)
                        _ = workload.perform(op, on: machine, cpu: cpu)
                        cpu.pointee.finished()
                        checkOperationEnd(sched, worker: id, op: op, machine: machine)
                    }
                }
                sched.threadEnd(id)
            })
        }
        sched.runToCompletion()
        let operations = (0..<s.threads).reduce(0) { $0 + started[$1] }

        if let why = sched.aborted {
            // Threads are blocked inside operations for good: leave them,
            // and the machine they use, alive.
            for t in threads { pthread_detach(t) }
            _ = Unmanaged.passRetained(machine)
            _ = Unmanaged.passRetained(sched)
            let v = Violation(kind: .stall, cpu: sched.unfinished.first ?? -1, detail: why)
            machine.record(v)
            let first = machine.violations.first ?? v
            return ControlledOutcome(violation: first, step: sched.violationStep ?? sched.step, steps: sched.step,
                                     operations: operations, switches: sched.recorded, abandoned: why,
                                     divergence: sched.divergence, trace: describe(sched, machine, cpus.map { $0.pointee.recentOperations() }),
                                     gracePeriods: sched.gracePeriodsCompleted)
        }
        for t in threads { joinThread(t) }
        _ = machine.audit()
        let recent = cpus.map { $0.pointee.recentOperations() }
        for c in cpus { machine.releaseCPU(c) }
        _ = machine.teardown(cpu: boot)  // leaks go to the log too
        machine.releaseCPU(boot)
        if sched.stuckGracePeriods > 0 {
            machine.record(Violation(kind: .stall, detail: "\(sched.stuckGracePeriods) synchronize_rcu call(s) at teardown could not end: a read-side section was never left"))
        }
        let failed = machine.violationCount > 0
        return ControlledOutcome(violation: machine.violations.first, step: sched.violationStep ?? sched.step,
                                 steps: sched.step, operations: operations, switches: sched.recorded, abandoned: nil,
                                 divergence: sched.divergence,
                                 trace: keepTrace || failed ? describe(sched, machine, recent) : [],
                                 gracePeriods: sched.gracePeriodsCompleted)
    }

    /// The scheduler's events up to the first violation (or the last
    /// ones), in words, then who held which lock at that point and each
    /// worker's last operations.
    static func describe(_ sched: ControlledScheduler, _ m: Machine, _ recent: [[String]]) -> [String] {
        func lockName(_ id: Int) -> String {
            "lock#\(id)" + (m.lockName(address: sched.lockAddress(ofID: id)).map { " (\($0))" } ?? "")
        }
        var lines = (sched.violationEvents ?? sched.lastEvents).map { e in
            let who = e.thread < 0 ? "driver" : "w\(e.thread)"
            let lock = lockName(Int(e.object))
            let what: String
            switch e.kind {
            case .opStart: what = "starts \(OpKind(rawValue: Int(e.object))?.name ?? "?")"
            case .lock: what = "locks \(lock)"
            case .trylockOK: what = "trylock \(lock): taken"
            case .trylockBusy: what = "trylock \(lock): busy"
            case .unlock: what = "unlocks \(lock)"
            case .readLock: what = "read-locks \(lock)"
            case .writeLock: what = "write-locks \(lock)"
            case .rcuEnter: what = "rcu_read_lock (depth \(e.detail))"
            case .rcuExit: what = "rcu_read_unlock (depth \(e.detail))"
            case .raceWindow: what = "race window"
            case .wait: what = "waits (spin \(e.detail))"
            case .blocked: what = "blocks on \(lock)"
            case .finished: what = "finishes"
            case .parked: what = "blocks for good"
            case .gracePeriodBegin: what = "synchronize_rcu #\(e.detail) begins"
            case .gracePeriodEnd: what = "synchronize_rcu #\(e.detail) returns"
            }
            return "step \(e.step) \(who): \(what)"
        }
        let at = sched.violationStep.map { "at step \($0)" } ?? "at the end"
        let held = (sched.violationHolders ?? sched.holders()).map { h in
            h.owner >= 0 ? "w\(h.owner) holds \(lockName(h.lock))" : "\(h.readers) reader(s) hold \(lockName(h.lock))"
        }
        lines.append("locks held \(at): " + (held.isEmpty ? "none" : held.joined(separator: "; ")))
        for (w, ops) in recent.enumerated() {
            lines.append("w\(w) last operations: " + ops.joined(separator: " "))
        }
        return lines
    }
}
