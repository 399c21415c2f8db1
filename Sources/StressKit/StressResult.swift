import ConcurrentRmap

/// Per-operation figures of one run.
public struct OpStats: Codable, Sendable, Equatable {
    public var count: UInt64
    public var perS: Double
    /// Attempts that found nothing to act on (no page to migrate, full table…).
    public var idle: UInt64
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
    public var mmsPerWalk: Double
    public var trylockFailures: UInt64
}

public struct RCUStats: Codable, Sendable, Equatable {
    public var gracePeriods: UInt64
    public var callbacksQueued: UInt64
    public var callbacksRun: UInt64
}

/// What a stress run found. Written as JSON by `--json` (snake_case keys).
public struct StressResult: Codable, Sendable {
    public var tool = "concurrent-rmap-stress"
    public var version = StressVersion.version
    public var gitCommit = StressVersion.gitCommit
    public var threads: Int
    public var durationS: Double
    public var seed: UInt64
    public var rcu: String
    public var sync: String
    public var checks: String
    public var injection: String
    public var perturb: Bool
    public var mix: String
    public var frames: Int
    public var swapSlots: Int
    public var maxProcesses: Int
    public var ops: [String: OpStats]
    public var totalOps: UInt64
    public var opsPerS: Double
    public var walks: WalkStats
    public var mremapCopies: UInt64
    public var mremapMoves: UInt64
    public var pagesReclaimed: UInt64
    public var pagesSwappedIn: UInt64
    public var pagesMigrated: UInt64
    public var events: [String: UInt64]
    public var rcuStats: RCUStats
    public var audits: Int
    public var violations: [ViolationRecord]
    public var violationsByKind: [String: Int]
    public var leaks: [String]
    /// "SUCCESS", "FAILURE" or "STALL".
    public var verdict: String
    public var exitStatus: Int32
    /// Seconds from the start to the first violation, if any.
    public var firstViolationS: Double?
    /// Each worker's last operations, oldest first, when the run failed.
    public var recentOperations: [[String]]?
}

public enum StressVersion {
    public static let version = "0.1.0"
    /// The commit the binary was built from, when known: CRMAP_GIT_COMMIT at
    /// run time, else `git rev-parse` in the working directory, else "unknown".
    public static let gitCommit: String = {
        if let env = getenv("CRMAP_GIT_COMMIT"), let s = String(validatingCString: env), !s.isEmpty { return s }
        guard let p = popen("git rev-parse --short=12 HEAD 2>/dev/null", "r") else { return "unknown" }
        defer { pclose(p) }
        var buf = [CChar](repeating: 0, count: 64)
        guard fgets(&buf, 64, p) != nil else { return "unknown" }
        let s = String(cString: buf).trimmingCharacters(in: "\n")
        return s.isEmpty ? "unknown" : String(s)
    }()
}

#if canImport(Glibc)
import Glibc
#endif

extension String {
    func trimmingCharacters(in c: Character) -> Substring { Substring(self).trimmingCharacters(in: c) }
}
