import ConcurrentRmap
import Foundation
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// Progress watchdog (invariant 7): every worker must finish an operation,
/// and the grace-period probe must complete a grace period, within the
/// stall timeout. A stall names each stuck worker, the operation it is in
/// and for how long, and a CPU that holds an RCU read-side section open
/// (which is what stops grace periods).
struct Watchdog {
    let workers: [WorkerState]
    let stallNs: UInt64
    private var lastProgress: [UInt64]
    private var lastProgressAt: [UInt64]
    private var lastGP: UInt64?
    private var lastGPAt: UInt64
    /// Per worker: the read-side section it was seen inside (its
    /// `rcuEnteredAt`), and since when.
    private var readerSeen: [(entered: UInt64, since: UInt64)?]

    init(workers: [WorkerState], stallNs: UInt64, now: UInt64, gracePeriods: UInt64?) {
        self.workers = workers
        self.stallNs = stallNs
        lastProgress = workers.map { $0.cpu.pointee.progress.load(ordering: .relaxed) }
        lastProgressAt = Array(repeating: now, count: workers.count)
        lastGP = gracePeriods
        lastGPAt = now
        readerSeen = Array(repeating: nil, count: workers.count)
    }

    /// Time workers spent parked for an audit is not a worker stall. It
    /// does not excuse a grace period: parked workers are outside every
    /// read-side section (offline, under qsbr), so grace periods go on.
    mutating func paused(until now: UInt64) {
        for i in lastProgressAt.indices { lastProgressAt[i] = now }
    }

    /// A stall, or nil.
    mutating func check(now: UInt64, gracePeriods: UInt64) -> Violation? {
        for (i, w) in workers.enumerated() {
            let p = w.cpu.pointee.progress.load(ordering: .relaxed)
            if p != lastProgress[i] { lastProgress[i] = p; lastProgressAt[i] = now }
            let depth = w.cpu.pointee.rcuDepth.load(ordering: .relaxed)
            let entered = w.cpu.pointee.rcuEnteredAt.load(ordering: .relaxed)
            if depth > 0 {
                if readerSeen[i]?.entered != entered { readerSeen[i] = (entered, now) }
            } else {
                readerSeen[i] = nil
            }
        }
        let stuck = stuckWorkers(now: now, minimumNs: stallNs)
        if !stuck.isEmpty {
            return Violation(kind: .stall, cpu: stuck[0].worker,
                             detail: "\(stuck.count) worker(s) made no progress for \(seconds(stallNs)) s: \(Watchdog.describe(stuck))")
        }
        if let last = lastGP {
            if gracePeriods != last { lastGP = gracePeriods; lastGPAt = now }
            else if now - lastGPAt > stallNs {
                return Violation(kind: .stall, cpu: longestReader(now: now)?.worker ?? -1,
                                 detail: "no RCU grace period completed for \(seconds(stallNs)) s; \(readersDescription(now: now))")
            }
        }
        return nil
    }

    /// Workers whose last finished operation is at least `minimumNs` old.
    func stuckWorkers(now: UInt64, minimumNs: UInt64) -> [StalledWorker] {
        var out: [StalledWorker] = []
        for (i, w) in workers.enumerated() where !w.done.load(ordering: .acquiring) {
            let age = now &- lastProgressAt[i]
            guard age >= minimumNs else { continue }
            out.append(StalledWorker(worker: w.id, operation: w.cpu.pointee.currentActivity(),
                                     stuckForS: Double(age) / 1e9))
        }
        return out
    }

    /// Workers seen inside one read-side section, as stuck workers: the
    /// ones that hold a grace period up. Used when the stall is a grace
    /// period's, since such a reader may have entered after the last grace
    /// period ended and so be younger than the stall timeout.
    func readersHoldingGracePeriods(now: UInt64) -> [StalledWorker] {
        readerSeen.enumerated().compactMap { i, r -> StalledWorker? in
            guard let r, !workers[i].done.load(ordering: .acquiring) else { return nil }
            return StalledWorker(worker: workers[i].id,
                                 operation: workers[i].cpu.pointee.currentActivity(),
                                 stuckForS: Double(now &- min(r.since, lastProgressAt[i])) / 1e9)
        }
    }

    private func longestReader(now: UInt64) -> (worker: Int, seconds: Double)? {
        var best: (Int, Double)?
        for (i, r) in readerSeen.enumerated() {
            guard let r else { continue }
            let s = Double(now &- r.since) / 1e9
            if best == nil || s > best!.1 { best = (workers[i].id, s) }
        }
        return best
    }

    private func readersDescription(now: UInt64) -> String {
        let held = readerSeen.enumerated().compactMap { i, r -> String? in
            guard let r else { return nil }
            let w = workers[i]
            let ops = w.cpu.pointee.progress.load(ordering: .relaxed) &- r.entered
            return "worker \(w.id) has been inside one RCU read-side section for \(f1(Double(now &- r.since) / 1e9)) s "
                + "(entered \(ops) operations ago; last operation \(w.cpu.pointee.recentOperations().last ?? "none"))"
        }
        return held.isEmpty ? "no worker is inside a read-side section (the probe or liburcu itself is stuck)"
            : held.joined(separator: "; ")
    }

    static func describe(_ stuck: [StalledWorker]) -> String {
        stuck.prefix(8).map { "worker \($0.worker) in \($0.operation) for \(f1($0.stuckForS)) s" }
            .joined(separator: ", ") + (stuck.count > 8 ? ", ..." : "")
    }

    private func seconds(_ ns: UInt64) -> String { f1(Double(ns) / 1e9) }
}
