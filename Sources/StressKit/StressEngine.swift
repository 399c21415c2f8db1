import ConcurrentRmap
import Histogram
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A one-second view of a running stress test, for the status line.
public struct StatusSnapshot: Sendable {
    public var elapsed: Double
    public var opsPerS: Double
    public var processes: Int
    public var framesInUse: Int
    public var frames: Int
    public var swapInUse: Int
    public var audits: Int
    public var violations: Int
}

/// Shared control block of one run. Workers read `stop` and `pause` once
/// per operation; the coordinator writes them.
final class RunControl: @unchecked Sendable {
    let stop = Atomic<Bool>(false)
    let pause = Atomic<Bool>(false)
    /// Workers parked at the pause point or finished.
    let parked = Atomic<Int>(0)
    /// Monotonic time of the first violation a worker saw, 0 if none.
    let firstViolationAt = Atomic<UInt64>(0)
    /// Grace periods the probe thread completed.
    let gracePeriods = Atomic<UInt64>(0)
}

/// One worker's private results, read by the coordinator after the join.
final class WorkerResults: @unchecked Sendable {
    /// Latency histograms per operation. A pointer, not an array property
    /// of this class: recording then needs no exclusivity check per operation.
    let histograms = CacheLine.allocate(Histogram<UInt64>.self, count: OpKind.allCases.count)
    /// Attempts and idle attempts per operation, on cache lines of their own
    /// (two workers' small arrays side by side in the heap would bounce).
    let counts = CacheLine.allocate(UInt64.self, count: OpKind.allCases.count)
    let idle = CacheLine.allocate(UInt64.self, count: OpKind.allCases.count)
    /// Set (release) when the worker has left its loop: only then may the
    /// coordinator read the fields above without joining it (stall path).
    let done = Atomic<Bool>(false)
    deinit {
        histograms.deinitialize(count: OpKind.allCases.count)
        histograms.deallocate()
        counts.deallocate()
        idle.deallocate()
    }
    init() {
        counts.initialize(repeating: 0, count: OpKind.allCases.count)
        idle.initialize(repeating: 0, count: OpKind.allCases.count)
        for i in 0..<OpKind.allCases.count {
            (histograms + i).initialize(to: Histogram<UInt64>(highestTrackableValue: 600_000_000_000,
                                                             numberOfSignificantValueDigits: .two))
        }
    }
}

/// Runs worker threads against one `Machine` and turns what they did into
/// a `StressResult`: the stress tool's engine, without any I/O of its own.
///
/// The coordinator (the calling thread) starts the workers and a
/// grace-period probe, then every 10 ms: stops at the deadline or at the
/// first violation (unless keep-going), pauses the workers for a full audit
/// every `auditInterval`, reports status, and watches for stalls. At the
/// end it joins the workers, captures their recent operations, releases
/// their CPUs and runs the teardown leak check.
public enum StressEngine {
    public static func run(_ o: StressOptions, status: ((StatusSnapshot) -> Void)? = nil) throws -> StressResult {
        if let problem = o.validate() { throw Machine.ConfigError.invalid(problem) }
        guard RCU.select(o.rcu) else { throw Machine.ConfigError.invalid("cannot switch RCU flavor while threads are registered") }
        let machine = try Machine(config: o.machine)
        let control = RunControl()
        let table = o.mix.table()
        let gcBefore = (RCU.synchronizeCount, RCU.callbacksQueued, RCU.callbacksRun)

        // Seed the machine with a few processes so work starts at once.
        RCU.registerThread()
        let boot = machine.makeCPU(id: o.threads, seed: o.seed)
        for _ in 0..<min(4, o.machine.maxProcesses) { _ = machine.spawn(cpu: boot) }
        machine.releaseCPU(boot)
        RCU.unregisterThread()

        var cpus: [CPU] = []
        var results: [WorkerResults] = []
        for id in 0..<o.threads {
            cpus.append(machine.makeCPU(id: id, seed: o.seed))
            results.append(WorkerResults())
        }
        let start = monotonicNanos()
        var threads: [pthread_t] = []
        for id in 0..<o.threads {
            let cpu = cpus[id], res = results[id]
            let keepGoing = o.keepGoing
            threads.append(startThread {
                worker(machine: machine, cpu: cpu, table: table, control: control, results: res, keepGoing: keepGoing)
            })
        }
        // Grace-period probe: keeps synchronize_rcu running so the watchdog
        // can see a stuck grace period. Not registered (it reads nothing).
        let probe = startThread {
            while !control.stop.load(ordering: .acquiring) {
                RCU.synchronize()
                control.gracePeriods.add(1, ordering: .releasing)
                sleepNanos(5_000_000)
            }
        }

        var audits = 0
        var stalled: Violation?
        let deadline = start + UInt64(o.duration * 1e9)
        var nextAudit = o.auditInterval > 0 ? start + UInt64(o.auditInterval * 1e9) : UInt64.max
        var nextStatus = start + UInt64(o.statusInterval * 1e9)
        var lastOps: UInt64 = 0
        var lastStatusAt = start
        var lastProgress = cpus.map { $0.pointee.progress.load(ordering: .relaxed) }
        var lastProgressAt = [UInt64](repeating: start, count: o.threads)
        var lastGP = control.gracePeriods.load(ordering: .relaxed)
        var lastGPAt = start
        let stallNs = UInt64(o.stallTimeout * 1e9)

        while true {
            sleepNanos(10_000_000)
            let now = monotonicNanos()
            if now >= deadline { break }
            if !o.keepGoing && machine.violationCount > 0 { break }
            // Watchdog: each worker and the grace-period probe must move.
            for i in 0..<o.threads {
                let p = cpus[i].pointee.progress.load(ordering: .relaxed)
                if p != lastProgress[i] { lastProgress[i] = p; lastProgressAt[i] = now }
                else if now - lastProgressAt[i] > stallNs && stalled == nil {
                    stalled = Violation(kind: .stall, cpu: i,
                                        detail: "worker \(i) made no progress for \(o.stallTimeout) s (last op: \(cpus[i].pointee.recentOperations().last ?? "none"))")
                }
            }
            let gp = control.gracePeriods.load(ordering: .acquiring)
            if gp != lastGP { lastGP = gp; lastGPAt = now }
            else if now - lastGPAt > stallNs && stalled == nil {
                stalled = Violation(kind: .stall, detail: "no RCU grace period completed for \(o.stallTimeout) s")
            }
            if stalled != nil { break }

            if now >= nextAudit {
                if !pauseAll(control, workers: o.threads, timeoutNs: stallNs) {
                    stalled = Violation(kind: .stall, detail: "workers did not reach the audit pause within \(o.stallTimeout) s")
                    break
                }
                _ = machine.audit()
                audits += 1
                control.pause.store(false, ordering: .releasing)
                // Paused time is not a stall.
                let after = monotonicNanos()
                for i in 0..<o.threads { lastProgressAt[i] = after }
                lastGPAt = after
                nextAudit = after + UInt64(o.auditInterval * 1e9)
            }
            if let status, now >= nextStatus {
                let ops = cpus.reduce(0) { $0 + $1.pointee.progress.load(ordering: .relaxed) }
                status(StatusSnapshot(
                    elapsed: Double(now - start) / 1e9,
                    opsPerS: Double(ops - lastOps) / (Double(now - lastStatusAt) / 1e9),
                    processes: machine.processCount, framesInUse: machine.framesInUse, frames: o.machine.frames,
                    swapInUse: machine.swapSlotsInUse, audits: audits, violations: machine.violationCount))
                lastOps = ops
                lastStatusAt = now
                nextStatus = now + UInt64(o.statusInterval * 1e9)
            }
        }
        let end = monotonicNanos()
        control.stop.store(true, ordering: .releasing)
        control.pause.store(false, ordering: .releasing)

        if let stalled {
            // Stuck threads cannot be joined: report what we have and let
            // the caller exit. The machine is deliberately leaked, since the
            // stuck threads still use it. Figures read here from workers
            // that are still running are approximate.
            _ = Unmanaged.passRetained(machine)
            machine.record(stalled)
            // Give the workers that are not stuck a moment to leave their
            // loops, count only those, and detach every thread (the stuck
            // ones will never be joined).
            let waitUntil = monotonicNanos() + 2_000_000_000
            while results.contains(where: { !$0.done.load(ordering: .acquiring) }) && monotonicNanos() < waitUntil {
                sleepNanos(10_000_000)
            }
            let finished = results.filter { $0.done.load(ordering: .acquiring) }
            for t in threads { pthread_detach(t) }
            pthread_detach(probe)
            let recent = cpus.map { $0.pointee.recentOperations() }
            return makeResult(o, machine: machine, cpus: cpus, results: finished, elapsed: Double(end - start) / 1e9,
                              audits: audits, leaks: [], gc: gcBefore, firstViolationAt: control.firstViolationAt.load(ordering: .relaxed),
                              start: start, recent: recent, stalled: true)
        }
        for t in threads { joinThread(t) }
        joinThread(probe)
        // Final audit with everything stopped, then teardown and leak check.
        _ = machine.audit()
        audits += 1
        let failedSoFar = machine.violationCount > 0
        let recent = failedSoFar ? cpus.map { $0.pointee.recentOperations() } : nil
        let result0 = makeResult(o, machine: machine, cpus: cpus, results: results, elapsed: Double(end - start) / 1e9,
                                 audits: audits, leaks: [], gc: gcBefore, firstViolationAt: control.firstViolationAt.load(ordering: .relaxed),
                                 start: start, recent: recent, stalled: false)
        for c in cpus { machine.releaseCPU(c) }
        RCU.registerThread()
        let closer = machine.makeCPU(id: o.threads + 1, seed: o.seed)
        let leaks = machine.teardown(cpu: closer)
        machine.releaseCPU(closer)
        RCU.unregisterThread()
        var result = result0
        result.leaks = leaks.map(\.description)
        result.violations = machine.violations.map(ViolationRecord.init)
        result.violationsByKind = byKind(machine)
        result.rcuStats = RCUStats(gracePeriods: RCU.synchronizeCount - gcBefore.0,
                                   callbacksQueued: RCU.callbacksQueued - gcBefore.1,
                                   callbacksRun: RCU.callbacksRun - gcBefore.2)
        let failed = machine.violationCount > 0
        result.verdict = failed ? "FAILURE" : "SUCCESS"
        result.exitStatus = failed ? 1 : 0
        return result
    }

    /// Asks every worker to park between operations; true once all did.
    static func pauseAll(_ control: RunControl, workers: Int, timeoutNs: UInt64) -> Bool {
        control.pause.store(true, ordering: .releasing)
        let t0 = monotonicNanos()
        while control.parked.load(ordering: .acquiring) < workers {
            if monotonicNanos() - t0 > timeoutNs { return false }
            sleepNanos(100_000)
        }
        return true
    }

    static func worker(machine: Machine, cpu: CPU, table: [OpKind], control: RunControl, results: WorkerResults,
                       keepGoing: Bool) {
        RCU.registerThread()
        defer { RCU.unregisterThread() }
        table.withUnsafeBufferPointer { ops in
            while !control.stop.load(ordering: .relaxed) {
                if control.pause.load(ordering: .acquiring) {
                    // qsbr: an offline thread does not hold up grace periods.
                    RCU.threadOffline()
                    control.parked.add(1, ordering: .releasing)
                    while control.pause.load(ordering: .acquiring) { sleepNanos(50_000) }
                    control.parked.subtract(1, ordering: .relaxed)
                    RCU.threadOnline()
                    continue
                }
                let op = ops[Int(cpu.pointee.randomOperation() >> 54)]
                let t0 = monotonicNanos()
                let did = machine.perform(op, cpu: cpu)
                let dt = monotonicNanos() &- t0
                _ = results.histograms[op.rawValue].record(dt)
                results.counts[op.rawValue] &+= 1
                if !did { results.idle[op.rawValue] &+= 1 }
                cpu.pointee.finished()
                RCU.quiescentState()
                if machine.violationCount > 0 {
                    _ = control.firstViolationAt.compareExchange(expected: 0, desired: monotonicNanos(), ordering: .relaxed)
                    if !keepGoing { break }
                }
            }
        }
        // Finished workers count as parked so a pause never waits for them.
        RCU.threadOffline()
        control.parked.add(1, ordering: .releasing)
        results.done.store(true, ordering: .releasing)
    }

    static func byKind(_ m: Machine) -> [String: Int] {
        var d: [String: Int] = [:]
        for k in ViolationKind.allCases where m.violationCount(k) > 0 { d[k.rawValue] = m.violationCount(k) }
        return d
    }

    static func makeResult(_ o: StressOptions, machine: Machine, cpus: [CPU], results: [WorkerResults], elapsed: Double,
                           audits: Int, leaks: [String], gc: (UInt64, UInt64, UInt64), firstViolationAt: UInt64,
                           start: UInt64, recent: [[String]]?, stalled: Bool) -> StressResult {
        var ops: [String: OpStats] = [:]
        var total: UInt64 = 0
        for op in OpKind.allCases {
            var h = Histogram<UInt64>(highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .two)
            var count: UInt64 = 0, idle: UInt64 = 0
            for r in results {
                h.add(r.histograms[op.rawValue]); count += r.counts[op.rawValue]; idle += r.idle[op.rawValue]
            }
            total += count
            guard o.mix.weights[op.rawValue] > 0 || count > 0 else { continue }
            ops[op.name] = OpStats(count: count, perS: Double(count) / elapsed, idle: idle,
                                   p50Ns: count > 0 ? h.valueAtPercentile(50) : 0,
                                   p99Ns: count > 0 ? h.valueAtPercentile(99) : 0,
                                   p999Ns: count > 0 ? h.valueAtPercentile(99.9) : 0,
                                   maxNs: count > 0 ? h.max : 0)
        }
        var events: [String: UInt64] = [:]
        for e in Event.allCases { events[e.name] = cpus.reduce(0) { $0 + $1.pointee.eventCount(e) } }
        let walks = events[Event.rmapWalk.name] ?? 0
        let failed = machine.violationCount > 0
        return StressResult(
            threads: o.threads, durationS: elapsed, seed: o.seed, rcu: o.rcu.rawValue, sync: o.machine.sync.rawValue,
            checks: o.machine.checks.rawValue, injection: o.machine.injection.rawValue, perturb: o.machine.perturb,
            mix: o.mix.description, frames: o.machine.frames, swapSlots: o.machine.swapSlots,
            maxProcesses: o.machine.maxProcesses, ops: ops, totalOps: total, opsPerS: Double(total) / elapsed,
            walks: WalkStats(count: walks,
                             mmsPerWalk: walks > 0 ? Double(events[Event.walkMMsVisited.name] ?? 0) / Double(walks) : 0,
                             trylockFailures: events[Event.walkTrylockFail.name] ?? 0),
            mremapCopies: events[Event.mremapCopy.name] ?? 0, mremapMoves: events[Event.mremapMove.name] ?? 0,
            pagesReclaimed: events[Event.swapOut.name] ?? 0, pagesSwappedIn: events[Event.swapIn.name] ?? 0,
            pagesMigrated: events[Event.migrated.name] ?? 0, events: events,
            rcuStats: RCUStats(gracePeriods: RCU.synchronizeCount - gc.0, callbacksQueued: RCU.callbacksQueued - gc.1,
                               callbacksRun: RCU.callbacksRun - gc.2),
            audits: audits, violations: machine.violations.map(ViolationRecord.init),
            violationsByKind: byKind(machine), leaks: leaks,
            verdict: stalled ? "STALL" : (failed ? "FAILURE" : "SUCCESS"),
            exitStatus: stalled ? 3 : (failed ? 1 : 0),
            firstViolationS: firstViolationAt > 0 ? Double(firstViolationAt - start) / 1e9 : nil,
            recentOperations: recent)
    }
}
