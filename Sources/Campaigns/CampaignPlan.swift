import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport

/// What a plan may vary, in expansion order. The seed is outermost, so a
/// campaign stopped part way has covered every configuration at some seeds
/// rather than a few configurations at every seed.
public enum CampaignAxisName: String, CaseIterable, Sendable, Codable {
    case seed, scheme, rcu, sync, mix, inject, threads, duration, ops

    /// The `stress run` option the axis sets.
    public var flag: String { "--\(rawValue)" }
}

public struct CampaignAxis: Sendable, Equatable {
    public var name: CampaignAxisName
    /// Values as `stress run` takes them, normalised (a mix in canonical
    /// form, a duration without a needless ".0").
    public var values: [String]
}

/// A campaign plan: axes and their values, expanded to one cell per
/// combination (see CampaignCell). Read from JSON; documented in
/// examples/README.md.
public struct CampaignPlan: Sendable {
    /// Plans over this many cells are refused: a typo in a seed count should
    /// not queue a million jobs.
    public static let maxCells = 100_000
    /// `--scheme` values; the option is newer than this code's model enums.
    public static let schemes = ["anongroup", "anon-vma"]
    /// A cell timeout past this is a typo, not a plan: 30 days.
    public static let maxCellTimeout = 30.0 * 86_400
    static let topLevelKeys = ["name", "description", "axes", "run_args", "cell_timeout"]

    public var name: String
    public var description: String?
    /// The axes the plan names, in expansion order.
    public var axes: [CampaignAxis]
    /// Fixed `stress run` options given to every cell, after the axes' ones.
    public var runArgs: [String]
    /// Seconds a cell may run before it is killed and recorded as timed out;
    /// nil: twice its duration plus a minute (an hour for `ops` cells).
    public var cellTimeout: Double?
    /// The plan file's bytes, copied into the results folder.
    public var source: Data
    public var cellCount: Int

    public func axis(_ name: CampaignAxisName) -> CampaignAxis? { axes.first { $0.name == name } }

    /// Reads and checks a plan file.
    public static func load(path: String) throws -> CampaignPlan {
        let data: Data
        switch BoundedRead.read(path, limit: BoundedRead.planLimit) {
        case .data(let d): data = d
        case .missing: throw CampaignError("plan '\(path)' does not exist")
        case .folder: throw CampaignError("cannot read plan '\(path)': it is a folder")
        case .tooLarge: throw CampaignError("plan '\(path)' is over \(BoundedRead.planLimit >> 20) MiB: not a plan")
        case .unreadable(let why): throw CampaignError("cannot read plan '\(path)': \(why)")
        }
        let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return try CampaignPlan(json: data, label: path, defaultName: base)
    }

    /// Parses a plan. `label` names it in errors.
    public init(json data: Data, label: String, defaultName: String = "campaign") throws {
        func fail(_ s: String) -> CampaignError { CampaignError("plan '\(label)': \(s)") }
        if let problem = StrictJSON.problem(data) { throw fail(problem) }
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw fail("not valid JSON (\(Self.jsonErrorSummary(error)))")
        }
        guard case .object(let top) = root else { throw fail("expected a JSON object with an \"axes\" object") }
        for key in top.keys.sorted() where !Self.topLevelKeys.contains(key) {
            throw fail("unknown key '\(key)' (known: \(Self.topLevelKeys.joined(separator: ", ")); axes go inside \"axes\")")
        }
        source = data
        switch top["name"] {
        case nil:
            // A file name can hold anything a path can: the same rule as a
            // "name" given in the plan.
            guard !defaultName.isEmpty, defaultName.count <= 200,
                  !defaultName.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 32 || $0 == 127 } ?? false }) else {
                throw fail("the plan has no \"name\", and its file name \(defaultName.debugDescription) cannot be one (a one-line name of at most 200 characters); give it a \"name\"")
            }
            name = defaultName
        case .string(let s) where !s.isEmpty && s.count <= 200
                && !s.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 32 || $0 == 127 } ?? false }): name = s
        case let v?: throw fail("\"name\" must be a non-empty one-line string, not \(v.shown)")
        }
        switch top["description"] {
        case nil: description = nil
        case .string(let s): description = s
        case let v?: throw fail("\"description\" must be a string, not \(v.shown)")
        }
        guard case .object(let axesObject)? = top["axes"] else {
            throw fail(top["axes"] == nil ? "no \"axes\" object" : "\"axes\" must be an object of axis name: [values]")
        }
        var axes: [CampaignAxis] = []
        for key in axesObject.keys.sorted() where CampaignAxisName(rawValue: key) == nil {
            throw fail("unknown axis '\(key)' (known: \(CampaignAxisName.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        for name in CampaignAxisName.allCases {
            guard let v = axesObject[name.rawValue] else { continue }
            let values = try Self.values(of: name, v, fail)
            if values.isEmpty { throw fail("axis '\(name.rawValue)' is empty") }
            var seen = Set<String>()
            for x in values where !seen.insert(x).inserted {
                throw fail("axis '\(name.rawValue)' lists \(x) twice (the cells would be the same)")
            }
            axes.append(CampaignAxis(name: name, values: values))
        }
        if !axes.contains(where: { $0.name == .seed }) {
            throw fail("no 'seed' axis: a cell without a seed cannot be reproduced (give a list, or {\"count\": N, \"first\": S})")
        }
        if !axes.contains(where: { $0.name == .threads }) { throw fail("no 'threads' axis") }
        let timed = axes.filter { $0.name == .duration || $0.name == .ops }
        if timed.isEmpty { throw fail("no 'duration' (seconds) or 'ops' axis: say how long each cell runs") }
        if timed.count > 1 { throw fail("give 'duration' or 'ops', not both") }
        self.axes = axes

        // A product of doubles cannot overflow, and is exact wherever it is
        // under the limit.
        let count = axes.reduce(1.0) { $0 * Double($1.values.count) }
        if count > Double(Self.maxCells) {
            throw fail("expands to \(String(format: "%.0f", count)) cells, over the limit of \(Self.maxCells)")
        }
        cellCount = Int(count)

        switch top["run_args"] {
        case nil: runArgs = []
        case .array(let items):
            runArgs = try items.map {
                guard case .string(let s) = $0 else { throw fail("\"run_args\" must be a list of strings, not contain \($0.shown)") }
                return s
            }
        case let v?: throw fail("\"run_args\" must be a list of strings, not \(v.shown)")
        }
        // Output options are the runner's; --options-from would make a cell's
        // settings depend on a file that may change or vanish before it runs.
        let reserved = axes.map(\.name.flag) + ["--json", "--quiet", "--help", "-h", "--version", "--list-injections",
                                                "--options-from", "--debug-crash-after"]
        for arg in runArgs {
            if let r = reserved.first(where: { arg == $0 || arg.hasPrefix($0 + "=") }) {
                throw fail("\"run_args\" must not set \(r): \(axes.map(\.name.flag).contains(r) ? "it is an axis of this plan" : "each cell sets its own")")
            }
        }
        switch top["cell_timeout"] {
        case nil: cellTimeout = nil
        case let v?:
            let longest = axes.first { $0.name == .duration }?.values.compactMap { Double($0) }.max()
            let range = "more than the longest duration (\(longest.map(formatSeconds) ?? "0") s) and at most \(formatSeconds(Self.maxCellTimeout)) s"
            guard let t = v.number, t.isFinite, t > (longest ?? 0), t <= Self.maxCellTimeout else {
                throw fail("\"cell_timeout\" must be seconds, \(range), not \(v.shown)")
            }
            cellTimeout = t
        }
    }

    /// One axis's values, checked against what `stress run` accepts.
    static func values(of axis: CampaignAxisName, _ v: JSONValue, _ fail: (String) -> CampaignError) throws -> [String] {
        if axis == .seed, case .object(let o) = v { return try seedRange(o, fail) }
        let items: [JSONValue]
        if case .array(let a) = v { items = a } else if case .object = v {
            throw fail("axis '\(axis.rawValue)' must be a list of values")
        } else { items = [v] }
        func bad(_ x: JSONValue, _ want: String) -> CampaignError {
            fail("axis '\(axis.rawValue)' has \(x.shown), expected \(want)")
        }
        func names(_ known: [String]) throws -> [String] {
            try items.map { x in
                guard case .string(let s) = x else { throw bad(x, "one of \(known.joined(separator: ", "))") }
                guard known.contains(s) else {
                    throw fail("axis '\(axis.rawValue)' has unknown value '\(s)' (known: \(known.joined(separator: ", ")))")
                }
                return s
            }
        }
        switch axis {
        case .seed:
            return try items.map { x in
                guard let u = x.unsigned else { throw bad(x, "a seed 0...\(UInt64.max)") }
                return "\(u)"
            }
        case .threads:
            return try items.map { x in
                guard let i = x.integer, (1...4096).contains(i) else { throw bad(x, "a thread count 1...4096") }
                return "\(i)"
            }
        case .ops:
            return try items.map { x in
                guard let i = x.integer, i >= 1 else { throw bad(x, "a positive operation count") }
                return "\(i)"
            }
        case .duration:
            return try items.map { x in
                guard let d = x.number, d > 0, d <= 7 * 86_400 else { throw bad(x, "seconds, more than 0 and at most a week") }
                return formatSeconds(d)
            }
        case .rcu: return try names(RCUFlavor.allCases.map(\.rawValue))
        case .sync: return try names(ListSync.allCases.map(\.rawValue))
        case .inject:
            let named = try names(Injection.allCases.map(\.rawValue))
            // A cell expects its planted bug to be caught; a bug only a
            // controlled run can catch would make that expectation unmeetable.
            if let i = named.compactMap(Injection.init(rawValue:)).first(where: \.needsControlledRun) {
                throw fail("axis 'inject' has '\(i.rawValue)', which only a controlled run catches (stress explore), never a stress run cell")
            }
            return named
        case .scheme: return try names(schemes)
        case .mix:
            return try items.map { x in
                guard case .string(let s) = x else { throw bad(x, "a mix NAME=WEIGHT,... or \"default\"") }
                if s == "default" { return reduced(OperationMix.default).description }
                do { return try reduced(OperationMix(parsing: s)).description } catch {
                    throw fail("axis 'mix' has '\(s)': \(error)")
                }
            }
        }
    }

    /// The mix with its weights divided by their greatest common divisor:
    /// "fault=2,fork=2" draws operations as "fault=1,fork=1" does, so the
    /// two are one axis value, not two cells.
    static func reduced(_ mix: OperationMix) -> OperationMix {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let g = mix.weights.reduce(0, gcd)
        guard g > 1 else { return mix }
        var m = mix
        m.weights = mix.weights.map { $0 / g }
        return m
    }

    /// `{"count": N, "first": S}`: seeds S, S+1, ... S+N-1.
    static func seedRange(_ o: [String: JSONValue], _ fail: (String) -> CampaignError) throws -> [String] {
        for key in o.keys.sorted() where key != "count" && key != "first" {
            throw fail("seed range has unknown key '\(key)' (known: count, first)")
        }
        guard let c = o["count"]?.integer else { throw fail("seed range needs \"count\": a whole number of seeds") }
        guard c >= 1 else { throw fail("axis 'seed' is empty (count \(c))") }
        guard c <= Int64(maxCells) else { throw fail("seed count \(c) is over the limit of \(maxCells) cells") }
        let first = try o["first"].map { v -> UInt64 in
            guard let u = v.unsigned else { throw fail("seed range \"first\" must be a seed 0...\(UInt64.max), not \(v.shown)") }
            return u
        } ?? 1
        guard UInt64.max - first >= UInt64(c - 1) else { throw fail("seed range runs past \(UInt64.max)") }
        return (0..<UInt64(c)).map { "\(first + $0)" }
    }

    static func jsonErrorSummary(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let ctx) = error {
            let s = ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription
            return s.split(whereSeparator: \.isNewline).first.map(String.init) ?? s
        }
        return "\(error)"
    }
}

/// "1", "0.5", "2.25": seconds as `stress run --duration` takes them.
func formatSeconds(_ d: Double) -> String {
    d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
}
