import Foundation
import StressSupport

/// report.html: one self-contained page (inline CSS and SVG, no scripts, no
/// external resources) that reads offline and attaches to a mail.
enum ReportHTML {
    static let stateColor = [
        "passed": "#4caf50", "failed": "#d62728", "crashed": "#7b1fa2", "timeout": "#ff7f0e",
        "error": "#8c564b", "unfinished": "#b0b0b0", "running": "#1f77b4", "corrupt": "#000000",
        "met": "#4caf50",
    ]
    /// At most this many rows in the all-cells table; report.csv has every cell.
    static let cellRowLimit = 2000

    static func render(_ r: CampaignReport) -> String {
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>Campaign \(htmlEscaped(r.campaign)): \(r.verdict)</title>
        <style>
        body{font-family:sans-serif;margin:24px;color:#222;max-width:1300px}
        table{border-collapse:collapse;margin:8px 0 16px}
        td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left;vertical-align:top}
        th{background:#f3f3f3} td.n{text-align:right}
        .verdict{font-size:22px;font-weight:bold;padding:10px 14px;border-radius:4px;color:#fff;display:inline-block}
        .pass{background:#2e7d32} .fail{background:#c62828}
        .mixed{border:3px solid #c62828;background:#fff3f3;color:#c62828;font-weight:bold;padding:10px;margin:12px 0}
        code{background:#f5f5f5;padding:0 3px;font-size:12px}
        .note{color:#555;font-size:13px}
        </style></head><body>
        <h1>Campaign \(htmlEscaped(r.campaign))</h1>

        """
        let order = ["passed", "failed", "crashed", "timeout", "error", "unfinished", "running", CampaignReport.corrupt]
        let states = order.compactMap { s in r.counts[s].map { "\($0) \(s)" } }.joined(separator: ", ")
        let planted = r.cells.filter { $0.expected != "SUCCESS" }
        let caught = planted.isEmpty ? "" : "; \(planted.filter(\.met).count) of \(planted.count) planted bugs caught"
        h += "<p><span class=\"verdict \(r.passed ? "pass" : "fail")\">\(r.verdict): \(r.cellCount) cells, \(htmlEscaped(states))\(caught)</span></p>\n"
        if r.mixedBuilds {
            h += "<div class=\"mixed\">MIXED BUILDS: these results come from \(r.builds.count) different builds ("
            h += r.builds.map { "\(htmlEscaped($0.build)): \(cellCountText($0.cells))" }.joined(separator: "; ")
            h += "). Differences between cells may be differences between builds.</div>\n"
        }
        if let d = r.description { h += "<p>\(htmlEscaped(d))</p>\n" }

        h += "<h2>Expectations</h2>\n<p class=\"note\">A correct cell must pass; a cell with a planted bug must fail with one of the violation classes that bug declares (as stress selftest scores it). The campaign passes when every cell meets its expectation.</p>\n"
        if r.missed.isEmpty {
            h += "<p>Every cell met its expectation.</p>\n"
        } else {
            h += "<table><tr><th>cell</th><th>configuration</th><th>expected</th><th>state</th><th>why it did not meet it</th><th>reproduce</th></tr>\n"
            for c in r.missed.prefix(cellRowLimit) {
                h += "<tr><td class=\"n\">\(c.index)</td><td>\(htmlEscaped(c.key))</td><td>\(htmlEscaped(c.expected))</td>"
                h += "<td style=\"color:\(stateColor[c.state] ?? "#222")\">\(htmlEscaped(c.state))</td><td>\(htmlEscaped(c.miss ?? ""))</td>"
                h += "<td><code>\(htmlEscaped(c.reproduce))</code></td></tr>\n"
            }
            h += "</table>\n"
        }

        h += "<table>\n"
        var rows: [(String, String)] = [("plan", r.planId), ("generated", r.generated)]
        for a in r.axes { rows.append(("axis \(a[0])", a.dropFirst().joined(separator: ", "))) }
        rows.append(("builds", r.builds.isEmpty ? "none (no results yet)" : r.builds.map { "\($0.build) (\(cellCountText($0.cells)))" }.joined(separator: ", ")))
        let m = r.machineTime
        if let asked = m.askedThreadSeconds, let cellS = m.askedCellSeconds {
            rows.append(("machine time asked", "\(hours(asked)) thread-hours (\(hours(cellS)) cell-hours × threads)"))
        }
        rows.append(("machine time used", "\(hours(m.usedThreadSeconds)) thread-hours over \(hours(m.usedCellSeconds)) cell-hours (\(m.measure))"))
        for (k, v) in rows { h += "<tr><th>\(htmlEscaped(k))</th><td>\(htmlEscaped(v))</td></tr>\n" }
        h += "</table>\n"

        h += "<h2>Verdict matrix</h2>\n<p class=\"note\">Each square folds the seeds (and any fixed axis) of one combination: cells that met their expectation/total, green when all did, else coloured by the worst state among those that did not (corrupt, failed, crashed, timeout, error, unfinished, running, passed). Hover for the counts.</p>\n"
        h += grid(r.matrix, legend: true) { sq in
            // Where every cell met its expectation, a failure is a caught bug.
            let others = CampaignReport.severity.filter { $0 != "passed" }.compactMap { s in
                sq.counts[s].map { "\($0) \(s == "failed" && sq.missed == 0 ? "caught" : s)" }
            }
            return (stateColor[sq.worst] ?? "#ccc", "\(sq.total - sq.missed)/\(sq.total)", others.prefix(2).joined(separator: ", "),
                    sq.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        }

        h += "<h2>Failure signatures</h2>\n"
        if r.signatures.isEmpty {
            h += "<p>No cell failed.</p>\n"
        } else {
            h += "<p class=\"note\">Failed cells grouped by their first violation: kind, the operation that hit it (or the audit that found it), and its detail with numbers replaced by #. The command reproduces the first cell's operation streams (not its interleaving).</p>\n"
            h += "<table><tr><th>cells</th><th>signature</th><th>seen with</th><th>first seed</th><th>reproduce</th></tr>\n"
            for s in r.signatures {
                h += "<tr><td class=\"n\">\(s.count)</td><td>\(htmlEscaped(s.signature))</td><td>\(htmlEscaped(s.seenWith.joined(separator: "; ")))</td>"
                h += "<td class=\"n\">\(htmlEscaped(s.firstSeed))</td><td><code>\(htmlEscaped(s.reproduce))</code></td></tr>\n"
            }
            h += "</table>\n"
        }

        h += "<h2>Corrupt, crashed, timed out and unfinished cells</h2>\n"
        if r.problems.isEmpty {
            h += "<p>None: every cell ran to a verdict.</p>\n"
        } else {
            h += "<table><tr><th>cell</th><th>configuration</th><th>state</th><th>signal</th><th>note</th><th>earlier attempts</th><th>reproduce</th></tr>\n"
            for p in r.problems.prefix(cellRowLimit) {
                h += "<tr><td class=\"n\">\(p.index)</td><td>\(htmlEscaped(p.key))</td><td>\(htmlEscaped(p.state))</td>"
                h += "<td>\(p.signal.map { "\($0) \(p.signalName ?? "")" } ?? "")</td><td>\(htmlEscaped(p.note ?? ""))</td>"
                h += "<td>\(htmlEscaped(p.earlierAttempts.joined(separator: "; ")))</td><td><code>\(htmlEscaped(p.reproduce))</code></td></tr>\n"
            }
            h += "</table>\n"
        }

        h += "<h2>Throughput</h2>\n<p class=\"note\">Median total ops/s over the seeds of each combination (darker is faster, relative to the fastest square). Cells that stopped at their first violation ran briefly and are not comparable.</p>\n"
        let peak = r.matrix.squares.flatMap { $0 }.compactMap(\.medianOpsPerS).max() ?? 0
        h += grid(r.matrix, legend: false) { sq in
            guard let v = sq.medianOpsPerS, peak > 0 else { return ("#eeeeee", "-", "", "no result") }
            let shade = Int(235 - 150 * (v / peak))
            return (String(format: "#%02x%02xff", shade, shade), opsText(v), "", String(format: "%.0f ops/s", v))
        }

        h += "<h2>Cells</h2>\n"
        if r.cells.count > cellRowLimit { h += "<p class=\"note\">The first \(cellRowLimit) of \(r.cells.count) cells; report.csv lists all.</p>\n" }
        h += "<table><tr><th>cell</th><th>configuration</th><th>state</th><th>verdict</th><th>expected</th><th>met</th><th>wall s</th><th>ops/s</th><th>build</th><th>attempts</th><th>reproduce</th></tr>\n"
        for c in r.cells.prefix(cellRowLimit) {
            h += "<tr><td class=\"n\">\(c.index)</td><td>\(htmlEscaped(c.key))</td>"
            h += "<td style=\"color:\(stateColor[c.state] ?? "#222")\">\(htmlEscaped(c.state))</td><td>\(htmlEscaped(c.verdict ?? ""))</td>"
            h += "<td>\(htmlEscaped(c.expected))</td><td>\(c.met ? "yes" : "no")</td>"
            h += "<td class=\"n\">\(c.wallS.map { String(format: "%.1f", $0) } ?? "")</td><td class=\"n\">\(c.opsPerS.map { String(format: "%.0f", $0) } ?? "")</td>"
            h += "<td>\(htmlEscaped(c.build ?? ""))</td><td class=\"n\">\(c.attempts)</td><td><code>\(htmlEscaped(c.reproduce))</code></td></tr>\n"
        }
        h += "</table>\n</body></html>\n"
        return h
    }

    /// The matrix as an SVG grid: row labels left, one column per value of
    /// the column axis; `paint` gives a square's fill, two text lines and a
    /// hover title.
    static func grid(_ m: CampaignReport.Matrix, legend: Bool,
                     paint: (CampaignReport.Square) -> (fill: String, line1: String, line2: String, title: String)) -> String {
        let labels = m.rowLabels.map { zip(m.rowAxes, $0).map { "\($0)=\($1)" }.joined(separator: " ") }
        let labelWidth = Double(max(60, Int(Double(labels.map(\.count).max() ?? 0) * 7.5) + 24))
        let cw = 128.0, ch = 38.0, top = 40.0
        let legendHeight = legend ? 30.0 : 0
        let width = max(labelWidth + cw * Double(m.columns.count) + 10, legend ? 600 : 0)
        let height = top + ch * Double(labels.count) + legendHeight + 10
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        let axisTitle = m.columnAxis ?? ""
        s += "<text x=\"\(Int(labelWidth))\" y=\"14\" font-weight=\"bold\">\(htmlEscaped(axisTitle))</text>\n"
        for (j, col) in m.columns.enumerated() {
            let x = labelWidth + cw * Double(j) + cw / 2
            s += "<text x=\"\(Int(x))\" y=\"32\" text-anchor=\"middle\">\(htmlEscaped(col.count > 14 ? String(col.prefix(13)) + "…" : col))<title>\(htmlEscaped(col))</title></text>\n"
        }
        for (i, label) in labels.enumerated() {
            let y = top + ch * Double(i)
            s += "<text x=\"\(Int(labelWidth - 8))\" y=\"\(Int(y + ch / 2 + 4))\" text-anchor=\"end\">\(htmlEscaped(label))</text>\n"
            for (j, sq) in m.squares[i].enumerated() {
                let x = labelWidth + cw * Double(j)
                let p = paint(sq)
                s += "<g class=\"square\"><title>\(htmlEscaped(label.isEmpty ? "" : label + ", "))\(htmlEscaped(axisTitle.isEmpty ? "" : "\(axisTitle)=\(m.columns[j]): "))\(htmlEscaped(p.title))</title>"
                s += "<rect x=\"\(Int(x + 2))\" y=\"\(Int(y + 2))\" width=\"\(Int(cw - 4))\" height=\"\(Int(ch - 4))\" rx=\"3\" fill=\"\(p.fill)\"/>"
                s += "<text x=\"\(Int(x + cw / 2))\" y=\"\(Int(y + (p.line2.isEmpty ? ch / 2 + 4 : ch / 2 - 2)))\" text-anchor=\"middle\" font-weight=\"bold\">\(htmlEscaped(p.line1))</text>"
                if !p.line2.isEmpty {
                    s += "<text x=\"\(Int(x + cw / 2))\" y=\"\(Int(y + ch / 2 + 12))\" text-anchor=\"middle\" font-size=\"10\">\(htmlEscaped(p.line2))</text>"
                }
                s += "</g>\n"
            }
        }
        if legend {
            var x = 4.0
            let y = top + ch * Double(labels.count) + 12
            for state in ["met", "corrupt", "failed", "crashed", "timeout", "error", "unfinished", "running"] {
                s += "<rect x=\"\(Int(x))\" y=\"\(Int(y))\" width=\"12\" height=\"12\" fill=\"\(stateColor[state]!)\"/>"
                s += "<text x=\"\(Int(x + 16))\" y=\"\(Int(y + 10))\">\(state)</text>\n"
                x += Double(state.count) * 7 + 34
            }
        }
        return s + "</svg>\n"
    }

    static func hours(_ seconds: Double) -> String { String(format: seconds < 36 ? "%.4f" : "%.2f", seconds / 3600) }

    static func opsText(_ v: Double) -> String {
        v >= 1e6 ? String(format: "%.2fM", v / 1e6) : v >= 1e3 ? String(format: "%.0fk", v / 1e3) : String(format: "%.0f", v)
    }
}
