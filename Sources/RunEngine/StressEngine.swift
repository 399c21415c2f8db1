import ConcurrentRmap
import Histogram
import StressSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A one-second view of a running stress test, for the status line.
public struct StatusSnapshot: Sendable {
    /// starting, warmup or measuring.
    public var phase: String
    public var elapsed: Double
    /// Completed operations per second over the last interval.
    public var opsPerS: Double
    public var processes: Int
    public var framesInUse: Int
    public var frames: Int
    public var swapInUse: Int
    public var audits: Int
    public var violations: Int
    /// Workers started so far (during start-up).
    public var workersStarted: Int
    public var workers: Int
}

/// What the caller of the engine hears while a run goes on. The engine does
/// no I/O of its own: the command line prints and writes files.
public struct EngineHooks: Sendable {
    /// Called about once per `statusInterval` seconds.
    public var status: (@Sendable (StatusSnapshot) -> Void)?
    public var statusInterval: Double = 1
    /// A partial result (verdict RUNNING) every `snapshotInterval` seconds
    /// and a complete one before teardown, so that a run that dies still
    /// leaves a readable record of how far it got.
    public var snapshot: (@Sendable (StressResult) -> Void)?
    public var snapshotInterval: Double = 2
    /// The signal that asks the run to stop (SIGINT, SIGTERM), or 0.
    public var interruption: @Sendable () -> Int32 = { Signals.pending }

    public init() {}
}

/// Runs worker threads against one `Machine` and turns what they did into
/// a `StressResult`: the stress tool's engine.
///
/// Life of a run:
/// 1. start-up: the machine, the population, then the worker threads, which
///    wait at a start line (start-up of thousands of threads is not timed);
/// 2. warm-up (`warmup_s`, not counted), then measuring; every 10 ms the
///    coordinator (the calling thread) checks for a signal, the deadline or
///    the ops budget, the first violation (unless keep-going), stalled
///    workers or grace periods (the watchdog), audits, status, samples and
///    snapshots;
/// 3. stopping: workers finish their operation; one that does not within
///    the stall timeout is named as stuck and the run ends as STALL without
///    touching the machine again;
/// 4. final audit, then the complete result is built and handed out as a
///    snapshot *before* teardown, so nothing found is lost if teardown
///    hangs or crashes;
/// 5. teardown and leak check, on a thread of their own under a deadline,
///    and only when the run has not failed: a failed model cannot be
///    trusted to tear down (a corrupted slab or list can hang it).
public enum StressEngine {
    public static func run(_ s: RunSettings, hooks: EngineHooks = EngineHooks()) throws -> StressResult {
        if let problem = s.validate() { throw Machine.ConfigError.invalid(problem) }
        let mix = try s.operationMix()
        guard RCU.select(s.rcu) else { throw Machine.ConfigError.invalid("cannot switch RCU flavor while threads are registered") }
        var config = s.machineConfig
        config.expectedCPUs = s.threads
        let machine = try Machine(config: config)
        let workload = Workload(s)
        let control = RunControl()
        let table = mix.table()
        let wallStart = monotonicNanos()
        let rcuBefore = RCU.synchronizeCount
        var run = Run(settings: s, machine: machine, control: control, wallStart: wallStart, rcuBefore: rcuBefore)

        // The population, on this thread.
        RCU.registerThread()
        let boot = machine.makeCPU(id: s.threads, seed: s.seed)
        _ = workload.populate(machine, cpu: boot)
        machine.releaseCPU(boot)
        RCU.unregisterThread()

        if s.threads >= 2, let ns = CrossCoreProbe.roundTripNanos(runS: s.warmupS + s.durationS) { run.crossCore.append(ns) }

        // Workers, announced while they start (thousands take seconds).
        var threads: [pthread_t] = []
        var lastStatus = monotonicNanos()
        for id in 0..<s.threads {
            let w = WorkerState(id: id, cpu: machine.makeCPU(id: id, seed: s.seed),
                                keepsHistograms: id < Limits.timedWorkers)
            run.workers.append(w)
            threads.append(startThread {
                WorkerLoop.run(machine: machine, workload: workload, state: w, table: table, control: control, settings: s)
            })
            let now = monotonicNanos()
            if let status = hooks.status, now - lastStatus > 1_000_000_000 {
                lastStatus = now
                status(run.status(phase: "starting", now: now, opsPerS: 0, started: id + 1))
            }
            if hooks.interruption() != 0 { break }
        }
        let probe: pthread_t? = s.gpProbeIntervalS > 0 ? startThread {
            // Keeps synchronize_rcu running so the watchdog can see a stuck
            // grace period. Not registered (it reads nothing).
            let pause = UInt64(s.gpProbeIntervalS * 1e9)
            while !control.stopping {
                RCU.synchronize()
                control.gracePeriods.wrappingAdd(1, ordering: .releasing)
                sleepNanos(pause)
            }
            control.probeExited.store(true, ordering: .releasing)
        } : nil

        let start = monotonicNanos()
        run.startupS = Double(start - wallStart) / 1e9
        run.goAt = start
        control.start.open()
        var phase = s.warmupS > 0 ? "warmup" : "measuring"
        if s.warmupS == 0 { run.beginMeasuring(at: start) }
        // A first record at once: a run that dies early still leaves one.
        hooks.snapshot?(run.result(phase: "running", end: start, histograms: false))
        let warmupEnd = start + UInt64(s.warmupS * 1e9)
        var deadline = warmupEnd + UInt64(s.durationS * 1e9)
        var nextAudit = s.auditIntervalS > 0 ? start + UInt64(s.auditIntervalS * 1e9) : UInt64.max
        var nextStatus = start + UInt64(hooks.statusInterval * 1e9)
        var nextSnapshot = start + UInt64(hooks.snapshotInterval * 1e9)
        var nextSample = UInt64.max
        var lastOps: UInt64 = 0
        var lastStatusAt = start
        var watchdog = Watchdog(workers: run.workers, stallNs: UInt64(s.stallTimeoutS * 1e9), now: start,
                                gracePeriods: s.gpProbeIntervalS > 0 ? control.gracePeriods.load(ordering: .relaxed) : nil)
        if s.ops != nil { control.opsLeft.store(Int64(clamping: s.ops!), ordering: .relaxed) }
        if phase == "measuring" { nextSample = start + UInt64(s.sampleIntervalS * 1e9) }
        if threads.count < s.threads { run.signal = hooks.interruption() }

        while run.signal == 0 {
            sleepNanos(10_000_000)
            let now = monotonicNanos()
            let sig = hooks.interruption()
            if sig != 0 { run.signal = sig; break }
            if phase == "warmup" && now >= warmupEnd {
                phase = "measuring"
                run.beginMeasuring(at: now)
                deadline = now + UInt64(s.durationS * 1e9)
                nextSample = now + UInt64(s.sampleIntervalS * 1e9)
            }
            if now >= deadline { break }
            if s.ops != nil && run.workers.allSatisfy({ $0.done.load(ordering: .acquiring) }) { break }
            if !s.keepGoing && machine.violationCount > 0 { break }
            if let v = watchdog.check(now: now, gracePeriods: control.gracePeriods.load(ordering: .acquiring)) {
                run.stall = v
                break
            }
            if now >= nextAudit {
                if !pauseAll(control, workers: s.threads, timeoutNs: UInt64(s.stallTimeoutS * 1e9)) {
                    run.stuck = watchdog.stuckWorkers(now: monotonicNanos(), minimumNs: 0)
                        .filter { st in !run.workers.contains { $0.id == st.worker && $0.parked.load(ordering: .relaxed) } }
                    run.stall = Violation(kind: .stall, cpu: run.stuck.first?.worker ?? -1,
                                          detail: "workers did not reach the audit pause within \(s.stallTimeoutS) s: \(Watchdog.describe(run.stuck))")
                    break
                }
                _ = machine.audit()
                run.audits += 1
                control.clear(RunControl.pauseBit)
                let after = monotonicNanos()
                watchdog.paused(until: after)  // paused time is not a stall
                nextAudit = after + UInt64(s.auditIntervalS * 1e9)
            }
            if now >= nextSample {
                run.takeSample(now: now)
                nextSample = now + UInt64(s.sampleIntervalS * 1e9)
            }
            if let status = hooks.status, now >= nextStatus {
                let ops = run.completedNow()
                status(run.status(phase: phase, now: now,
                                  opsPerS: Double(ops &- lastOps) / (Double(now - lastStatusAt) / 1e9), started: s.threads))
                lastOps = ops
                lastStatusAt = now
                nextStatus = now + UInt64(hooks.statusInterval * 1e9)
            }
            if let snapshot = hooks.snapshot, now >= nextSnapshot {
                snapshot(run.result(phase: "running", end: now, histograms: false))
                nextSnapshot = now + UInt64(hooks.snapshotInterval * 1e9)
            }
        }
        run.end = monotonicNanos()
        if run.measureStart == 0 { run.beginMeasuring(at: run.end) }  // interrupted in warm-up
        control.set(RunControl.stopBit)

        // Stopping: every worker must leave its loop within the stall timeout.
        if run.stall == nil {
            let limit = monotonicNanos() + UInt64(s.stallTimeoutS * 1e9)
            while run.workers.contains(where: { !$0.done.load(ordering: .acquiring) }) && monotonicNanos() < limit {
                sleepNanos(5_000_000)
            }
            let stuck = run.workers.filter { !$0.done.load(ordering: .acquiring) }
            if !stuck.isEmpty {
                run.stuck = watchdog.stuckWorkers(now: monotonicNanos(), minimumNs: 0)
                    .filter { st in stuck.contains { $0.id == st.worker } }
                run.stall = Violation(kind: .stall, cpu: stuck[0].id,
                                      detail: "\(stuck.count) worker(s) did not finish their operation within \(s.stallTimeoutS) s of the stop: \(Watchdog.describe(run.stuck))")
            }
        } else if run.stuck.isEmpty {
            let now = monotonicNanos()
            run.stuck = watchdog.stuckWorkers(now: now, minimumNs: UInt64(s.stallTimeoutS * 1e9))
            if run.stuck.isEmpty { run.stuck = watchdog.readersHoldingGracePeriods(now: now) }
        }

        if let stall = run.stall {
            // Stuck threads cannot be joined and still use the machine: report
            // what we have, keep the machine alive (deliberately leaked) and
            // let the caller exit. Counts come from the workers' atomics;
            // latency percentiles only from workers that finished.
            machine.record(stall)
            _ = Unmanaged.passRetained(machine)
            for t in threads { pthread_detach(t) }
            if let probe { pthread_detach(probe) }
            run.leakCheck = "not run: the run stalled"
            return run.result(phase: "stopping", end: run.end, histograms: true)
        }
        for t in threads { joinThread(t) }
        if !run.crossCore.isEmpty, let ns = CrossCoreProbe.roundTripNanos(runS: s.warmupS + s.durationS) { run.crossCore.append(ns) }
        if let probe {
            // The probe leaves its loop after its current synchronize_rcu,
            // which never returns while a reader holds the grace period up
            // (a run that failed for another reason may also have that
            // bug): wait for it a stall timeout at most, then leave it.
            let limit = monotonicNanos() + UInt64(s.stallTimeoutS * 1e9)
            while !control.probeExited.load(ordering: .acquiring) && monotonicNanos() < limit { sleepNanos(5_000_000) }
            if control.probeExited.load(ordering: .acquiring) {
                joinThread(probe)
            } else {
                pthread_detach(probe)
                machine.record(Violation(kind: .stall, detail: "no RCU grace period completed within \(s.stallTimeoutS) s of the stop: the grace-period probe is still waiting (a read-side section was never left)"))
            }
        }

        // Final audit with everything stopped, then the complete result.
        _ = machine.audit()
        run.audits += 1
        let failed = machine.violationCount > 0
        run.captureCPUs(recent: failed || run.signal != 0)
        for w in run.workers { machine.releaseCPU(w.cpu) }
        let skipTeardown: String? = run.signal != 0 ? "not run: interrupted by signal \(run.signal)"
            : failed ? "skipped: the run failed, so the model's state cannot be trusted to tear down" : nil
        if let why = skipTeardown {
            run.leakCheck = why
            // Leaked on purpose: its deinit frees tables that a corrupted
            // model, or a worker stuck in a read-side section, may still use.
            _ = Unmanaged.passRetained(machine)
            return run.result(phase: "done", end: run.end, histograms: true)
        }
        run.leakCheck = "pending"
        hooks.snapshot?(run.result(phase: "teardown", end: run.end, histograms: true))

        // Teardown under a deadline, on a thread of its own.
        let teardownDone = Atomic<Bool>(false)
        let box = LeakBox()
        let closerThread = startThread {
            RCU.registerThread()
            let closer = machine.makeCPU(id: s.threads + 1, seed: s.seed)
            box.leaks = machine.teardown(cpu: closer).map(\.description)
            machine.releaseCPU(closer)
            RCU.unregisterThread()
            teardownDone.store(true, ordering: .releasing)
        }
        let limit = monotonicNanos() + UInt64(max(10, s.stallTimeoutS) * 1e9)
        while !teardownDone.load(ordering: .acquiring) && monotonicNanos() < limit { sleepNanos(5_000_000) }
        guard teardownDone.load(ordering: .acquiring) else {
            pthread_detach(closerThread)
            _ = Unmanaged.passRetained(machine)
            let v = Violation(kind: .stall, detail: "teardown (exit of every process, the last grace periods, leak check) did not finish within \(Int(max(10, s.stallTimeoutS))) s")
            machine.record(v)
            run.stall = v
            run.leakCheck = "not finished: teardown stalled"
            return run.result(phase: "teardown", end: run.end, histograms: true)
        }
        joinThread(closerThread)
        run.leaks = box.leaks
        run.leakCheck = box.leaks.isEmpty ? "clean" : "\(box.leaks.count) leaks"
        return run.result(phase: "done", end: run.end, histograms: true)
    }

    final class LeakBox: @unchecked Sendable { var leaks: [String] = [] }

    /// Asks every worker to park between operations; true once all did.
    static func pauseAll(_ control: RunControl, workers: Int, timeoutNs: UInt64) -> Bool {
        control.set(RunControl.pauseBit)
        // Pairs with the worker's fence after it leaves `parked` (Worker.swift).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let t0 = monotonicNanos()
        while control.parked.load(ordering: .acquiring) < workers {
            if monotonicNanos() - t0 > timeoutNs { return false }
            sleepNanos(100_000)
        }
        return true
    }
}
