import ConcurrentRmap
import Histogram
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// What the coordinator accumulates during one run, and how it becomes a
/// `StressResult`: baselines taken when measuring starts (the warm-up is
/// not counted), interval samples, and the figures read from the workers.
struct Run {
    let settings: RunSettings
    let machine: Machine
    let control: RunControl
    let wallStart: UInt64
    let rcuBefore: UInt64
    var workers: [WorkerState] = []
    var startupS = 0.0
    /// When the workers were let go.
    var goAt: UInt64 = 0
    var measureStart: UInt64 = 0
    var end: UInt64 = 0
    var audits = 0
    var signal: Int32 = 0
    var stall: Violation?
    var stuck: [StalledWorker] = []
    var leaks: [String] = []
    var leakCheck = "pending"
    var samples: [IntervalSample] = []
    /// Cross-core round trips (ns) before the workers started and after they stopped.
    var crossCore: [Double] = []

    /// Events and recent operations read before the CPUs were released.
    private var finalEvents: [[UInt64]]?
    private var finalRecent: [[String]]?
    private var lastSampleAt: UInt64 = 0
    private var lastSampleOps: UInt64 = 0
    private var lastSampleWalks: UInt64 = 0
    private var lastSampleVisited: UInt64 = 0

    init(settings: RunSettings, machine: Machine, control: RunControl, wallStart: UInt64,
         rcuBefore: UInt64) {
        self.settings = settings
        self.machine = machine
        self.control = control
        self.wallStart = wallStart
        self.rcuBefore = rcuBefore
    }

    private static let events = Event.allCases

    private func liveEvents(_ w: WorkerState) -> [UInt64] { Run.events.map { w.cpu.pointee.eventCount($0) } }

    /// Measuring starts now: each worker takes its own baseline when it
    /// sees the new epoch (see `WorkerState.beginMeasuring`).
    mutating func beginMeasuring(at t: UInt64) {
        measureStart = t
        lastSampleAt = t
        lastSampleOps = 0
        lastSampleWalks = 0
        lastSampleVisited = 0
        control.nextEpoch()
    }

    func completed(_ op: Int) -> UInt64 {
        var n: UInt64 = 0
        for w in workers { n &+= w.completed[op].load(ordering: .relaxed) &- w.baseCompleted[op].load(ordering: .relaxed) }
        return n
    }

    func idle(_ op: Int) -> UInt64 {
        var n: UInt64 = 0
        for w in workers { n &+= w.idle[op].load(ordering: .relaxed) &- w.baseIdle[op].load(ordering: .relaxed) }
        return n
    }

    /// Completed operations since measuring began (or since start).
    func completedNow() -> UInt64 { (0..<WorkerState.ops).reduce(0) { $0 &+ completed($1) } }

    func event(_ e: Event) -> UInt64 {
        let k = e.rawValue
        var n: UInt64 = 0
        for (i, w) in workers.enumerated() {
            let now = finalEvents?[i][k] ?? w.cpu.pointee.eventCount(e)
            n &+= now &- w.baseEvents[k].load(ordering: .relaxed)
        }
        return n
    }

    /// Reads what lives in the CPUs, before they are released.
    mutating func captureCPUs(recent: Bool) {
        finalEvents = workers.map(liveEvents)
        if recent { finalRecent = workers.map { $0.cpu.pointee.recentOperations() } }
    }

    mutating func takeSample(now: UInt64) {
        let ops = completedNow()
        let walks = event(.rmapWalk), visited = event(.walkVisited)
        let fam = machine.familyStats()
        let dt = Double(now - lastSampleAt) / 1e9
        let dw = walks &- lastSampleWalks
        samples.append(IntervalSample(
            t: Double(now - measureStart) / 1e9,
            opsPerS: dt > 0 ? Double(ops &- lastSampleOps) / dt : 0,
            framesInUse: machine.framesInUse, processes: machine.processCount,
            families: fam.count, meanFamilySize: fam.mean, maxFamilySize: fam.max,
            visitedPerWalk: dw > 0 ? Double(visited &- lastSampleVisited) / Double(dw) : 0))
        lastSampleAt = now
        lastSampleOps = ops
        lastSampleWalks = walks
        lastSampleVisited = visited
    }

    func status(phase: String, now: UInt64, opsPerS: Double, started: Int) -> StatusSnapshot {
        StatusSnapshot(phase: phase, elapsed: Double(now - wallStart) / 1e9, opsPerS: opsPerS,
                       processes: machine.processCount, framesInUse: machine.framesInUse, frames: settings.frames,
                       swapInUse: machine.swapSlotsInUse, audits: audits, violations: machine.violationCount,
                       workersStarted: started, workers: settings.threads)
    }

    /// The result as far as the run got. `histograms`: merge latency
    /// histograms (only of workers that finished; a running worker's
    /// histograms are its own until then).
    func result(phase: String, end: UInt64, histograms: Bool) -> StressResult {
        let s = settings
        let elapsed = max(Double(end - measureStart) / 1e9, 1e-9)
        var ops: [String: OpStats] = [:]
        var total: UInt64 = 0, totalIdle: UInt64 = 0
        let mix = (try? s.operationMix())?.weights ?? []
        for op in OpKind.allCases {
            let i = op.rawValue
            let c = completed(i), id = idle(i)
            total &+= c
            totalIdle &+= id
            guard (i < mix.count && mix[i] > 0) || c > 0 || id > 0 else { continue }
            var h = WorkerState.newHistogram()
            var timed: UInt64 = 0
            if histograms {
                for w in workers where w.done.load(ordering: .acquiring) {
                    if let hs = w.histograms, let wh = hs[i] { h.add(wh) }
                    timed &+= w.timed[i].load(ordering: .relaxed)
                }
            }
            let any = timed > 0
            ops[op.name] = OpStats(completed: c, idle: id, perS: Double(c) / elapsed, timed: timed,
                                   p50Ns: any ? h.valueAtPercentile(50) : 0, p99Ns: any ? h.valueAtPercentile(99) : 0,
                                   p999Ns: any ? h.valueAtPercentile(99.9) : 0, maxNs: any ? h.max : 0)
        }
        var events: [String: UInt64] = [:]
        for e in Event.allCases { events[e.name] = event(e) }
        let walks = event(.rmapWalk)
        let violations = machine.violations.map(ViolationRecord.init)
        var byKind: [String: Int] = [:]
        for k in ViolationKind.allCases where machine.violationCount(k) > 0 { byKind[k.rawValue] = machine.violationCount(k) }
        let failed = machine.violationCount > 0 || !leaks.isEmpty
        let verdict: String, exitStatus: Int32
        if phase == "running" {
            verdict = Verdict.running; exitStatus = -1
        } else if signal != 0 {
            verdict = Verdict.interrupted; exitStatus = 128 + signal
        } else if stall != nil {
            verdict = Verdict.stall; exitStatus = 3
        } else if failed {
            verdict = Verdict.failure; exitStatus = 1
        } else {
            verdict = Verdict.success; exitStatus = 0
        }
        let wall = Double(monotonicNanos() - wallStart) / 1e9
        let asked = s.warmupS + (s.ops == nil ? s.durationS : elapsed)
        let overrun = wall - asked
        var notes: [String] = []
        if phase != "running" && overrun > 1 {
            notes.append(String(format: "the run took %.1f s for the %.1f s it asked for (start-up %.1f s, the rest stopping, auditing and tearing down)",
                                wall, asked, startupS))
        }
        if s.threads > Limits.timedWorkers {
            notes.append("latency percentiles come from the first \(Limits.timedWorkers) workers; the others only count")
        }
        if s.latencySample > 1 { notes.append("latency: one operation in \(s.latencySample) timed") }
        if crossCore.count == 2, let lo = crossCore.min(), let hi = crossCore.max(), hi > 2 * lo {
            // See CrossCoreProbe: the machine moved its CPUs during the run.
            notes.append(String(format: "the cross-core round trip went from %.0f ns to %.0f ns during the run: the figures mix two placements of the CPUs (see cross_core_round_trip_ns)",
                                crossCore[0], crossCore[1]))
        }
        let steady = SteadyState.judge(samples)
        if let steady, !steady.steady {
            notes.append(String(format: "not steady: second half against first half: rate %+.1f%%, family size %+.1f%%, frames in use %+.1f%% (limit ±%.0f%%)",
                                steady.rateDriftPercent, steady.familySizeDriftPercent, steady.framesDriftPercent, steady.limitPercent))
        }
        let first = control.firstViolationAt.load(ordering: .relaxed)
        return StressResult(
            settings: s, phase: phase, verdict: verdict, exitStatus: exitStatus, signal: signal != 0 ? signal : nil,
            elapsedS: elapsed, warmupS: Double(measureStart &- min(measureStart, goAt)) / 1e9,
            wallS: wall, overrunS: overrun > 1 && phase != "running" ? overrun : nil,
            ops: ops, totalCompleted: total, totalIdle: totalIdle, opsPerS: Double(total) / elapsed,
            walks: WalkStats(count: walks, visitedPerWalk: walks > 0 ? Double(event(.walkVisited)) / Double(walks) : 0,
                             wastedPerWalk: walks > 0 ? Double(event(.walkWasted)) / Double(walks) : 0,
                             trylockFailures: event(.walkTrylockFail)),
            events: events,
            rcuStats: RCUStats(gracePeriods: RCU.synchronizeCount - rcuBefore),
            audits: audits, samples: samples, steadyState: steady, violations: violations, violationsByKind: byKind,
            leaks: leaks, leakCheck: leakCheck,
            firstViolationS: first > 0 ? Double(first &- min(first, goAt)) / 1e9 : nil,
            recentOperations: verdict == Verdict.success || verdict == Verdict.running ? nil
                : (finalRecent ?? workers.map { $0.cpu.pointee.recentOperations() }),
            stalledWorkers: stuck.isEmpty ? nil : stuck,
            crossCoreRoundTripNs: crossCore.isEmpty ? nil : crossCore, notes: notes)
    }
}
