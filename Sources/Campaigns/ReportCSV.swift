import Foundation

/// report.csv: one row per cell. Axis columns come first (in the plan's
/// order), the free-text columns (signature, note, reproduce) last, so
/// simple tools can split the leading columns on commas.
enum ReportCSV {
    static func render(_ r: CampaignReport, axes: [String]) -> String {
        var head = ["index"] + axes
        head += ["state", "verdict", "exit_status", "signal", "wall_s", "ops_per_s", "completed_ops", "first_violation_s",
                 "build", "attempts", "slurm_job", "expected", "met", "signature", "note", "miss", "reproduce"]
        var out = head.joined(separator: ",") + "\n"
        for c in r.cells {
            var row = ["\(c.index)"] + axes.map { c.axes[$0] ?? "" }
            row += [c.state, c.verdict ?? "", c.exitStatus.map(String.init) ?? "", c.signal.map(String.init) ?? "",
                    c.wallS.map { String(format: "%.3f", $0) } ?? "", c.opsPerS.map { String(format: "%.1f", $0) } ?? "",
                    c.completedOps.map(String.init) ?? "", c.firstViolationS.map { String(format: "%.6f", $0) } ?? "",
                    c.build ?? "", "\(c.attempts)", c.slurmJob ?? "", c.expected, c.met ? "yes" : "no",
                    c.signature ?? "", c.note ?? "", c.miss ?? "", c.reproduce]
            out += row.map(field).joined(separator: ",") + "\n"
        }
        return out
    }

    /// RFC 4180 quoting, only where needed.
    static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
