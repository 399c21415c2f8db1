import ConcurrentRmap
import StressSupport

/// How `stress selftest` scores one child run: a planted bug must end in a
/// verdict. A child that dies by a signal or hangs past its deadline is a
/// failure of the tool, reported as such and never as a detection, and
/// distinct from a bug that ran clean (MISSED).
public enum SelftestScore {
    /// (status, time to detection, what) for the run of `inj`. Status:
    /// clean, NOT CLEAN, detected, MISSED, crashed, hung, interrupted, no result.
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
        return ("detected", t, describe(r))
    }

    public static func describe(_ r: StressResult) -> String {
        if let v = r.violations.first { return "\(v.kind)\(v.op.map { " in \($0)" } ?? ""): \(v.detail)" }
        if r.verdict == Verdict.stall { return "stall" }
        if !r.leaks.isEmpty { return "leak: \(r.leaks[0])" }
        return r.verdict.lowercased()
    }
}
