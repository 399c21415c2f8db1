import ConcurrentRmap
import Histogram
import StressShim
import StressSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Shared control block of one run, written by the coordinator and read by
/// every worker once per operation (one line, read-mostly).
final class RunControl: @unchecked Sendable {
    static let stopBit: UInt64 = 1
    static let pauseBit: UInt64 = 2
    /// stop and pause bits, and above them the measuring epoch: bumped when
    /// the warm-up ends, so each worker resets its latency histograms.
    let word = Atomic<UInt64>(0)
    /// Workers wait here before their first operation, so that start-up of
    /// many threads is not measured.
    let start = Gate(open: false)
    /// Closed while the workers are paused for an audit (they sleep on it).
    let resume = Gate(open: true)
    /// Workers parked at the pause point or finished.
    let parked = Atomic<Int>(0)
    /// Completed operations still to do under `--ops` (claimed in chunks
    /// once measuring), or Int64.max.
    let opsLeft = Atomic<Int64>(Int64.max)
    /// Monotonic time of the first violation a worker saw, 0 if none.
    let firstViolationAt = Atomic<UInt64>(0)
    /// Grace periods the probe thread completed.
    let gracePeriods = Atomic<UInt64>(0)
    /// The probe thread left its loop (it cannot while a grace period is
    /// blocked: it sits in synchronize_rcu).
    let probeExited = Atomic<Bool>(false)

    var stopping: Bool { word.load(ordering: .relaxed) & RunControl.stopBit != 0 }

    func set(_ bit: UInt64) {
        if bit & RunControl.pauseBit != 0 { resume.close() }
        word.bitwiseOr(bit, ordering: .releasing)
        if bit & RunControl.stopBit != 0 { resume.open(); start.open() }
    }

    func clear(_ bit: UInt64) {
        word.bitwiseAnd(~bit, ordering: .releasing)
        if bit & RunControl.pauseBit != 0 { resume.open() }
    }
    func nextEpoch() { word.wrappingAdd(1 << 8, ordering: .releasing) }
}

/// One worker thread's results. Counts are atomics written only by the
/// worker (a relaxed load and store, no locked instruction) so that the
/// coordinator can read them at any time: for status lines, snapshots,
/// and the table of a run whose worker is stuck. Histograms are plain and
/// read only once the worker has finished (`done`).
final class WorkerState: @unchecked Sendable {
    let id: Int
    let cpu: CPU
    let completed: UnsafeMutablePointer<Atomic<UInt64>>
    let idle: UnsafeMutablePointer<Atomic<UInt64>>
    let timed: UnsafeMutablePointer<Atomic<UInt64>>
    /// Latency histograms per operation kind, created on first use; nil for
    /// workers beyond `Limits.timedWorkers`.
    let histograms: UnsafeMutablePointer<Histogram<UInt64>?>?
    /// Counts when this worker saw measuring begin (warm-up excluded),
    /// taken by the worker itself at the same operation boundary where it
    /// starts drawing on the `--ops` budget, so that budget and totals agree.
    let baseCompleted: UnsafeMutablePointer<Atomic<UInt64>>
    let baseIdle: UnsafeMutablePointer<Atomic<UInt64>>
    let baseEvents: UnsafeMutablePointer<Atomic<UInt64>>
    /// Set (release) when the worker has left its loop.
    let done = Atomic<Bool>(false)
    /// True while the worker is parked at an audit pause.
    let parked = Atomic<Bool>(false)
    static let ops = OpKind.allCases.count
    static let events = Event.allCases.count

    init(id: Int, cpu: CPU, keepsHistograms: Bool) {
        self.id = id
        self.cpu = cpu
        completed = CacheLine.allocate(Atomic<UInt64>.self, count: WorkerState.ops)
        idle = CacheLine.allocate(Atomic<UInt64>.self, count: WorkerState.ops)
        timed = CacheLine.allocate(Atomic<UInt64>.self, count: WorkerState.ops)
        baseCompleted = CacheLine.allocate(Atomic<UInt64>.self, count: WorkerState.ops)
        baseIdle = CacheLine.allocate(Atomic<UInt64>.self, count: WorkerState.ops)
        baseEvents = CacheLine.allocate(Atomic<UInt64>.self, count: WorkerState.events)
        for i in 0..<WorkerState.ops {
            (completed + i).initialize(to: Atomic(0))
            (idle + i).initialize(to: Atomic(0))
            (timed + i).initialize(to: Atomic(0))
            (baseCompleted + i).initialize(to: Atomic(0))
            (baseIdle + i).initialize(to: Atomic(0))
        }
        for i in 0..<WorkerState.events { (baseEvents + i).initialize(to: Atomic(0)) }
        if keepsHistograms {
            let h = CacheLine.allocate(Histogram<UInt64>?.self, count: WorkerState.ops)
            h.initialize(repeating: nil, count: WorkerState.ops)
            histograms = h
        } else {
            histograms = nil
        }
    }

    deinit {
        completed.deinitialize(count: WorkerState.ops); completed.deallocate()
        idle.deinitialize(count: WorkerState.ops); idle.deallocate()
        timed.deinitialize(count: WorkerState.ops); timed.deallocate()
        baseCompleted.deinitialize(count: WorkerState.ops); baseCompleted.deallocate()
        baseIdle.deinitialize(count: WorkerState.ops); baseIdle.deallocate()
        baseEvents.deinitialize(count: WorkerState.events); baseEvents.deallocate()
        if let histograms { histograms.deinitialize(count: WorkerState.ops); histograms.deallocate() }
    }

    @inline(__always) static func bump(_ p: UnsafeMutablePointer<Atomic<UInt64>>, _ i: Int) {
        p[i].store(p[i].load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    static func newHistogram() -> Histogram<UInt64> {
        // 100 s at two significant digits: about 32 KiB per operation kind.
        Histogram<UInt64>(highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .two)
    }

    @inline(__always) func record(_ op: Int, _ ns: UInt64) {
        guard let histograms else { return }
        if histograms[op] == nil { histograms[op] = WorkerState.newHistogram() }
        _ = histograms[op]!.record(min(ns, 100_000_000_000))
        WorkerState.bump(timed, op)
    }

    /// Measuring begins (seen by this worker): what was counted so far
    /// belongs to the warm-up.
    func beginMeasuring() {
        for i in 0..<WorkerState.ops {
            baseCompleted[i].store(completed[i].load(ordering: .relaxed), ordering: .relaxed)
            baseIdle[i].store(idle[i].load(ordering: .relaxed), ordering: .relaxed)
            timed[i].store(0, ordering: .relaxed)
        }
        for e in Event.allCases { baseEvents[e.rawValue].store(cpu.pointee.eventCount(e), ordering: .relaxed) }
        if let histograms {
            for i in 0..<WorkerState.ops where histograms[i] != nil { histograms[i]!.reset() }
        }
    }
}

/// The loop each worker thread runs.
enum WorkerLoop {
    /// Completed operations a worker claims from the `--ops` budget at once.
    static let opsChunk: Int64 = 256

    static func run(machine: Machine, workload: Workload, state w: WorkerState, table: [OpKind],
                    control: RunControl, settings s: RunSettings) {
        RCU.registerThread()
        defer { RCU.unregisterThread() }
        if s.pin { _ = crm_pin_thread_to_cpu(HostInfo.pinnedCPU(slot: s.pinFirst + w.id)) }
        let cpu = w.cpu
        control.start.wait()
        let sample = s.latencySample
        var countdown = sample > 0 ? 1 + w.id % sample : Int.max  // staggered start
        var epoch: UInt64 = 0
        var budget: Int64 = 0
        let limited = s.ops != nil
        table.withUnsafeBufferPointer { ops in
            while true {
                let word = control.word.load(ordering: .acquiring)
                if word & RunControl.stopBit != 0 { break }
                if word & RunControl.pauseBit != 0 {
                    // qsbr: an offline thread does not hold up grace periods.
                    RCU.threadOffline()
                    w.parked.store(true, ordering: .relaxed)
                    control.parked.wrappingAdd(1, ordering: .releasing)
                    control.resume.wait()
                    control.parked.wrappingSubtract(1, ordering: .relaxed)
                    // Store-buffering with pauseAll (it sets the pause bit,
                    // then reads `parked`; we drop `parked`, then read the
                    // bit): with a seq_cst fence on each side, C11 forbids
                    // both reading the old value, so either it waits for us
                    // or we see the next pause. Without them, a weakly
                    // ordered CPU (aarch64) could run an operation during
                    // an audit. Off the per-operation path.
                    atomicMemoryFence(ordering: .sequentiallyConsistent)
                    w.parked.store(false, ordering: .relaxed)
                    RCU.threadOnline()
                    continue
                }
                if word >> 8 != epoch {
                    epoch = word >> 8
                    w.beginMeasuring()
                }
                if limited && epoch > 0 && budget == 0 {
                    let before = control.opsLeft.wrappingSubtract(opsChunk, ordering: .relaxed).oldValue
                    if before <= 0 { break }
                    budget = min(opsChunk, before)
                }
                let op = ops[Int(cpu.pointee.randomOperation() >> 54)]
                countdown -= 1
                let did: Bool
                if countdown == 0 {
                    countdown = sample
                    let t0 = monotonicNanos()
                    did = workload.perform(op, on: machine, cpu: cpu)
                    w.record(op.rawValue, monotonicNanos() &- t0)
                } else {
                    did = workload.perform(op, on: machine, cpu: cpu)
                }
                if did {
                    WorkerState.bump(w.completed, op.rawValue)
                    if limited && epoch > 0 { budget -= 1 }
                } else {
                    WorkerState.bump(w.idle, op.rawValue)
                }
                cpu.pointee.finished()
                RCU.quiescentState()
                if machine.violationCount > 0 {
                    _ = control.firstViolationAt.compareExchange(expected: 0, desired: monotonicNanos(), ordering: .relaxed)
                    if !s.keepGoing { break }
                }
            }
        }
        // Return what is left of a claimed chunk, so the budget ends exact.
        if budget > 0 { control.opsLeft.wrappingAdd(budget, ordering: .relaxed) }
        // Finished workers count as parked so a pause never waits for them.
        RCU.threadOffline()
        control.parked.wrappingAdd(1, ordering: .releasing)
        w.done.store(true, ordering: .releasing)
    }
}
