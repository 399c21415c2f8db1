import ArgumentParser
import ConcurrentRmap
import Foundation
import Measurement
import RmapTrace
import RunEngine
import StressSupport

/// `stress schemes`: the same workloads on every rmap scheme, written
/// to a folder with a report.
struct Schemes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schemes",
        abstract: "Compare the rmap schemes on the same workloads; write report.html, CSVs, schemes.json and runs.json.",
        discussion: """
            Throughput and latency: `stress run` children at each thread count and sync mode for every scheme (repeats \
            interleaved, the scheme order alternating). Then single-thread benchmarks on fresh machines: rmap walks over \
            fork trees (CHILDRENxDEPTH, with and without exec), fork+exit against VMAs per process, mremap against VMA \
            size and the share of pages still shared after fork, swap-in from a sharer through the swap cache, and \
            rmap metadata bytes; the workloads the designs were argued over (AIM7's N children, the fork chain, the \
            zygote, fork-heavy throughput under the rwlock and the mutex); then the claims against the figures. Exit status: 0 everything SUCCESS, 1 a run \
            or benchmark failed or was lost, 2 bad usage, 3 a run stalled, 128+N interrupted by signal N.
            """)

    enum Defaults: SweepDefaults {
        static var settings: RunSettings { SchemeConfig.defaultBase }
        static var threadList: String { "1,2" }
        static var repeats: Int { SchemeConfig().repeats }
        static var workRange: ClosedRange<Double> { SchemeConfig.workRange }
        static func help(_ option: String, _ standard: String) -> String {
            switch option {
            case "threads": "Worker thread counts of the throughput runs, e.g. \(threadList) (each \(Ranges.r(Limits.threads)))."
            case "repeat": "Repeats of every run and benchmark, \(Ranges.r(repeatRange)) (default \(repeats)); medians are reported."
            case "duration": "Seconds measured per throughput run, \(Ranges.s(Limits.duration)) (default \(Parse.number(settings.durationS)))."
            case "warmup": "Seconds of warm-up per throughput run, \(Ranges.s(Limits.warmup)) (default \(Parse.number(settings.warmupS)))."
            case "seed": "Seed of repeat 0, 0...\(UInt64.max) (random when omitted; recorded in schemes.json)."
            case "processes": "Process-table entries of the throughput runs, \(Ranges.r(Limits.processes)) (default \(settings.processes))."
            case "work": "Scale every benchmark's iteration count, \(Ranges.s(workRange)) (default 1)."
            default: standard
            }
        }
    }

    @OptionGroup var sweep: SweepOptions<Defaults>
    @OptionGroup var duration: DurationOption<Defaults>
    @OptionGroup var warmup: WarmupOption<Defaults>
    @OptionGroup var seed: SeedOption<Defaults>
    @OptionGroup var processes: ProcessesOption<Defaults>
    @Flag(inversion: .prefixedNo, help: "Run the throughput child runs (--no-runs: benchmarks only).")
    var runs = true
    @Option(help: "Fork trees, CHILDRENxDEPTH (children \(Ranges.r(TreeShape.childrenRange)), depth \(Ranges.r(TreeShape.depthRange)), at most \(TreeShape.mmsLimit) processes).")
    var trees: String = "1x1,4x1,2x3,8x2,1000x1"
    @Option(help: "VMAs per process of the fork+exit benchmark (each 1...\(MachineConfig.maxVMAs)).")
    var vmas: String = "1,2,4,8,16"
    @Option(name: .customLong("fork-vma-pages"), help: "Written pages per VMA of the fork+exit benchmark (divisors of 512).")
    var forkVMAPages: String = "1,16"
    @Option(name: .customLong("mremap-pages"), help: "VMA sizes of the mremap benchmark in pages (divisors of 512).")
    var mremapPages: String = "4,16,64,256"
    @Option(help: "Percent of the VMA's pages still shared with the child at mremap (each 0...100).")
    var shared: String = "0,50,100"
    @Option(name: .customLong("swap-pages"), help: "Shared pages swapped out and read back, 1...512 (default 64).")
    var swapPages: String?
    @OptionGroup var work: WorkOption<Defaults>
    @Option(name: .customLong("bench-checks"), help: "Always-on checks in the benchmark machines: full, fast or off (default off).")
    var benchChecks: String?
    @Option(help: "Schemes to compare, comma-separated, in report order (default \(SchemeConfig().schemes.map(\.rawValue).joined(separator: ",")); known: \(SchemeKind.allCases.map(\.rawValue).joined(separator: ", "))).")
    var schemes: String?
    @Option(name: .customLong("aim7-children"), help: "Children of the AIM7 benchmark, comma-separated (each \(Ranges.r(HistoricConfig.aim7ChildrenRange)); default 10,100,1000).")
    var aim7Children: String = "10,100,1000"
    @Option(name: .customLong("chain-generations"), help: "Generations of the fork-chain benchmark, \(Ranges.r(HistoricConfig.generationsRange)) (default \(HistoricConfig().chainGenerations)).")
    var chainGenerations: String?
    @Option(name: .customLong("zygote-children"), help: "Children of the zygote benchmark, \(Ranges.r(HistoricConfig.zygoteChildrenRange)) (default \(HistoricConfig().zygoteChildren)).")
    var zygoteChildren: String?
    @Option(name: .customLong("file-mappings"), help: "Mappings of one 512-page file for the file walk section, comma-separated powers of two 1...512 (default 1,4,16,64,256); each mapping its own window, walked with i_mmap a list and a tree.")
    var fileMappings: String = "1,4,16,64,256"
    @Option(name: .customLong("library-processes"), help: "Processes mapping one library for the file walk section, comma-separated 1...4000 (default 16,128).")
    var libraryProcesses: String = "16,128"
    // Required: a default of docs/schemes overwrote the committed report
    // whenever the command ran from the checkout.
    @Option(help: "Output folder (created if missing; required, e.g. --out docs/schemes to regenerate the committed report from a clean commit).")
    var out: String
    @Option(name: .customLong("trace"), help: "A recorded trace or strace log (repeatable): judge the 2004 claims on each program from its exact statistics instead of running the synthetic comparison, and replay it (defaults) for the share of anonymous pages born from private file mappings; writes trace-claims.md, trace-claims.json and trace-files.json to --out.")
    var traces: [String] = []

    func run() throws {
        if !traces.isEmpty { return try judgeTraces() }
        var c = SchemeConfig()
        do {
            c.threads = try sweep.threads()
            c.syncs = try sweep.syncs()
            c.trees = try TreeShape.list(trees, option: "trees")
            c.vmas = try ScaleLists.ints(vmas, option: "vmas", range: 1...MachineConfig.maxVMAs)
            c.mremapPages = try ScaleLists.ints(mremapPages, option: "mremap-pages", range: SchemeConfig.vmaPagesRange)
            c.forkVMAPages = try ScaleLists.ints(forkVMAPages, option: "fork-vma-pages", range: SchemeConfig.vmaPagesRange)
            c.sharedPercents = try ScaleLists.ints(shared, option: "shared", range: 0...100)
            c.historic.aim7Children = try ScaleLists.ints(aim7Children, option: "aim7-children", range: HistoricConfig.aim7ChildrenRange)
            c.file.mappings = try ScaleLists.ints(fileMappings, option: "file-mappings", range: FileBenchConfig.mappingsRange)
            c.file.libraryProcesses = try ScaleLists.ints(libraryProcesses, option: "library-processes", range: 1...4000)
        } catch let e as ListParseError {
            throw ValidationError(e.message)
        }
        for (name, list) in [("mremap-pages", c.mremapPages), ("fork-vma-pages", c.forkVMAPages)] {
            for p in list where !SchemeConfig.isVMASize(p) {
                throw ValidationError("bad value '\(p)' in --\(name): a VMA size must divide 512 (1, 2, 4, ... 512)")
            }
        }
        c.repeats = try sweep.repeats.value()
        if let v = try duration.value() { c.base.durationS = v }
        if let v = try warmup.value() { c.base.warmupS = v }
        if let v = try processes.value() { c.base.processes = v }
        c.seed = try seed.value() ?? UInt64.random(in: 0...UInt64.max)
        c.base.seed = c.seed
        if let v = schemes {
            var list: [SchemeKind] = []
            for name in v.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                let k: SchemeKind = try Parse.choice(name, "--schemes", "rmap scheme")
                guard !list.contains(k) else { throw ValidationError("--schemes names '\(name)' twice") }
                list.append(k)
            }
            c.schemes = list
        }
        if let v = chainGenerations {
            c.historic.chainGenerations = try Parse.whole(v, "--chain-generations", HistoricConfig.generationsRange)
            c.historic.chainSampleEvery = max(1, c.historic.chainGenerations / 8)
        }
        if let v = zygoteChildren { c.historic.zygoteChildren = try Parse.whole(v, "--zygote-children", HistoricConfig.zygoteChildrenRange) }
        if let v = swapPages { c.swapPages = try Parse.whole(v, "--swap-pages", 1...512) }
        if let v = try work.value() { c.work = v }
        if let v = benchChecks { c.benchChecks = try Parse.choice(v, "--bench-checks", "check level") }
        c.runs = runs
        if let p = c.validate() { throw ValidationError(p) }
        try Parse.outputFolder(out)

        let nRuns = c.runs ? c.repeats * c.schemes.count * c.threads.count * c.syncs.count : 0
        print("stress schemes \(StressVersion.description): \(nRuns) runs of \(c.base.warmupS + c.base.durationS)s + benchmarks, \(c.repeats) repeats, seed=\(c.seed), \(HostInfo.cpuCount) CPUs (\(HostInfo.cpuModel))")
        fflush(nil)
        let o = try SchemeCompare.run(c, arguments: CommandLine.arguments) { line in print(line); fflush(nil) }
        try SchemeReport.write(dir: out, o)
        for claim in o.claims { print("claim  \(claim.who): \(claim.verdict): \(claim.figure)") }
        print(FileReport.text(o), terminator: "")
        print("wrote \(out)/" + SchemeReport.files.joined(separator: ", "))
        for l in o.lost { print("lost: \(l)") }
        if o.interrupted != 0 {
            print("INTERRUPTED by signal \(o.interrupted)")
            throw ExitRequest(status: 128 + o.interrupted)
        }
        let failed = o.failures
        print(failed == 0 ? "SUCCESS" : "FAILURE: \(failed) failing or lost measurement(s)")
        fflush(nil)
        if o.runs.contains(where: { $0.result.verdict == Verdict.stall }) { throw ExitRequest(status: ExitStatus.stall) }
        throw ExitRequest(status: failed == 0 ? ExitStatus.success : ExitStatus.violation)
    }

    /// `--trace`: the claims on real programs, one block of rows per trace.
    func judgeTraces() throws {
        var rows: [ClaimRow] = []
        var files: [TraceFileShare] = []
        for path in traces {
            let records: [TraceRecord]
            do { records = try TraceTools.readAll(path) } catch { throw ValidationError("\(error)") }
            var b = TraceStatsBuilder()
            for r in records { b.add(r) }
            let name = URL(fileURLWithPath: path).lastPathComponent
                .replacingOccurrences(of: ".trace.gz", with: "").replacingOccurrences(of: ".st.gz", with: "")
            rows += TraceClaims.judge(workload: name, b.finish(), TraceClaims.mappings(records))
            let share = try TraceFileShare.measure(workload: name, path: path)
            guard share.verdict == "SUCCESS" else {
                throw ValidationError("\(path): the replay for the file-mapping figures ended \(share.verdict) (stress trace run \(path))")
            }
            files.append(share)
        }
        try Parse.outputFolder(out)
        let md = "# The 2004 claims on recorded programs\n\nMade by `stress schemes --trace " + traces.map(shellQuoted).joined(separator: " --trace ")
            + " --out " + shellQuoted(out) + "` (\(StressVersion.description)). Each verdict follows from that trace's exact statistics "
            + "(docs/trace-format.md) by the rule in its row.\n\n" + TraceClaims.markdown(rows) + "\n" + TraceFileShare.markdown(files)
        try AtomicFile.write(Data(md.utf8), to: out + "/trace-claims.md")
        try AtomicFile.write(SnakeCaseJSON.encoder().encode(rows), to: out + "/trace-claims.json")
        try AtomicFile.write(SnakeCaseJSON.encoder().encode(files), to: out + "/trace-files.json")
        for r in rows { print("\(r.workload): \(r.verdict.uppercased()) \(r.who): \(r.claim)\n    \(r.figure)") }
        for f in files {
            print("\(f.workload): anonymous pages born from private file mappings \(f.fileCopies) of \(f.anonPagesBorn) (\(TraceFileShare.percent(f.privateFileShare))); "
                  + "mappings given a first anonymous page \(f.anonVmaFirstTouch) anonymous, \(f.anonVmaPrivateFileWrite) private file (\(TraceFileShare.percent(f.anonVmaPrivateFileShare))), \(f.anonVmaFork) fork copies")
        }
        print("wrote \(out)/trace-claims.md, trace-claims.json and trace-files.json")
    }
}
