import BuildIdentity
import ConcurrentRmap
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// Per-operation figures of one run. `completed` is work; `idle` counts
/// attempts that found nothing to act on (reclaim above its watermark, no
/// page to migrate, the population at its bound). Rates are completed
/// operations per measured second.
public struct OpStats: Codable, Sendable, Equatable {
    public var completed: UInt64
    public var idle: UInt64
    public var perS: Double
    /// Operations whose latency was recorded (one in `latency_sample`).
    public var timed: UInt64
    public var p50Ns: UInt64
    public var p99Ns: UInt64
    public var p999Ns: UInt64
    public var maxNs: UInt64
}

public struct ViolationRecord: Codable, Sendable, Equatable {
    public var kind: String
    public var detail: String
    public var frame: UInt32
    public var mm: UInt32
    public var vpn: UInt64
    public var op: String?
    public var cpu: Int

    init(_ v: Violation) {
        kind = v.kind.rawValue; detail = v.detail; frame = v.frame; mm = v.mm; vpn = v.vpn
        op = v.op?.name; cpu = v.cpu
    }
}

public struct WalkStats: Codable, Sendable, Equatable {
    public var count: UInt64
    /// Objects the scheme's walk visited per walk (mms for anongroup, VMAs
    /// for anon_vma), and how many of them did not map the page.
    public var visitedPerWalk: Double
    public var wastedPerWalk: Double
    public var trylockFailures: UInt64
}

/// liburcu's counters over the run: synchronize_rcu calls completed (the
/// workers' own and the probe's; the model queues nothing on call_rcu).
public struct RCUStats: Codable, Sendable, Equatable {
    public var gracePeriods: UInt64
}

/// One interval of a run, for the steady-state check and for plots.
public struct IntervalSample: Codable, Sendable, Equatable {
    /// Seconds since measuring began, at the end of the interval.
    public var t: Double
    /// Completed operations per second in the interval.
    public var opsPerS: Double
    public var framesInUse: Int
    public var processes: Int
    /// Fork families (mms related by fork without exec) and their sizes.
    public var families: Int
    public var meanFamilySize: Double
    public var maxFamilySize: Int
    /// Objects (mms or VMAs) visited per rmap walk in the interval (0 when
    /// none walked).
    public var visitedPerWalk: Double
}

/// Did the run hold still? A figure is only as good as the state it was
/// measured in: a rate or a family size that drifts between the first and
/// the second half of the samples makes repeats disagree.
public struct SteadyState: Codable, Sendable, Equatable {
    public var samples: Int
    /// Median of the second half over median of the first half, minus 1, in %.
    public var rateDriftPercent: Double
    public var familySizeDriftPercent: Double
    public var framesDriftPercent: Double
    /// Largest drift allowed for `steady` (percent).
    public var limitPercent: Double
    public var steady: Bool

    public static func judge(_ s: [IntervalSample], limitPercent: Double = 10) -> SteadyState? {
        // The first sample straddles start-up effects; it is not judged.
        let xs = Array(s.dropFirst())
        guard xs.count >= 4 else { return nil }
        let h = xs.count / 2
        func drift(_ f: (IntervalSample) -> Double) -> Double {
            let a = median(xs.prefix(h).map(f)), b = median(xs.suffix(xs.count - h).map(f))
            guard a.isFinite, b.isFinite, a != 0 else { return b == a ? 0 : .infinity }
            return (b / a - 1) * 100
        }
        let r = drift { $0.opsPerS }, g = drift { $0.meanFamilySize }, f = drift { Double($0.framesInUse) }
        let ok = [r, g, f].allSatisfy { $0.isFinite && abs($0) <= limitPercent }
        return SteadyState(samples: xs.count, rateDriftPercent: r, familySizeDriftPercent: g, framesDriftPercent: f,
                           limitPercent: limitPercent, steady: ok)
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// A worker that did not finish its operation when the run stopped.
public struct StalledWorker: Codable, Sendable, Equatable {
    public var worker: Int
    /// The operation it was in (from its ring of recent operations).
    public var operation: String
    /// Seconds since it last finished an operation.
    public var stuckForS: Double
}

/// Where the run happened: what `compare` requires to match.
public struct HostRecord: Codable, Sendable, Equatable {
    public var cpuModel: String
    public var cpuCount: Int
    public var kernel: String

    public static var current: HostRecord {
        HostRecord(cpuModel: HostInfo.cpuModel, cpuCount: HostInfo.cpuCount, kernel: HostInfo.kernel)
    }
}

/// The verdicts a run can end with.
public enum Verdict {
    public static let success = "SUCCESS"
    public static let failure = "FAILURE"
    public static let stall = "STALL"
    public static let interrupted = "INTERRUPTED"
    /// Only in a periodic snapshot: the run had not ended when it was written.
    public static let running = "RUNNING"
}

/// What a stress run found: written as JSON by `--json` (every key
/// snake_case), periodically while the run goes on (verdict RUNNING), and
/// once more when it ends.
public struct StressResult: Codable, Sendable {
    public var tool = "concurrent-rmap-stress"
    public var version = StressVersion.version
    public var gitCommit = StressVersion.gitCommit
    public var gitDirty = StressVersion.gitDirty
    public var buildConfiguration = HostInfo.buildConfiguration
    public var host = HostRecord.current
    public var settings: RunSettings
    /// running, stopping, final-audit, teardown or done: how far the run got.
    public var phase: String
    public var verdict: String
    public var exitStatus: Int32
    /// The signal that interrupted the run, if one did.
    public var signal: Int32?
    /// Seconds measured (after the warm-up).
    public var elapsedS: Double
    /// Seconds of warm-up actually run.
    public var warmupS: Double
    /// Seconds from start to result, start-up and stopping included.
    public var wallS: Double
    /// Seconds the run overran the time it asked for, when over a second.
    public var overrunS: Double?
    public var ops: [String: OpStats]
    public var totalCompleted: UInt64
    public var totalIdle: UInt64
    /// Completed operations per measured second (work, not attempts).
    public var opsPerS: Double
    public var walks: WalkStats
    /// Model events (snake_case names), summed over workers.
    public var events: [String: UInt64]
    public var rcuStats: RCUStats
    public var audits: Int
    public var samples: [IntervalSample]
    public var steadyState: SteadyState?
    public var violations: [ViolationRecord]
    public var violationsByKind: [String: Int]
    public var leaks: [String]
    /// clean, N leaks, or why the leak check did not run.
    public var leakCheck: String
    /// Seconds from the start to the first violation, if any.
    public var firstViolationS: Double?
    /// Each worker's last operations, oldest first, when the run did not succeed.
    public var recentOperations: [[String]]?
    public var stalledWorkers: [StalledWorker]?
    /// Nanoseconds for a cache line to go from CPU 0 to CPU 1 and back, just
    /// before the workers started and (when they stopped normally) just
    /// after; only for runs of 2 or more threads on 2 or more CPUs. See
    /// `CrossCoreProbe`: on a VM it tells the runs whose shared lines moved
    /// between cores with a common cache from those that did not.
    public var crossCoreRoundTripNs: [Double]?
    /// Remarks a reader of the figures needs (overrun, unsteady, sampling).
    public var notes: [String]

    public func event(_ e: Event) -> UInt64 { events[e.name] ?? 0 }
}

public enum StressVersion {
    public static let version = "0.3.0"
    /// The commit the binary was built from, fixed at build time (the
    /// BuildIdentity plugin reads git when the package is built), so it is
    /// the same wherever the binary runs; "unknown" outside a git checkout.
    public static let gitCommit = BuildIdentity.commit
    /// The working tree had uncommitted changes to tracked files when built.
    public static let gitDirty = BuildIdentity.dirty

    /// "0.2.0 (commit 0123456789ab)" or "0.2.0 (commit 0123456789ab, dirty tree)".
    public static var description: String {
        "\(version) (commit \(gitCommit)\(gitDirty ? ", dirty tree" : ""))"
    }
}
