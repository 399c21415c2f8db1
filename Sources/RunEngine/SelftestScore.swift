import ConcurrentRmap
import StressSupport

/// How `stress selftest` scores one child run: a planted bug must end in a
/// verdict with one of the violation classes it declares
/// (`Injection.caughtBy`). A failure of another class is reported as
/// "detected (other class: X)": the run found something, not this bug's
/// signature, and the check's precision failed. A child that dies by a
/// signal or hangs past its deadline is a failure of the tool, reported as
/// such and never as a detection, and distinct from a bug that ran clean
/// (MISSED).
public enum SelftestScore {
    public static let detected = "detected"
    public static let otherClass = "other class"

    /// Whether a failure whose first violation is `kind` (nil: a stall
    /// verdict or a leak with no violation) is one `inj` declares.
    public static func matches(_ inj: Injection, kind: String?) -> Bool {
        inj.caughtBy.contains { $0.rawValue == (kind ?? ViolationKind.stall.rawValue) }
    }

    /// (status, time to detection, what) for the run of `inj`. Status:
    /// clean, NOT CLEAN, detected, other class, MISSED, crashed, hung,
    /// interrupted, no result.
    public static func score(_ inj: Injection, _ out: ChildRun.Outcome) -> (status: String, when: String, what: String) {
        let r = out.result
        let progress = r.map { " (its last snapshot: \($0.verdict), phase \($0.phase), \(f1($0.elapsedS)) s measured, \($0.violations.count) violations)" }
            ?? " (no result file)"
        switch out.ending {
        case .signaled(let sig) where out.interrupted == 0:
            return ("crashed", "-", "crashed (signal \(sig))\(progress)")
        case .timedOut:
            return ("hung", "-", "hung past its deadline and was killed\(progress)")
        default:
            break
        }
        guard let r, r.verdict != Verdict.running else { return ("no result", "-", "\(out.ending.description)\(progress)") }
        if r.verdict == Verdict.interrupted { return ("interrupted", "-", "interrupted by signal \(r.signal ?? 0)") }
        if inj == .none {
            return r.verdict == Verdict.success ? ("clean", "-", "clean") : ("NOT CLEAN", "-", describe(r))
        }
        if r.verdict == Verdict.success { return ("MISSED", "-", "ran \(f1(r.elapsedS)) s without a violation") }
        let t = r.firstViolationS.map { String(format: "%.2fs", $0) } ?? (r.verdict == Verdict.stall ? "stall" : "-")
        let kind = r.violations.first?.kind ?? (r.verdict == Verdict.stall ? ViolationKind.stall.rawValue : "leak")
        guard matches(inj, kind: kind) else {
            return (otherClass, t, "other class: \(kind), expected one of \(expected(inj)): \(describe(r))")
        }
        return (detected, t, describe(r))
    }

    public static func expected(_ inj: Injection) -> String {
        inj.caughtBy.map(\.rawValue).sorted().joined(separator: "|")
    }

    public static func describe(_ r: StressResult) -> String {
        if let v = r.violations.first { return "\(v.kind)\(v.op.map { " in \($0)" } ?? ""): \(v.detail)" }
        if r.verdict == Verdict.stall { return "stall" }
        if !r.leaks.isEmpty { return "leak: \(r.leaks[0])" }
        return r.verdict.lowercased()
    }
}
