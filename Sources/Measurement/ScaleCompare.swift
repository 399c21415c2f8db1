import Foundation
import RunEngine

/// `stress compare OLD NEW`: figure by figure, like LKP's comparison of two
/// kernels: base median ± spread, change in %, new median ± spread.
public enum ScaleCompare {
    public struct LoadError: Error, CustomStringConvertible, Equatable {
        public let message: String
        public var description: String { message }
    }

    public struct Row: Sendable, Equatable {
        /// "sync=rcu rcu=memb threads=2"
        public var point: String
        /// "ops/s" or "fault ops/s"
        public var figure: String
        public var base: Spread?
        public var new: Spread?
        /// Is new faster than base: the significance test over the repeats.
        public var decision: Confidence.Decision?
        /// Change of the medians, percent; nil when either side is missing.
        public var change: Double? {
            guard let b = base, let n = new else { return nil }
            let c = percentChange(base: b.median, new: n.median)
            return c.isFinite ? c : nil
        }
    }

    /// Reads runs from a scale folder (its runs.json), a runs.json file, or
    /// `stress run --json` results, strictly (see `CompareInput`).
    public static func load(_ path: String) throws -> [ScaleRun] { try CompareInput.load(path) }

    public static func parse(_ data: Data, name: String) throws -> [ScaleRun] { try CompareInput.parse(data, name: name) }

    static func wrap(_ r: StressResult) -> ScaleRun {
        ScaleRun(sync: r.settings.sync.rawValue, rcu: r.settings.rcu.rawValue, threads: r.settings.threads, repeatIndex: 0,
                 oversubscribed: false, result: r)
    }

    /// Everything about a run that must match for a comparison to mean
    /// something: its settings but the swept coordinates and the seed, and
    /// the machine it ran on. The commit may differ: that is the point.
    static func fingerprint(_ r: ScaleRun) -> [String: String] {
        var s = r.result.settings
        s.threads = 0
        s.sync = .rcu
        s.rcu = .memb
        s.seed = 0
        var d: [String: String] = [:]
        if let data = try? ResultFile.encoder().encode(s),
           let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            for (k, v) in obj { d[k] = "\(v)" }
        }
        d["cpu_model"] = r.result.host.cpuModel
        d["cpu_count"] = "\(r.result.host.cpuCount)"
        return d
    }

    /// The settings in which the two sides differ, as "name (base vs new)";
    /// empty when they are comparable. Also names a side that mixes settings
    /// within itself, and sweeps over different points.
    public static func differences(base: [ScaleRun], new: [ScaleRun]) -> [String] {
        var out: [String] = []
        for (side, runs) in [("base", base), ("new", new)] {
            let fps = runs.map(fingerprint)
            if let first = fps.first, fps.contains(where: { $0 != first }) {
                let keys = Set(fps.flatMap(\.keys)).filter { k in fps.contains { $0[k] != first[k] } }.sorted()
                out.append("\(side) mixes runs of different settings (\(keys.joined(separator: ", ")))")
            }
        }
        if let a = base.first.map(fingerprint), let b = new.first.map(fingerprint) {
            for k in Set(a.keys).union(b.keys).sorted() where a[k] != b[k] {
                out.append("\(k) (\(a[k] ?? "-") vs \(b[k] ?? "-"))")
            }
        }
        func points(_ r: [ScaleRun]) -> Set<String> { Set(r.map { "sync=\($0.sync) rcu=\($0.rcu) threads=\($0.threads)" }) }
        let pa = points(base), pb = points(new)
        if pa != pb {
            out.append("swept points (only in base: \(pa.subtracting(pb).sorted().joined(separator: "; ")); only in new: \(pb.subtracting(pa).sorted().joined(separator: "; ")))")
        }
        return out
    }

    /// Rows for every (sync, rcu, threads) point present on either side:
    /// completed ops/s and idle attempts/s first, then each operation's
    /// completed ops/s.
    public static func compare(base: [ScaleRun], new: [ScaleRun]) -> [Row] {
        let tb = ScaleTable(base), tn = ScaleTable(new)
        let keys = Set(tb.series + tn.series).sorted()
        let threads = Set(tb.threads + tn.threads).sorted()
        let ops = ScaleReport.opOrder.filter { Set(tb.operations + tn.operations).contains($0) }
        var rows: [Row] = []
        let figures: [(String, (ScaleRun) -> Double?)] = [
            ("ops/s", { $0.result.opsPerS }),
            ("idle/s", { Double($0.result.totalIdle) / max($0.result.elapsedS, 1e-9) }),
        ] + ops.map { op in ("\(op) ops/s", { r in r.result.ops[op]?.perS }) }
        for k in keys {
            for th in threads {
                let point = "sync=\(k.sync) rcu=\(k.rcu) threads=\(th)"
                for (fig, metric) in figures {
                    let b = tb.spread(k, threads: th, metric), n = tn.spread(k, threads: th, metric)
                    if b == nil && n == nil { continue }
                    let d = Confidence.decide(tn.values(k, threads: th, metric), over: tb.values(k, threads: th, metric))
                    rows.append(Row(point: point, figure: fig, base: b, new: n, decision: b == nil || n == nil ? nil : d))
                }
            }
        }
        return rows
    }

    /// What a row's decision says, in the table's words.
    static func verdict(_ d: Confidence.Decision?) -> String {
        guard let d else { return "-" }
        switch d.outcome {
        case .faster: return "new is faster"
        case .slower: return "new is slower"
        case .noDifference: return "no difference shown"
        case .withinNoise: return "within machine noise"
        case .tooFew: return "too few repeats"
        }
    }

    /// The decision first: one line per point for total ops/s (is new
    /// faster, its significance, and whether the difference exceeds the
    /// noise of both sides); then the LKP-style table of every figure.
    /// `forced`: the settings that differ, when the comparison was forced;
    /// every figure is then marked.
    public static func format(_ rows: [Row], baseName: String, newName: String, forced: [String] = []) -> String {
        func num(_ v: Double) -> String { String(format: abs(v) >= 100 ? "%.0f" : "%.2f", v) }
        func cell(_ s: Spread?) -> (String, String, String) {
            guard let s else { return ("-", "", "") }
            let pct = s.n > 1 ? String(format: "±%3.0f%%", s.stddevPercent) : ""
            return (num(s.median), pct, s.n > 1 ? "\(LineChart.short(s.min))..\(LineChart.short(s.max))" : "n=1")
        }
        func r(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
        func l(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        var out = "base: \(baseName)\nnew:  \(newName)\n"
        if !forced.isEmpty {
            out += "FORCED: the sides differ in \(forced.joined(separator: "; ")); every figure below is marked (!) and may not mean what it seems.\n"
        }
        out += "\nDecision on total ops/s (exact two-sided Mann-Whitney U test over the repeats, significant at p < 0.05;\n"
        out += "'beyond noise' when the ranges of the two sides' repeats do not overlap):\n\n"
        out += l("point", 34) + r("change", 9) + r("p", 8) + r("beyond noise", 14) + "  decision\n"
        for row in rows where row.figure == "ops/s" {
            let ch = row.change.map { String(format: "%+.1f%%", $0) } ?? "-"
            let p = row.decision?.p.map { String(format: "%.3f", $0) } ?? "-"
            let beyond = row.decision.map { d in d.exceedsBothSides.map { $0 ? "yes" : "no" } ?? "1 repeat" } ?? "-"
            var why = verdict(row.decision)
            if let d = row.decision, d.outcome == .tooFew { why += " (\(d.reason))" }
            out += l(row.point, 34) + r(ch, 9) + r(p, 8) + r(beyond, 14) + "  " + why + (forced.isEmpty ? "" : " (!)") + "\n"
        }
        out += "\nEvery figure: medians over repeats; ± is the standard deviation of the repeats as a percentage of their mean,\n"
        out += "min..max their range; %change compares the medians; ops/s counts completed operations, idle/s attempts that found nothing to do.\n"
        out += "\n" + r("base", 10) + r("", 6) + r("min..max", 16) + r("%change", 10) + r("new", 10) + r("", 6) + r("min..max", 16) + r("p", 7) + r("noise", 7) + "  figure\n"
        var lastPoint = ""
        for row in rows {
            if row.point != lastPoint { out += "\n" + row.point + "\n"; lastPoint = row.point }
            let b = cell(row.base), n = cell(row.new)
            let ch = row.change.map { String(format: "%+.1f%%", $0) } ?? "-"
            let p = row.decision?.p.map { String(format: "%.3f", $0) } ?? "-"
            let beyond = row.decision.map { d in d.exceedsBothSides.map { $0 ? "beyond" : "within" } ?? "n=1" } ?? "-"
            out += r(b.0, 10) + r(b.1, 6) + r(b.2, 16) + r(ch, 10) + r(n.0, 10) + r(n.1, 6) + r(n.2, 16) + r(p, 7) + r(beyond, 7) + "  "
                + l(row.figure + (forced.isEmpty ? "" : " (!)"), 16) + "\n"
        }
        return out
    }
}
