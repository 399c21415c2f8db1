import Foundation

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
        /// Change of the medians, percent; nil when either side is missing.
        public var change: Double? {
            guard let b = base, let n = new else { return nil }
            let c = percentChange(base: b.median, new: n.median)
            return c.isFinite ? c : nil
        }
    }

    /// Reads runs from a scale folder (its runs.json), a runs.json file, or
    /// a single `stress run --json` result.
    public static func load(_ path: String) throws -> [ScaleRun] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw LoadError(message: "no such file or folder '\(path)'")
        }
        let file = isDir.boolValue ? (path as NSString).appendingPathComponent("runs.json") : path
        guard let data = FileManager.default.contents(atPath: file) else {
            throw LoadError(message: "cannot read '\(file)'")
        }
        return try parse(data, name: file)
    }

    public static func parse(_ data: Data, name: String) throws -> [ScaleRun] {
        let dec = ScaleFiles.decoder()
        if let runs = try? dec.decode([ScaleRun].self, from: data) { return runs }
        if let one = try? dec.decode(StressResult.self, from: data) { return [wrap(one)] }
        if let many = try? dec.decode([StressResult].self, from: data) { return many.map(wrap) }
        throw LoadError(message: "'\(name)' is not a runs.json or a stress --json result")
    }

    static func wrap(_ r: StressResult) -> ScaleRun {
        ScaleRun(sync: r.sync, rcu: r.rcu, threads: r.threads, repeatIndex: 0, oversubscribed: false, result: r)
    }

    /// Rows for every (sync, rcu, threads) point present on either side:
    /// total ops/s first, then each operation's ops/s.
    public static func compare(base: [ScaleRun], new: [ScaleRun]) -> [Row] {
        let tb = ScaleTable(base), tn = ScaleTable(new)
        let keys = Set(tb.series + tn.series).sorted()
        let threads = Set(tb.threads + tn.threads).sorted()
        let ops = ScaleReport.opOrder.filter { Set(tb.operations + tn.operations).contains($0) }
        var rows: [Row] = []
        let figures: [(String, (ScaleRun) -> Double?)] = [("ops/s", { $0.result.opsPerS })]
            + ops.map { op in ("\(op) ops/s", { r in r.result.ops[op]?.perS }) }
        for k in keys {
            for th in threads {
                let point = "sync=\(k.sync) rcu=\(k.rcu) threads=\(th)"
                for (fig, metric) in figures {
                    let b = tb.spread(k, threads: th, metric), n = tn.spread(k, threads: th, metric)
                    if b == nil && n == nil { continue }
                    rows.append(Row(point: point, figure: fig, base: b, new: n))
                }
            }
        }
        return rows
    }

    /// An LKP-style text table.
    public static func format(_ rows: [Row], baseName: String, newName: String) -> String {
        func num(_ v: Double) -> String { String(format: abs(v) >= 100 ? "%.0f" : "%.2f", v) }
        func cell(_ s: Spread?) -> (String, String, String) {
            guard let s else { return ("-", "", "") }
            let pct = s.n > 1 ? String(format: "±%3.0f%%", s.stddevPercent) : ""
            return (num(s.median), pct, s.n > 1 ? "\(LineChart.short(s.min))..\(LineChart.short(s.max))" : "n=1")
        }
        func r(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
        func l(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        var out = "base: \(baseName)\nnew:  \(newName)\n\n"
        out += r("base", 10) + r("", 6) + r("min..max", 16) + r("%change", 10) + r("new", 10) + r("", 6) + r("min..max", 16) + "  figure\n"
        var lastPoint = ""
        for row in rows {
            if row.point != lastPoint { out += "\n" + row.point + "\n"; lastPoint = row.point }
            let b = cell(row.base), n = cell(row.new)
            let ch = row.change.map { String(format: "%+.1f%%", $0) } ?? "-"
            out += r(b.0, 10) + r(b.1, 6) + r(b.2, 16) + r(ch, 10) + r(n.0, 10) + r(n.1, 6) + r(n.2, 16) + "  " + l(row.figure, 16) + "\n"
        }
        return out
    }
}
