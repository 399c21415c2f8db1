import ConcurrentRmap
import Foundation
import StressKit

/// Human-readable output of a run: header, status lines, final report.
final class Reporter: @unchecked Sendable {
    let quiet: Bool
    let tty = isatty(STDOUT_FILENO) != 0
    var statusShown = false

    init(quiet: Bool) { self.quiet = quiet }

    func line(_ s: String) { print(s); fflush(nil) }

    func header(_ o: StressOptions) {
        line("stress \(StressVersion.version) (\(StressVersion.gitCommit)): threads=\(o.threads) duration=\(fmt(o.duration))s seed=\(o.seed) rcu=\(o.rcu.rawValue) sync=\(o.machine.sync.rawValue) checks=\(o.machine.checks.rawValue)\(o.machine.injection == .none ? "" : " inject=\(o.machine.injection.rawValue)")\(o.machine.perturb ? " perturb" : "")")
        line("  mix=\(o.mix) frames=\(o.machine.frames) swap-slots=\(o.machine.swapSlots) processes=\(o.machine.maxProcesses) vma-pages=\(o.machine.vmaPages) audit-interval=\(fmt(o.auditInterval))s")
    }

    func status(_ s: StatusSnapshot) {
        let text = String(format: "[%6.1fs] %10.0f ops/s  procs %4d  frames %d/%d  swap %d  audits %d  violations %d",
                          s.elapsed, s.opsPerS, s.processes, s.framesInUse, s.frames, s.swapInUse, s.audits, s.violations)
        if tty {
            print("\r\u{1B}[K" + text, terminator: "")
            fflush(nil)
            statusShown = true
        } else {
            line(text)
        }
    }

    func finishStatus() { if statusShown { print("") } }

    func report(_ r: StressResult) {
        line("")
        line(pad("operation", 10) + rpad("count", 12) + rpad("ops/s", 12) + rpad("idle", 10) + rpad("p50", 10) + rpad("p99", 10) + rpad("p99.9", 10) + rpad("max", 10))
        for op in OpKind.allCases {
            guard let s = r.ops[op.name] else { continue }
            line(pad(op.name, 10) + rpad("\(s.count)", 12) + rpad(fmt(s.perS, 0), 12) + rpad("\(s.idle)", 10)
                 + rpad(ns(s.p50Ns), 10) + rpad(ns(s.p99Ns), 10) + rpad(ns(s.p999Ns), 10) + rpad(ns(s.maxNs), 10))
        }
        line(pad("total", 10) + rpad("\(r.totalOps)", 12) + rpad(fmt(r.opsPerS, 0), 12))
        line("")
        line("rmap walks     \(r.walks.count)  (\(fmt(r.walks.mmsPerWalk, 2)) mms/walk, \(r.walks.trylockFailures) trylock failures)")
        line("mremap         \(r.mremapCopies) shared pages copied, \(r.mremapMoves) exclusive pages re-indexed, \(r.events["mremapSwapMove"] ?? 0) swap entries moved")
        line("reclaim        \(r.events["reclaimScanned"] ?? 0) scanned, \(r.events["reclaimReferenced"] ?? 0) referenced, \(r.pagesReclaimed) swapped out, \(r.pagesSwappedIn) swapped in, \(r.events["directReclaim"] ?? 0) direct")
        line("migration      \(r.pagesMigrated) pages migrated")
        line("faults         \(r.events["firstTouch"] ?? 0) first touch, \(r.events["cowCopy"] ?? 0) COW copies, \(r.events["cowReuse"] ?? 0) COW reuses, \(r.events["faultOOM"] ?? 0) out of memory")
        line("rcu            \(r.rcuStats.gracePeriods) grace periods (probe), \(r.rcuStats.callbacksQueued) callbacks queued, \(r.rcuStats.callbacksRun) run")
        line("audits         \(r.audits) (last one with all workers stopped)")
        line("leak check     \(r.leaks.isEmpty ? (r.verdict == "STALL" ? "not run (stall)" : "clean") : "\(r.leaks.count) leaks")")
        for l in r.leaks.prefix(10) { line("  leak: \(l)") }
        if let first = r.violations.first {
            line("")
            line("first violation\(r.firstViolationS.map { " (at \(fmt($0, 3)) s)" } ?? ""): \(first.kind): \(first.detail)\(first.frame != 0 ? " frame=\(first.frame)" : "")\(first.mm != 0 ? " mm=\(first.mm)" : "") vpn=0x\(String(first.vpn, radix: 16))\(first.op.map { " op=\($0)" } ?? "")\(first.cpu >= 0 ? " worker=\(first.cpu)" : "")")
            line("reproduce with: --seed \(r.seed) (same options; replays each worker's operation stream, not the interleaving)")
            for v in r.violations.dropFirst().prefix(9) { line("  then \(v.kind): \(v.detail)") }
            if let recent = r.recentOperations {
                line("last operations per worker (oldest first):")
                for (i, ops) in recent.enumerated() where !ops.isEmpty {
                    line("  worker \(i): " + ops.suffix(8).joined(separator: " "))
                }
            }
        }
        line("")
        if r.verdict == "SUCCESS" {
            line("SUCCESS")
        } else {
            let kinds = r.violationsByKind.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            let n = r.violationsByKind.values.reduce(0, +)
            line("\(r.verdict): \(n) violation\(n == 1 ? "" : "s") (\(kinds))")
        }
    }
}

func fmt(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func rpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
func ns(_ v: UInt64) -> String {
    if v >= 1_000_000_000 { return fmt(Double(v) / 1e9, 2) + "s" }
    if v >= 1_000_000 { return fmt(Double(v) / 1e6, 2) + "ms" }
    if v >= 10_000 { return fmt(Double(v) / 1e3, 1) + "us" }
    return "\(v)ns"
}
