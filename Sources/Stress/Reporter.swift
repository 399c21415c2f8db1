import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport

/// Human-readable output of a run: header, status lines, final report. To
/// standard output, or to standard error when the JSON goes to standard
/// output (`--json -`).
final class Reporter: @unchecked Sendable {
    let quiet: Bool
    let toStandardError: Bool
    let tty: Bool
    var statusShown = false

    init(quiet: Bool, toStandardError: Bool = false) {
        self.quiet = quiet
        self.toStandardError = toStandardError
        tty = isatty(toStandardError ? STDERR_FILENO : STDOUT_FILENO) != 0
    }

    func write(_ s: String) {
        if toStandardError { FileHandle.standardError.write(Data(s.utf8)) } else { print(s, terminator: ""); fflush(nil) }
    }

    func line(_ s: String) { write(s + "\n") }

    func header(_ s: RunSettings) {
        let amount = s.ops.map { "ops=\($0) (at most \(fmt(s.durationS))s)" } ?? "duration=\(fmt(s.durationS))s"
        line("stress \(StressVersion.description): scheme=\(s.scheme.rawValue) threads=\(s.threads) \(amount)\(s.warmupS > 0 ? " warmup=\(fmt(s.warmupS))s" : "") seed=\(s.seed) rcu=\(s.rcu.rawValue) sync=\(s.sync.rawValue)\(s.scheme.hasAnonVMAWalk ? " anon-vma-walk=\(s.anonVmaWalk.rawValue)" : "")\(s.scheme == .anonVma ? " anon-vma-merge=\(s.anonVmaMerge ? "on" : "off")" : "") checks=\(s.checks.rawValue)\(s.scheme == .anonVMAChain ? " avc-reuse=\(s.anonVmaReuse ? "on" : "off")" : "")\(s.inject == .none ? "" : " inject=\(s.inject.rawValue)")\(s.perturb ? " perturb" : "") recycling=\(s.recycling.rawValue)\(s.pin ? " pin" : "") libraries=\(s.libraries) i-mmap=\(s.iMmap.rawValue) inodes=\(s.inodes) shmem-inodes=\(s.shmemInodes)")
        line("  workload=\(s.workload.rawValue)\(s.workload == .aim7 || s.workload == .zygote ? " (\(WorkloadShape.children(processes: s.processes, workers: s.threads)) children per worker)" : "") mix=\(s.mix) frames=\(s.frames) swap-slots=\(s.swapSlots) processes=\(s.processes)\(s.workload.isScript ? "" : " population=\(s.effectivePopulation) family-size=\(s.familySize)") vma-pages=\(s.vmaPages) audit-interval=\(fmt(s.auditIntervalS))s")
    }

    func status(_ s: StatusSnapshot) {
        let text: String
        if s.phase == "starting" {
            text = String(format: "[%6.1fs] starting workers: %d of %d", s.elapsed, s.workersStarted, s.workers)
        } else {
            text = String(format: "[%6.1fs] %10.0f ops/s  procs %4d  frames %d/%d  swap %d  audits %d  violations %d",
                          s.elapsed, s.opsPerS, s.processes, s.framesInUse, s.frames, s.swapInUse, s.audits, s.violations)
                + (s.phase == "warmup" ? "  (warm-up)" : "")
        }
        if tty {
            write("\r\u{1B}[K" + text)
            statusShown = true
        } else {
            line(text)
        }
    }

    func finishStatus() { if statusShown { write("\n") } }

    func report(_ r: StressResult) {
        line("")
        line(pad("operation", 10) + rpad("completed", 12) + rpad("ops/s", 11) + rpad("idle", 10) + rpad("p50", 10) + rpad("p99", 10) + rpad("p99.9", 10) + rpad("max", 10))
        for op in OpKind.allCases {
            guard let s = r.ops[op.name] else { continue }
            let timed = s.timed > 0
            line(pad(op.name, 10) + rpad("\(s.completed)", 12) + rpad(fmt(s.perS, 0), 11) + rpad("\(s.idle)", 10)
                 + rpad(timed ? ns(s.p50Ns) : "-", 10) + rpad(timed ? ns(s.p99Ns) : "-", 10)
                 + rpad(timed ? ns(s.p999Ns) : "-", 10) + rpad(timed ? ns(s.maxNs) : "-", 10))
        }
        line(pad("total", 10) + rpad("\(r.totalCompleted)", 12) + rpad(fmt(r.opsPerS, 0), 11) + rpad("\(r.totalIdle)", 10))
        line("  (completed operations per measured second over \(fmt(r.elapsedS, 2)) s; idle: attempts that found nothing to do)")
        line("")
        let objects = r.settings.scheme.walkObjects
        line("rmap walks     \(r.walks.count)  (\(fmt(r.walks.visitedPerWalk, 2)) \(objects) visited per walk, \(fmt(r.walks.wastedPerWalk, 2)) of them without the page; \(r.walks.trylockFailures) trylock failures)")
        line("mremap         \(r.event(.mremapCopy)) shared pages copied, \(r.event(.mremapMove)) exclusive pages re-indexed, \(r.event(.mremapKeep)) pages kept as they were, \(r.event(.mremapSwapMove)) swap entries moved, \(r.event(.remapRecordFull)) moves with remap records full")
        line("VMAs           \(r.event(.vmaSplit)) split, \(r.event(.vmaShrink)) shrunk by unmapping their tail, \(r.event(.vmaMerge)) merged\(r.settings.scheme == .anonVma ? "; \(r.event(.anonVmaReused)) anon_vmas reused from a neighbour" : "")")
        line("reclaim        \(r.event(.reclaimScanned)) scanned, \(r.event(.reclaimReferenced)) referenced, \(r.event(.swapOut)) swapped out, \(r.event(.swapIn)) swapped in, \(r.event(.directReclaim)) direct")
        line("swap cache     \(r.event(.swapCacheHit)) swap-ins mapped the cached page, \(r.event(.swapCacheCopy)) copied it (the scheme's rule), \(r.event(.swapCacheFreed)) cached pages freed")
        line("migration      \(r.event(.migrated)) pages migrated")
        line("faults         \(r.event(.firstTouch)) first touch, \(r.event(.cowCopy)) COW copies, \(r.event(.cowReuse)) COW reuses, \(r.event(.faultOOM)) out of memory")
        line("files          \(r.event(.mmapFile)) file mappings, \(r.event(.fileFault)) cache pages mapped, \(r.event(.fileCow)) private copies, \(r.event(.fileWriteback)) written back, \(r.event(.fileDropped)) dropped by reclaim, \(r.event(.truncate)) truncates, \(r.event(.fileSigbus)) faults beyond EOF, \(r.event(.mapLibrary)) libraries mapped (\(r.event(.mapLibraryFailed)) without a VMA slot)")
        line("shmem          \(r.event(.mmapShmem)) shared anonymous mappings (\(r.event(.shmemAllocFailed)) found the pool empty), \(r.event(.shmemEvict)) inodes evicted, \(r.event(.shmemWriteback)) pages written to swap")
        line("processes      \(r.event(.forkExec)) execs after a fork that outgrew its family")
        if let last = r.samples.last {
            line("shape          \(last.processes) processes in \(last.families) families (mean \(fmt(last.meanFamilySize, 2)), largest \(last.maxFamilySize)), \(last.framesInUse)/\(r.settings.frames) frames in use")
        }
        if let st = r.steadyState {
            line("steady state   \(st.steady ? "yes" : "NO"): rate \(sign(st.rateDriftPercent)), family size \(sign(st.familySizeDriftPercent)), frames \(sign(st.framesDriftPercent)) (second half against first, over \(st.samples) samples; limit ±\(fmt(st.limitPercent, 0))%)")
        }
        line("rcu            \(r.rcuStats.gracePeriods) grace periods (probe and workers); workers waited for \(r.event(.gracePeriodWait)), found \(r.event(.gracePeriodShared)) times that another had done, and freed \(r.event(.retireBatchFreed)) batches")
        line("audits         \(r.audits) (the last one with all workers stopped)")
        line("leak check     \(r.leakCheck)")
        for l in r.leaks.prefix(10) { line("  leak: \(l)") }
        for n in r.notes { line("note: \(n)") }
        if let stuck = r.stalledWorkers, !stuck.isEmpty {
            line("")
            line("stuck workers (their operations are counted up to where they stopped):")
            for w in stuck.prefix(16) { line("  worker \(w.worker): in \(w.operation) for \(fmt(w.stuckForS, 1)) s") }
        }
        if let first = r.violations.first {
            line("")
            line("first violation\(r.firstViolationS.map { " (at \(fmt($0, 3)) s)" } ?? ""): \(first.kind): \(first.detail)\(first.frame != 0 ? " frame=\(first.frame)" : "")\(first.mm != 0 ? " mm=\(first.mm)" : "") vpn=0x\(String(first.vpn, radix: 16))\(first.op.map { " op=\($0)" } ?? "")\(first.cpu >= 0 ? " worker=\(first.cpu)" : "")")
            line("reproduce with: stress run \(r.settings.arguments.joined(separator: " "))")
            line("  (the seed replays each worker's operation stream, not the interleaving)")
            for v in r.violations.dropFirst().prefix(9) { line("  then \(v.kind): \(v.detail)") }
        }
        if let recent = r.recentOperations, r.verdict != Verdict.success {
            line("last operations per worker (oldest first):")
            for (i, ops) in recent.enumerated().prefix(64) where !ops.isEmpty {
                line("  worker \(i): " + ops.suffix(8).joined(separator: " "))
            }
        }
        line("")
        let n = r.violationsByKind.values.reduce(0, +)
        let kinds = r.violationsByKind.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        switch r.verdict {
        case Verdict.success:
            line("SUCCESS")
        case Verdict.interrupted:
            line("INTERRUPTED by signal \(r.signal ?? 0)" + (n > 0 ? ": \(n) violation\(n == 1 ? "" : "s") so far (\(kinds))" : ""))
        default:
            line("\(r.verdict): \(n) violation\(n == 1 ? "" : "s") (\(kinds))" + (r.leaks.isEmpty ? "" : ", \(r.leaks.count) leaks"))
        }
    }

    private func sign(_ x: Double) -> String { x.isFinite ? String(format: "%+.1f%%", x) : "n/a" }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func rpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
func ns(_ v: UInt64) -> String {
    if v >= 1_000_000_000 { return fmt(Double(v) / 1e9, 2) + "s" }
    if v >= 1_000_000 { return fmt(Double(v) / 1e6, 2) + "ms" }
    if v >= 10_000 { return fmt(Double(v) / 1e3, 1) + "us" }
    return "\(v)ns"
}
