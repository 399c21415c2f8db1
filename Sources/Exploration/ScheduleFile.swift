import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport

/// A failing controlled execution, written so that `stress replay` can run
/// it again: the settings, the step budget, the strategy it came from, the
/// non-default decisions ("switches"), the violation it ended with, and the
/// build that found it. Another build may schedule differently (any change
/// to the model moves scheduling points), so a file from another commit,
/// dirty tree or binary is refused rather than mis-replayed.
///
/// Integrity: the file carries the SHA-256 of its own bytes with the digest
/// field empty (`digest`), checked before anything else is read, so an edit
/// anywhere (a value, a key added, repeated or misspelt, whitespace) is
/// refused rather than replayed as something it is not.
public struct ScheduleFile: Codable, Sendable, Equatable {
    public static let format = "concurrent-rmap-schedule"
    /// 3: the file carries the digest of its own bytes. (2: switches name
    /// workers only.)
    public static let currentVersion = 3

    public struct Build: Codable, Sendable, Equatable {
        public var commit: String
        public var dirty: Bool
        /// SHA-256 (first 16 hex digits) of the executable that wrote it.
        public var binary: String
    }

    public struct Found: Codable, Sendable, Equatable {
        public var kind: String
        public var step: Int
        public var detail: String
    }

    public struct Size: Codable, Sendable, Equatable {
        public var threads: Int
        public var operations: Int
        public var steps: Int
        public var switches: Int
        public init(threads: Int, operations: Int, steps: Int, switches: Int) {
            self.threads = threads; self.operations = operations; self.steps = steps; self.switches = switches
        }
    }

    public var format: String
    public var version: Int
    public var build: Build
    public var settings: RunSettings
    /// The strategy that found it ("random", "pct:3"), for the record.
    public var strategy: String
    public var scheduleSeed: UInt64
    public var steps: Int
    /// "STEP:THREAD" pairs separated by spaces; THREAD is a worker number.
    public var switches: String
    public var violation: Found
    public var size: Size
    /// Schedules explored before this one was found (0 for shrunk files).
    public var schedulesExplored: Int?
    public var shrunkFrom: Size?
    /// SHA-256 of the file's bytes with this field empty (see above).
    public var digest = ""

    enum CodingKeys: String, CodingKey {
        case format, version, build, settings, strategy, steps, switches, violation, size, digest
        case scheduleSeed = "schedule_seed"
        case schedulesExplored = "schedules_explored"
        case shrunkFrom = "shrunk_from"
    }

    public static func encodeSwitches(_ s: [ScheduleSwitch]) -> String {
        s.map { "\($0.step):\($0.thread)" }.joined(separator: " ")
    }

    public static func decodeSwitches(_ text: String, threads: Int) throws -> [ScheduleSwitch] {
        var out: [ScheduleSwitch] = []
        var last = -1
        for item in text.split(separator: " ") {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let step = Int(parts[0]), step > last else {
                throw ScheduleFileError.bad("switch '\(item)' is not STEP:THREAD with steps increasing")
            }
            guard let thread = Int(parts[1]), thread >= 0, thread < threads else {
                throw ScheduleFileError.bad("switch '\(item)' names thread \(parts[1]); the schedule has \(threads) workers")
            }
            out.append(ScheduleSwitch(step: step, thread: thread))
            last = step
        }
        return out
    }

    public static func strategyName(_ s: ScheduleStrategy) -> String {
        switch s {
        case .random: "random"
        case .pct(let d): "pct:\(d)"
        case .replay: "replay"
        }
    }

    public var spec: ControlledSpec {
        get throws {
            ControlledSpec(settings: settings, strategy: .replay, scheduleSeed: scheduleSeed, steps: steps,
                           switches: try Self.decodeSwitches(switches, threads: settings.threads))
        }
    }

    public init(spec: ControlledSpec, strategy: ScheduleStrategy, outcome: ControlledOutcome, explored: Int?, shrunkFrom: Size?) {
        format = Self.format
        version = Self.currentVersion
        build = Self.thisBuild
        settings = spec.settings
        self.strategy = Self.strategyName(strategy)
        scheduleSeed = spec.scheduleSeed
        steps = spec.steps
        switches = Self.encodeSwitches(outcome.switches)
        let v = outcome.violation
        violation = Found(kind: v?.kind.rawValue ?? "none", step: outcome.step, detail: v?.description ?? "")
        size = Size(threads: spec.settings.threads, operations: outcome.operations, steps: outcome.steps, switches: outcome.switches.count)
        schedulesExplored = explored
        self.shrunkFrom = shrunkFrom
    }

    /// This binary's identity.
    public static let thisBuild: Build = {
        let hash: String
        if let data = FileManager.default.contents(atPath: ChildProcess.selfExecutable.path) {
            hash = String(Digest.sha256Hex(data).prefix(16))
        } else {
            hash = "unknown"
        }
        return Build(commit: StressVersion.gitCommit, dirty: StressVersion.gitDirty, binary: hash)
    }()

    public func write(to path: String) throws {
        var f = self
        f.digest = ""
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let body = try enc.encode(f) + Data("\n".utf8)
        let sum = Digest.sha256Hex(body)
        let text = String(decoding: body, as: UTF8.self)
        guard let r = text.range(of: Self.emptyDigest) else { throw ScheduleFileError.bad("cannot place the digest in \(path)") }
        try AtomicFile.write(Data(text.replacingCharacters(in: r, with: "\"digest\" : \"\(sum)\"").utf8), to: path)
    }

    static let emptyDigest = "\"digest\" : \"\""

    /// The digest check: the one `"digest" : "<64 hex>"` in the file, put
    /// back to empty, must hash to what it says.
    static func verifyDigest(_ data: Data, _ path: String) throws {
        let text = String(decoding: data, as: UTF8.self)
        let pattern = "\"digest\" : \""
        let parts = text.components(separatedBy: pattern)
        guard parts.count == 2, parts[1].count >= 65, parts[1].dropFirst(64).first == "\"" else {
            throw ScheduleFileError.bad("\(path) is not a schedule file of this version (no single digest field; truncated, edited or older)")
        }
        let sum = String(parts[1].prefix(64))
        let body = parts[0] + Self.emptyDigest + parts[1].dropFirst(65)
        guard Digest.sha256Hex(Data(body.utf8)) == sum else {
            throw ScheduleFileError.bad("\(path) was edited or damaged since it was written (its digest does not match its contents)")
        }
    }

    /// Loads and checks a schedule file: well-formed, this format and
    /// version, this build (unless `anyBuild`), switches parseable.
    public static func load(_ path: String, anyBuild: Bool = false) throws -> ScheduleFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScheduleFileError.bad("cannot read schedule file \(path)")
        }
        guard data.count <= 64 << 20 else { throw ScheduleFileError.bad("\(path) is too large for a schedule file (\(data.count) bytes)") }
        try verifyDigest(data, path)
        var f: ScheduleFile
        do { f = try JSONDecoder().decode(ScheduleFile.self, from: data) } catch {
            throw ScheduleFileError.bad("\(path) is not a schedule file (truncated or edited JSON: \(Self.reason(error)))")
        }
        guard f.format == format else { throw ScheduleFileError.bad("\(path) is not a schedule file (format '\(f.format)')") }
        guard f.version == currentVersion else {
            throw ScheduleFileError.bad("\(path) has schedule format version \(f.version); this build reads version \(currentVersion)")
        }
        if !anyBuild {
            let b = thisBuild
            if f.build.commit != b.commit || f.build.dirty != b.dirty {
                throw ScheduleFileError.otherBuild("\(path) was written by commit \(f.build.commit)\(f.build.dirty ? " (dirty)" : ""); this is \(b.commit)\(b.dirty ? " (dirty)" : ""): its decisions would not line up; rebuild that commit to replay it")
            }
            if f.build.binary != b.binary {
                throw ScheduleFileError.otherBuild("\(path) was written by another build of commit \(f.build.commit) (binary \(f.build.binary), this one \(b.binary)): its decisions would not line up")
            }
        }
        guard ControlledLimits.steps.contains(f.steps), ControlledLimits.threads.contains(f.settings.threads) else {
            throw ScheduleFileError.bad("\(path): steps must be \(ControlledLimits.steps.lowerBound)...\(ControlledLimits.steps.upperBound) and threads \(ControlledLimits.threads.lowerBound)...\(ControlledLimits.threads.upperBound) (got \(f.steps), \(f.settings.threads))")
        }
        if let problem = f.settings.machineConfig.validate() { throw ScheduleFileError.bad("\(path): \(problem)") }
        _ = try decodeSwitches(f.switches, threads: f.settings.threads)
        do { _ = try f.settings.operationMix() } catch { throw ScheduleFileError.bad("\(path): bad mix: \(error)") }
        f.digest = ""  // checked; a loaded file is its contents, as written
        return f
    }

    static func reason(_ e: Error) -> String {
        switch e {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.keyNotFound(let k, _): return "no key '\(k.stringValue)'"
        case DecodingError.typeMismatch(_, let c): return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.valueNotFound(_, let c): return "missing value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        default: return "\(e)"
        }
    }
}

public enum ScheduleFileError: Error, CustomStringConvertible {
    case bad(String)
    case otherBuild(String)
    public var description: String {
        switch self { case .bad(let s), .otherBuild(let s): s }
    }
}

public enum ControlledLimits {
    public static let threads = 1...16
    public static let steps = 10...10_000_000
    public static let schedules = 1...100_000_000
    public static let pctDepth = 1...64
}
