import ArgumentParser
import ConcurrentRmap
import Foundation
import Measurement
import RunEngine
import StressSupport

/// `stress scale`: a scalability sweep written to a folder with a report.
struct Scale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Sweep threads x sync x RCU flavor, with the machine's own ceiling, and write runs.csv, runs.json, ceiling.json, meta.json and report.html.",
        discussion: """
            Every run is a `stress run` child process; repeat r uses seed+r, and repeats are interleaved in time. \
            The settings of the runs are those of `stress run` (any of its options), except threads, sync and rcu, \
            which are swept; the defaults differ for measuring: 5 s runs after 1 s of warm-up, the grace-period \
            probe every second, one operation in 16 timed. Exit status: 0 all runs SUCCESS, 1 any failed or was \
            lost, 2 bad usage, 3 a run stalled (the sweep stops there), 128+N interrupted by signal N (the files \
            hold the points finished so far).
            """)

    /// Measuring, not hunting: the settings of `ScaleConfig.defaultBase`.
    enum Defaults: SweepDefaults {
        static var settings: RunSettings { ScaleConfig.defaultBase }
        static var threadList: String { "1,2,4" }
        static func help(_ option: String, _ standard: String) -> String {
            switch option {
            case "sync": "Group-list protections to compare: rcu,rwlock,mutex."
            case "scheme": "rmap design of every run: \(SchemeKind.allCases.map(\.rawValue).joined(separator: " or ")) (default \(settings.scheme.rawValue))."
            case "seed": "Seed of repeat 0, 0...\(UInt64.max) (random when omitted; recorded in meta.json)."
            case "inject": "Plant one known bug in every run (see stress run --list-injections); such runs should fail."
            case "pin": "Bind worker i to the i-th CPU this process may use (round robin); each ceiling process gets its own."
            default: standard
            }
        }
    }

    @OptionGroup var sweep: SweepOptions<Defaults>
    @Option(name: .customLong("rcu"), help: "liburcu flavors: memb, qsbr, mb, bp (comma-separated).")
    var rcuList: String = "memb"
    @Flag(inversion: .prefixedNo, help: "Measure the machine's ceiling: N independent 1-thread processes at each thread count N > 1.")
    var ceiling = true
    @Flag(name: .customLong("per-thread-size"), help: "Weak scaling: --frames, --swap-slots, --processes and --population are per thread; N threads get N times each (the ceiling's processes one thread's worth).")
    var perThreadSize = false
    @Option(name: .customLong("group-sizes"), help: "Also run the walk-cost sweep over these anongroup sizes, e.g. 1,8,64,512 (each 1...4096).")
    var groupSizes: String?
    @Option(help: "Output folder (created if missing).")
    var out: String
    @OptionGroup var runOptions: SettingsOptions<Defaults>

    func run() throws {
        var c = ScaleConfig()
        do {
            c.threads = try sweep.threads()
            c.syncs = try sweep.syncs()
            c.rcus = try ScaleLists.names(rcuList, option: "rcu", as: RCUFlavor.self)
            if let groupSizes { c.groupSizes = try ScaleLists.ints(groupSizes, option: "group-sizes", range: 1...4096) }
        } catch let e as ListParseError {
            throw ValidationError(e.message)
        }
        c.repeats = try sweep.repeats.value()
        c.ceiling = ceiling
        c.perThreadSize = perThreadSize
        c.base = try runOptions.settings()
        c.seed = c.base.seed
        if let p = c.validate() { throw ValidationError(p) }
        try Parse.outputFolder(out)

        var meta = ScaleMeta(arguments: CommandLine.arguments, config: c)
        meta.measuredParallelism = HostInfo.measuredParallelism()
        let perRun = c.base.warmupS + c.base.durationS
        let ceilingRuns = c.ceiling ? c.repeats * c.threads.filter { $0 > 1 }.count : 0
        print("stress scale \(StressVersion.description): \(c.points().count) runs + \(ceilingRuns) ceiling measurements of \(fmt(perRun))s, seed=\(c.seed), \(meta.cpuCount) CPUs (\(meta.cpuModel)), measured parallelism \(String(format: "%.2f", meta.measuredParallelism ?? 0))x for 2 threads")
        fflush(nil)
        let sweep = ScaleSweep.run(c) { line in print(line); fflush(nil) }
        var walk: [WalkCostRun] = []
        let stalled = sweep.runs.contains { $0.result.verdict == Verdict.stall }
        if !c.groupSizes.isEmpty && !stalled && sweep.interrupted == 0 {
            walk = try ScaleSweep.walkCost(c) { w in
                print(String(format: "walk cost sync=%@ G=%-4d repeat=%d  %9.0f ns/walk  %7.1f ns/mm  %9.0f ns/migration  %@",
                             w.sync, w.groupSize, w.repeatIndex, w.walkNs, w.nsPerMM, w.migrateNs, w.verdict))
                fflush(nil)
            }
        }
        meta.interruptedBy = sweep.interrupted != 0 ? sweep.interrupted : nil
        meta.lostRuns = sweep.lost.isEmpty ? nil : sweep.lost
        try ScaleFiles.write(dir: out, runs: sweep.runs, ceiling: sweep.ceiling, walkCost: walk, meta: meta)
        let verdict = ScaleReport.verdict(runs: sweep.runs, ceiling: sweep.ceiling, walkCost: walk, meta: meta)
        print("\(verdict.word): \(verdict.detail); commit \(meta.gitCommit)\(meta.gitDirty == true ? " (dirty tree)" : "")")
        for l in ScaleReport.measurementLines(ScaleTable(sweep.runs), ceiling: sweep.ceiling, cpuCount: meta.cpuCount,
                                              measuredParallelism: meta.measuredParallelism) { print(l) }
        let failed = sweep.runs.filter { $0.result.verdict != Verdict.success }.count + walk.filter { $0.verdict != Verdict.success }.count
            + sweep.lost.count + sweep.ceiling.filter { $0.verdict != Verdict.success }.count
        print("wrote \(out)/report.html, runs.csv, runs.json, meta.json\(sweep.ceiling.isEmpty ? "" : ", ceiling.json")\(walk.isEmpty ? "" : ", walkcost.csv, walkcost.json")")
        for l in sweep.lost { print("lost: \(l)") }
        if sweep.interrupted != 0 {
            print("INTERRUPTED by signal \(sweep.interrupted): \(sweep.runs.count) of \(meta.plannedRuns ?? 0) runs kept; the report says INTERRUPTED")
            fflush(nil)
            throw ExitRequest(status: 128 + sweep.interrupted)
        }
        print(failed == 0 ? "SUCCESS" : "FAILURE: \(failed) failing or lost run(s)")
        fflush(nil)
        if stalled { throw ExitRequest(status: ExitStatus.stall) }
        throw ExitRequest(status: failed == 0 ? ExitStatus.success : ExitStatus.violation)
    }
}

/// `stress compare OLD NEW`.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two sweeps (scale folders, runs.json files, or `stress run --json` files) figure by figure.",
        discussion: """
            The two sides must differ in nothing but the commit: the same settings (mix, sizes, duration, checks, \
            population, ...), the same swept points (threads, sync, rcu) and the same machine (CPU model and count). \
            Otherwise compare refuses, naming what differs; --force compares anyway and marks every figure. \
            Exit status: 0 compared, 2 bad usage or incomparable inputs.
            """)

    @Argument(help: "Baseline: a scale folder, runs.json, or a run --json file.")
    var base: String
    @Argument(help: "New: a scale folder, runs.json, or a run --json file.")
    var new: String
    @Flag(help: "Compare even when the settings differ (every figure is marked).")
    var force = false
    enum Defaults: CommandDefaults {
        static func help(_ option: String, _ standard: String) -> String {
            option == "scheme"
                ? "Compare only the runs of this rmap scheme (\(SchemeKind.allCases.map(\.rawValue).joined(separator: ", "))), e.g. from a `stress schemes` folder."
                : standard
        }
    }

    @OptionGroup var scheme: SchemeOption<Defaults>

    func run() throws {
        var a: [ScaleRun], b: [ScaleRun]
        let only = try scheme.value()
        do {
            a = try ScaleCompare.load(base)
            b = try ScaleCompare.load(new)
        } catch let e as ScaleCompare.LoadError {
            throw ValidationError(e.message)
        }
        if let only {
            a = a.filter { $0.result.settings.scheme == only }
            b = b.filter { $0.result.settings.scheme == only }
            if a.isEmpty || b.isEmpty {
                throw ValidationError("no \(only.rawValue) runs in \(a.isEmpty ? base : new)")
            }
        }
        let diff = ScaleCompare.differences(base: a, new: b)
        if !diff.isEmpty && !force {
            throw ValidationError("the two sides are not comparable: they differ in \(diff.joined(separator: "; ")) (use --force to compare anyway)")
        }
        let rows = ScaleCompare.compare(base: a, new: b)
        // Each side named with its commit(s) and how many runs it holds.
        func name(_ path: String, _ runs: [ScaleRun]) -> String {
            let commits = Set(runs.map { $0.result.gitCommit + ($0.result.gitDirty ? " (dirty tree)" : "") }).sorted()
            return "\(path) (\(runs.count) run\(runs.count == 1 ? "" : "s"), commit \(commits.joined(separator: ", ")))"
        }
        print(ScaleCompare.format(rows, baseName: name(base, a), newName: name(new, b), forced: diff), terminator: "")
    }
}

/// `stress bench`: microbenchmarks of hot paths.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Single-thread microbenchmarks of the model's hot paths (build with -c release).",
        discussion: "Exit status: 0 done, 1 a benchmark machine reported a violation or leak, 2 bad usage.")

    enum Defaults: CommandDefaults {
        static var settings: RunSettings {
            var s = RunSettings()
            s.scheme = BenchOptions().scheme
            s.checks = BenchOptions().checks
            return s
        }
        static var repeats: Int { BenchOptions().repeats }
        static var repeatRange: ClosedRange<Int> { BenchOptions.repeatsRange }
        static var workRange: ClosedRange<Double> { BenchOptions.workRange }
        static func help(_ option: String, _ standard: String) -> String {
            switch option {
            case "repeat": "Repeats per benchmark, \(Ranges.r(repeatRange)) (default \(repeats)); the median is reported."
            case "scheme": "rmap design of the benchmark machines: \(SchemeKind.allCases.map(\.rawValue).joined(separator: " or ")) (default \(settings.scheme.rawValue))."
            case "checks": "Always-on checks in the benchmark machines: full, fast or off (default \(settings.checks.rawValue))."
            case "work": "Scale every iteration count by this factor, \(Ranges.s(workRange)) (default 1; targets are judged only at 1 or more)."
            default: standard
            }
        }
    }

    @OptionGroup var repeats: RepeatOption<Defaults>
    @OptionGroup var scheme: SchemeOption<Defaults>
    @Option(help: "Pages of the mm in the fork+exit and mremap benchmarks, a divisor of 512 (default 64).")
    var pages: String?
    @Option(help: "mms in the fork tree (one anongroup, or one anon_vma's VMAs) of the walk benchmarks, \(Ranges.r(BenchOptions.groupRange)) (default 8).")
    var group: String?
    @OptionGroup var checks: ChecksOption<Defaults>
    @OptionGroup var work: WorkOption<Defaults>
    @Option(help: "Write the results as JSON to this file (written atomically).")
    var json: String?

    func run() throws {
        var o = BenchOptions()
        o.repeats = try repeats.value()
        if let v = try scheme.value() { o.scheme = v }
        if let v = pages { o.pages = try Parse.whole(v, "--pages", 1...512) }
        if let v = group { o.groupSize = try Parse.whole(v, "--group", BenchOptions.groupRange) }
        if let v = try checks.value() { o.checks = v }
        if let v = try work.value() { o.work = v }
        if let p = o.validate() { throw ValidationError(p) }
        if let json {
            do { try AtomicFile.checkWritable(json) } catch { throw ValidationError("cannot write JSON file: \(error)") }
        }
        let report = try BenchSuite.run(o) { name in
            FileHandle.standardError.write(Data("  running \(name)...\n".utf8))
        }
        print(report.table(), terminator: "")
        if let json { try ResultFile.write(report, to: json) }
        throw ExitRequest(status: report.problems.isEmpty ? ExitStatus.success : ExitStatus.violation)
    }
}
