import ConcurrentRmap
import StressSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Shared state of one replay between the coordinator (the calling thread),
/// the workers and the background thread.
final class ReplayControl: @unchecked Sendable {
    /// Set when the replay must end early (a violation, a stall).
    let stop = Atomic<Bool>(false)
    /// Set by the coordinator to pause everyone for an audit.
    let pause = Atomic<Bool>(false)
    /// Threads inside a batch of operations (the audit waits for 0).
    let active = Atomic<Int>(0)
    /// Workers that left their loop.
    let finished = Atomic<Int>(0)
    let backgroundStop = Atomic<Bool>(false)
    /// Opened once every thread is started: the replay's clock starts there.
    let go = Atomic<Bool>(false)
    /// The latest time a worker ran out of work.
    let lastFinish = Atomic<UInt64>(0)

    func waitForGo() { while !go.load(ordering: .acquiring) { sleepNanos(20_000) } }
    /// Opened after the end-of-replay grace-period check: the threads may
    /// unregister from RCU and end.
    let release = Atomic<Bool>(false)

    func waitForRelease() { while !release.load(ordering: .acquiring) { sleepNanos(200_000) } }
    let backgroundDone = Atomic<Bool>(false)

    /// Enters a batch of operations, waiting while an audit runs. The
    /// increment and the load are sequentially consistent, as are the
    /// coordinator's store and load in `pauseAll`, so either this thread
    /// sees the pause or the coordinator sees it active.
    @inline(__always) func enter() {
        while true {
            active.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if !pause.load(ordering: .sequentiallyConsistent) { return }
            active.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            while pause.load(ordering: .acquiring) { sleepNanos(50_000) }
        }
    }

    @inline(__always) func leave() { active.wrappingSubtract(1, ordering: .releasing) }

    /// Pauses every thread between two batches; false when they did not all
    /// get there within `timeoutNs` (a stall).
    func pauseAll(timeoutNs: UInt64) -> Bool {
        pause.store(true, ordering: .sequentiallyConsistent)
        let t0 = monotonicNanos()
        while active.load(ordering: .sequentiallyConsistent) > 0 {
            if monotonicNanos() - t0 > timeoutNs { return false }
            sleepNanos(100_000)
        }
        return true
    }

    func resume() { pause.store(false, ordering: .releasing) }
}

/// Highest figures seen by one sampling thread (racy reads of the machine's counts).
final class Peaks: @unchecked Sendable {
    var contexts = 0, vmas = 0, mms = 0, processes = 0, frames = 0, pageCache = 0

    func sample(_ m: Machine) {
        contexts = max(contexts, m.contextsInUse)
        vmas = max(vmas, m.vmasInUse)
        mms = max(mms, m.mmsInUse)
        processes = max(processes, m.processCount)
        frames = max(frames, m.framesInUse)
        pageCache = max(pageCache, m.pageCachePages)
    }

    func merge(_ o: Peaks) {
        contexts = max(contexts, o.contexts); vmas = max(vmas, o.vmas); mms = max(mms, o.mms)
        processes = max(processes, o.processes); frames = max(frames, o.frames)
        pageCache = max(pageCache, o.pageCache)
    }
}

/// One thread's watch: whether it is inside a batch and when it started it.
final class ThreadWatch: @unchecked Sendable {
    let cpu: CPU
    let name: String
    let busySince = Atomic<UInt64>(0)
    var lastProgress: UInt64 = 0
    var lastChange: UInt64 = 0
    init(cpu: CPU, name: String) { self.cpu = cpu; self.name = name }
}

/// Replays a trace on the model: `TraceReplay.run(plan, settings)`.
public enum TraceReplay {
    /// Steps a worker runs on one mm before it returns it to the queue.
    static let batch = 64

    /// Replays `plan` under `s` and returns the result (verdict, figures).
    /// Throws `Machine.ConfigError` for settings the machine refuses.
    public static func run(_ plan: ReplayPlan, settings s: ReplaySettings) throws -> ReplayResult {
        if let problem = s.validate() { throw Machine.ConfigError.invalid(problem) }
        let machine = try Machine(config: s.machineConfig)
        let control = ReplayControl()
        let queue = ReadyQueue(capacity: plan.mmCount + 1, workers: s.threads, window: s.window)
        let runner = StepRunner(machine: machine, plan: plan, settings: s, queue: queue)
        let stallNs = UInt64(s.stallTimeoutS * 1e9)
        var r = ReplayResult(plan: plan, settings: s)

        runner.seed()
        var threads: [pthread_t] = []
        var watches: [ThreadWatch] = []
        var counters: [WorkerCounters] = []
        for id in 0..<s.threads {
            let cpu = machine.makeCPU(id: id, seed: s.seed)
            let watch = ThreadWatch(cpu: cpu, name: "worker \(id)")
            let w = WorkerCounters()
            watches.append(watch)
            counters.append(w)
            threads.append(startThread {
                RCU.registerThread()
                defer { RCU.unregisterThread() }
                control.waitForGo()
                let stop = { control.stop.load(ordering: .relaxed) || (!s.keepGoing && machine.violationCount > 0) }
                while let job = queue.take(worker: id) {
                    let mm = job.mm, limit = job.limit
                    control.enter()
                    watch.busySince.store(monotonicNanos(), ordering: .relaxed)
                    let next = runner.run(mm: mm, limit: limit, batch: batch, cpu: cpu, counters: w, stop: stop)
                    watch.busySince.store(0, ordering: .relaxed)
                    control.leave()
                    queue.finish(worker: id, mm: mm, next: next)
                    if stop() {
                        control.stop.store(true, ordering: .relaxed)
                        queue.close()
                    }
                }
                let t = monotonicNanos()
                var seen = control.lastFinish.load(ordering: .relaxed)
                while t > seen {
                    let (done, now) = control.lastFinish.compareExchange(expected: seen, desired: t, ordering: .relaxed)
                    if done { break }
                    seen = now
                }
                control.finished.wrappingAdd(1, ordering: .releasing)
                // Still registered: the grace-period check below must see a
                // read-side section this thread left open.
                control.waitForRelease()
            })
        }
        // Reclaim and migration beside the replay, so that rmap walks happen.
        let bgCounters = WorkerCounters()
        let bgPeaks = Peaks()
        var background: pthread_t?
        var bgWatch: ThreadWatch?
        if s.background {
            let cpu = machine.makeCPU(id: s.threads, seed: s.seed)
            let watch = ThreadWatch(cpu: cpu, name: "background (reclaim, migration)")
            bgWatch = watch
            watches.append(watch)
            let nodes = s.machineConfig.nodes
            let low = s.frames / 4
            let pause = UInt64(s.backgroundPauseUs) * 1000
            background = startThread {
                RCU.registerThread()
                defer { RCU.unregisterThread() }
                control.waitForGo()
                var node = 0
                while !control.backgroundStop.load(ordering: .relaxed) {
                    control.enter()
                    watch.busySince.store(monotonicNanos(), ordering: .relaxed)
                    if machine.freeFrames < low {
                        cpu.pointee.note(.reclaim, mm: 0, arg: UInt32(node))
                        bgCounters.add(.backgroundReclaims)
                        bgCounters.add(.backgroundReclaimed, machine.reclaim(cpu: cpu, node: node, scan: 64, target: 16))
                        node = (node + 1) % nodes
                    }
                    cpu.pointee.note(.migrate, mm: 0, arg: 0)
                    if machine.migrate(cpu: cpu) { bgCounters.add(.backgroundMigrations) }
                    bgPeaks.sample(machine)
                    cpu.pointee.finished()
                    watch.busySince.store(0, ordering: .relaxed)
                    control.leave()
                    RCU.quiescentState()
                    if !s.keepGoing && machine.violationCount > 0 { break }
                    if pause > 0 { sleepNanos(pause) }
                }
                control.backgroundDone.store(true, ordering: .releasing)
                control.waitForRelease()
            }
        }

        // The coordinator: audits, the watchdog, the metadata peaks.
        let start = monotonicNanos()
        control.go.store(true, ordering: .releasing)
        var nextAudit = s.auditIntervalS > 0 ? start + UInt64(s.auditIntervalS * 1e9) : UInt64.max
        for w in watches { w.lastChange = start }
        let bytes = machine.rmapMetadataBytes
        let peaks = Peaks()
        func sampleMetadata() { peaks.sample(machine) }
        r.metadata.bytesPerVma = bytes.perVMA
        r.metadata.bytesPerMm = bytes.perMM
        var stall: Violation?
        while control.finished.load(ordering: .acquiring) < s.threads {
            sleepNanos(2_000_000)
            let now = monotonicNanos()
            sampleMetadata()
            if !s.keepGoing && machine.violationCount > 0 {
                control.stop.store(true, ordering: .relaxed)
                queue.close()
            }
            // Watchdog: a thread inside a batch whose CPU made no progress.
            for w in watches {
                let p = w.cpu.pointee.progress.load(ordering: .relaxed)
                if p != w.lastProgress || w.busySince.load(ordering: .relaxed) == 0 {
                    w.lastProgress = p
                    w.lastChange = now
                } else if now - w.lastChange > stallNs {
                    stall = Violation(kind: .stall, cpu: w.cpu.pointee.id,
                                      detail: "\(w.name) made no progress for \(Int(s.stallTimeoutS)) s, in \(w.cpu.pointee.currentActivity())")
                    break
                }
            }
            if stall != nil { break }
            if now >= nextAudit {
                if !control.pauseAll(timeoutNs: stallNs) {
                    let stuck = watches.filter { $0.busySince.load(ordering: .relaxed) != 0 }
                    stall = Violation(kind: .stall, cpu: stuck.first?.cpu.pointee.id ?? -1,
                                      detail: "threads did not reach the audit pause within \(Int(s.stallTimeoutS)) s: \(stuck.map { "\($0.name) in \($0.cpu.pointee.currentActivity())" }.joined(separator: ", "))")
                    break
                }
                _ = machine.audit()
                r.audits += 1
                control.resume()
                let after = monotonicNanos()
                for w in watches { w.lastChange = after }
                nextAudit = after + UInt64(s.auditIntervalS * 1e9)
            }
        }
        let replayEnd = stall == nil ? max(start, control.lastFinish.load(ordering: .acquiring)) : monotonicNanos()
        r.replaySeconds = Double(replayEnd - start) / 1e9
        control.backgroundStop.store(true, ordering: .relaxed)
        if stall == nil, background != nil {
            // The background thread ends its iteration within the stall timeout.
            let limit = monotonicNanos() + stallNs
            while !control.backgroundDone.load(ordering: .acquiring) && monotonicNanos() < limit { sleepNanos(1_000_000) }
            if !control.backgroundDone.load(ordering: .acquiring) {
                stall = Violation(kind: .stall, cpu: s.threads,
                                  detail: "the background thread did not finish its operation within \(Int(s.stallTimeoutS)) s of the end: in \(bgWatch!.cpu.pointee.currentActivity())")
            }
        }
        if stall == nil {
            // Every thread still registered, none in an operation: one grace
            // period must complete (a read-side section left open, as by a
            // forgotten rcu_read_unlock, holds it up for ever).
            let synced = Atomic<Bool>(false)
            let syncer = startThread {
                RCU.synchronize()
                synced.store(true, ordering: .releasing)
            }
            let limit = monotonicNanos() + stallNs
            while !synced.load(ordering: .acquiring) && monotonicNanos() < limit { sleepNanos(200_000) }
            if synced.load(ordering: .acquiring) {
                joinThread(syncer)
            } else {
                pthread_detach(syncer)
                let readers = watches.filter { $0.cpu.pointee.rcuDepth.load(ordering: .relaxed) > 0 }
                stall = Violation(kind: .stall, cpu: readers.first?.cpu.pointee.id ?? -1,
                                  detail: "no RCU grace period completed within \(Int(s.stallTimeoutS)) s of the end of the replay: a read-side section was never left" + (readers.isEmpty ? "" : " (by \(readers.map(\.name).joined(separator: ", ")))"))
            }
        }
        r.collect(counters + [bgCounters], cpus: watches.map(\.cpu))

        if let stall {
            // Stuck threads still use the machine: leave it and them alone.
            machine.record(stall)
            control.stop.store(true, ordering: .relaxed)
            queue.close()
            control.resume()
            control.release.store(true, ordering: .releasing)
            for t in threads { pthread_detach(t) }
            if let background { pthread_detach(background) }
            _ = Unmanaged.passRetained(machine)
            _ = Unmanaged.passRetained(runner)
            r.leakCheck = "not run: the replay stalled"
            r.recentOperations = watches.map { $0.cpu.pointee.recentOperations() }
            r.finish(machine: machine, stalled: true)
            return r
        }
        control.release.store(true, ordering: .releasing)
        for t in threads { joinThread(t) }
        if let background { joinThread(background) }

        // Final audit with everything stopped (mms alive at the trace's end
        // still run), then teardown and the leak check unless it failed.
        sampleMetadata()
        peaks.merge(bgPeaks)
        r.metadata.peakContexts = peaks.contexts
        r.metadata.peakVmas = peaks.vmas
        r.metadata.peakMms = peaks.mms
        r.metadata.peakBytes = peaks.vmas * bytes.perVMA + peaks.mms * bytes.perMM
        r.metadata.peakProcesses = peaks.processes
        r.metadata.peakFramesInUse = peaks.frames
        r.files.peakPageCachePages = peaks.pageCache
        r.metadata.finalContexts = machine.contextsInUse
        r.metadata.finalVmas = machine.vmasInUse
        r.metadata.finalMms = machine.mmsInUse
        r.metadata.finalProcesses = machine.processCount
        r.files.pageCachePagesAtEnd = machine.pageCachePages
        _ = machine.audit()
        r.audits += 1
        r.collect(counters + [bgCounters], cpus: watches.map(\.cpu))
        r.recentOperations = machine.violationCount > 0 ? watches.map { $0.cpu.pointee.recentOperations() } : nil
        for w in watches { machine.releaseCPU(w.cpu) }
        if machine.violationCount > 0 {
            // A failed model cannot be trusted to tear down.
            r.leakCheck = "skipped: the replay failed, so the model's state cannot be trusted to tear down"
            _ = Unmanaged.passRetained(machine)
            _ = Unmanaged.passRetained(runner)
            r.finish(machine: machine, stalled: false)
            return r
        }
        let leaks = RCU.withRegisteredThread { () -> [Violation] in
            let closer = machine.makeCPU(id: s.threads + 1, seed: s.seed)
            for p in runner.pinnedProcesses() { machine.unpin(p, cpu: closer) }
            let found = machine.teardown(cpu: closer)
            machine.releaseCPU(closer)
            return found
        }
        r.leaks = leaks.map(\.description)
        r.leakCheck = leaks.isEmpty ? "clean" : "\(leaks.count) leaks"
        r.finish(machine: machine, stalled: false)
        return r
    }
}
