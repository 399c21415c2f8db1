import Foundation
import StressSupport

/// What a campaign reads from a cell's result.json (`stress run --json`).
/// Every field is optional and decoded on its own, so results from an older
/// or newer `stress run` (settings moved under "settings", counters renamed,
/// a field changing type) still give what they have.
public struct CellResult: Decodable, Sendable {
    public struct Violation: Decodable, Sendable {
        public var kind: String?
        public var detail: String?
        public var frame: UInt64?
        public var mm: UInt64?
        public var vpn: UInt64?
        public var op: String?
        public var cpu: Int?

        enum CodingKeys: String, CodingKey { case kind, detail, frame, mm, vpn, op, cpu }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            kind = c.lenient(.kind); detail = c.lenient(.detail); frame = c.lenient(.frame); mm = c.lenient(.mm)
            vpn = c.lenient(.vpn); op = c.lenient(.op); cpu = c.lenient(.cpu)
        }
    }

    /// The run's settings, where newer results group them.
    public struct Settings: Decodable, Sendable {
        public var seed: UInt64?
        public var threads: Int?
        public var rcu: String?
        public var sync: String?
        public var mix: String?
        public var injection: String?
        public var scheme: String?

        enum CodingKeys: String, CodingKey { case seed, threads, rcu, sync, mix, injection, inject, scheme }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            seed = c.lenient(.seed); threads = c.lenient(.threads); rcu = c.lenient(.rcu); sync = c.lenient(.sync)
            mix = c.lenient(.mix); injection = c.lenient(.injection) ?? c.lenient(.inject); scheme = c.lenient(.scheme)
        }
    }

    public var verdict: String?
    public var exitStatus: Int?
    public var gitCommit: String?
    public var gitDirty: Bool?
    public var version: String?
    public var settings: Settings?
    public var seed: UInt64?
    public var threads: Int?
    public var durationS: Double?
    public var elapsedS: Double?
    public var opsPerS: Double?
    public var totalOps: UInt64?
    public var totalCompleted: UInt64?
    public var violations: [Violation]
    public var violationsByKind: [String: Int]
    public var firstViolationS: Double?
    /// Leak descriptions; non-string entries are flattened to text.
    public var leaks: [String]

    enum CodingKeys: String, CodingKey {
        case verdict, exitStatus = "exit_status", gitCommit = "git_commit", gitDirty = "git_dirty", version, settings
        case seed, threads, durationS = "duration_s", elapsedS = "elapsed_s", opsPerS = "ops_per_s"
        case totalOps = "total_ops", totalCompleted = "total_completed", violations
        case violationsByKind = "violations_by_kind", firstViolationS = "first_violation_s", leaks
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        verdict = c.lenient(.verdict); exitStatus = c.lenient(.exitStatus)
        gitCommit = c.lenient(.gitCommit); gitDirty = c.lenient(.gitDirty); version = c.lenient(.version)
        settings = c.lenient(.settings); seed = c.lenient(.seed) ?? settings?.seed
        threads = c.lenient(.threads) ?? settings?.threads
        durationS = c.lenient(.durationS); elapsedS = c.lenient(.elapsedS)
        opsPerS = c.lenient(.opsPerS); totalOps = c.lenient(.totalOps); totalCompleted = c.lenient(.totalCompleted)
        violations = c.lenient(.violations) ?? []
        violationsByKind = c.lenient(.violationsByKind) ?? [:]
        firstViolationS = c.lenient(.firstViolationS)
        let rawLeaks: [JSONValue] = c.lenient(.leaks) ?? []
        leaks = rawLeaks.map(\.text)
    }

    /// Reads a result file; nil when it is missing, empty or not a JSON object.
    public static func load(path: String) -> CellResult? {
        guard let data = BoundedRead.data(path, limit: BoundedRead.resultLimit), !data.isEmpty else { return nil }
        return try? JSONDecoder().decode(CellResult.self, from: data)
    }

    /// Seconds the run lasted.
    public var elapsed: Double? { elapsedS ?? durationS }
    /// Operations the run completed.
    public var completedOperations: UInt64? { totalCompleted ?? totalOps }
    /// "057237ce6b1b", "057237ce6b1b+dirty", or "unknown".
    public var build: String {
        let commit = gitCommit.flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"
        return gitDirty == true ? commit + "+dirty" : commit
    }
}

extension KeyedDecodingContainer {
    /// The value under `key`, or nil when it is absent or of another type.
    func lenient<T: Decodable>(_ key: Key) -> T? { (try? decodeIfPresent(T.self, forKey: key)) ?? nil }
}

extension JSONValue {
    /// Compact text for any JSON value: a string as is, an object as k=v.
    var text: String {
        switch self {
        case .string(let s): s
        case .array(let a): a.map(\.text).joined(separator: ", ")
        case .object(let o): o.keys.sorted().map { "\($0)=\(o[$0]!.text)" }.joined(separator: " ")
        case .null: "null"
        default: shown
        }
    }
}
