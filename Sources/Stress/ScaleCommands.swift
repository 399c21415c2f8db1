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

    @Option(name: .customLong("threads"), help: "Worker thread counts, e.g. 1,2,4 (each \(Ranges.r(Limits.threads))).")
    var threadList: String = "1,2,4"
    @Option(name: .customLong("sync"), help: "Group-list protections to compare: rcu,rwlock,mutex.")
    var syncList: String = "rcu,rwlock,mutex"
    @Option(name: .customLong("rcu"), help: "liburcu flavors: memb, qsbr, mb, bp (comma-separated).")
    var rcuList: String = "memb"
    @Option(name: .customLong("repeat"), help: "Runs per point, 1...100 (default 5).")
    var repeats: String?
    @Flag(inversion: .prefixedNo, help: "Measure the machine's ceiling: N independent 1-thread processes at each thread count N > 1.")
    var ceiling = true
    @Flag(name: .customLong("per-thread-size"), help: "Weak scaling: --frames, --swap-slots, --processes and --population are per thread; N threads get N times each (the ceiling's processes one thread's worth).")
    var perThreadSize = false
    @Option(name: .customLong("group-sizes"), help: "Also run the walk-cost sweep over these anongroup sizes, e.g. 1,8,64,512 (each 1...4096).")
    var groupSizes: String?
    @Option(help: "Output folder (created if missing).")
    var out: String
    @OptionGroup var runOptions: ScaleRunOptions

    func run() throws {
        var c = ScaleConfig()
        do {
            c.threads = try ScaleLists.ints(threadList, option: "threads", range: Limits.threads)
            c.syncs = try ScaleLists.names(syncList, option: "sync", as: ListSync.self)
            c.rcus = try ScaleLists.names(rcuList, option: "rcu", as: RCUFlavor.self)
            if let groupSizes { c.groupSizes = try ScaleLists.ints(groupSizes, option: "group-sizes", range: 1...4096) }
        } catch let e as ListParseError {
            throw ValidationError(e.message)
        }
        c.repeats = try repeats.map { try Parse.whole($0, "--repeat", 1...100) } ?? 5
        c.ceiling = ceiling
        c.perThreadSize = perThreadSize
        c.base = try runOptions.settings()
        c.seed = c.base.seed
        if let p = c.validate() { throw ValidationError(p) }
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("cannot create output folder '\(out)'")
        }
        guard access(out, W_OK) == 0 else { throw ValidationError("output folder '\(out)' is not writable") }

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
        try ScaleFiles.write(dir: out, runs: sweep.runs, ceiling: sweep.ceiling, walkCost: walk, meta: meta)
        for l in ScaleReport.measurementLines(ScaleTable(sweep.runs), ceiling: sweep.ceiling, cpuCount: meta.cpuCount) { print(l) }
        let failed = sweep.runs.filter { $0.result.verdict != Verdict.success }.count + walk.filter { $0.verdict != Verdict.success }.count
            + sweep.lost.count + sweep.ceiling.filter { $0.verdict != Verdict.success }.count
        print("wrote \(out)/report.html, runs.csv, runs.json, meta.json\(sweep.ceiling.isEmpty ? "" : ", ceiling.json")\(walk.isEmpty ? "" : ", walkcost.csv, walkcost.json")")
        for l in sweep.lost { print("lost: \(l)") }
        if sweep.interrupted != 0 {
            print("INTERRUPTED by signal \(sweep.interrupted): \(sweep.runs.count) runs kept")
            throw ExitRequest(status: 128 + sweep.interrupted)
        }
        print(failed == 0 ? "SUCCESS" : "FAILURE: \(failed) failing or lost run(s)")
        fflush(nil)
        if stalled { throw ExitRequest(status: ExitStatus.stall) }
        throw ExitRequest(status: failed == 0 ? ExitStatus.success : ExitStatus.violation)
    }
}

/// The `stress run` options `scale` passes on to every run, with the
/// measuring defaults of `ScaleConfig.defaultBase` where not given.
struct ScaleRunOptions: ParsableArguments {
    @Option(help: "rmap design of every run: \(SchemeKind.allCases.map(\.rawValue).joined(separator: " or ")) (default anongroup).")
    var scheme: String?
    @Option(help: "Seconds measured per run, \(Ranges.s(Limits.duration)) (default 5).")
    var duration: String?
    @Option(help: "End each run after this many completed operations, \(Ranges.r(Limits.ops)).")
    var ops: String?
    @Option(help: "Seconds of warm-up per run, \(Ranges.s(Limits.warmup)) (default 1).")
    var warmup: String?
    @Option(help: "Seed of repeat 0, 0...\(UInt64.max) (random when omitted; recorded in meta.json).")
    var seed: String?
    @Option(help: "Operation weights, NAME=WEIGHT,...")
    var mix: String?
    @Option(help: "Always-on checks: full, fast or off.")
    var checks: String?
    @Option(help: "Page frames, \(Ranges.r(Limits.frames)).")
    var frames: String?
    @Option(name: .customLong("swap-slots"), help: "Swap slots, \(Ranges.r(Limits.swapSlots)).")
    var swapSlots: String?
    @Option(help: "Process-table entries, \(Ranges.r(Limits.processes)).")
    var processes: String?
    @Option(help: "Processes held by the workload (0: half the table).")
    var population: String?
    @Option(name: .customLong("family-size"), help: "Most mms related by fork without exec (0: no limit).")
    var familySize: String?
    @Option(help: "Percent of process operations on a worker's own share of the processes, 0...100 (default 100).")
    var locality: String?
    @Option(name: .customLong("vma-pages"), help: "Pages per VMA, a divisor of 512.")
    var vmaPages: String?
    @Option(name: .customLong("audit-interval"), help: "Seconds between audits: 0 or \(Ranges.s(Limits.auditInterval)).")
    var auditInterval: String?
    @Option(name: .customLong("stall-timeout"), help: "Seconds without progress that make a stall, \(Ranges.s(Limits.stallTimeout)).")
    var stallTimeout: String?
    @Option(name: .customLong("gp-probe-interval"), help: "Seconds between grace-period probes: 0 (none) or \(Ranges.s(Limits.gpProbeInterval)) (default 1).")
    var gpProbeInterval: String?
    @Option(name: .customLong("latency-sample"), help: "Time one operation in K: 0 or 1...1000000 (default 16).")
    var latencySample: String?
    @Option(help: "Plant one known bug in every run (see stress run --list-injections); such runs should fail.")
    var inject: String?
    @Flag(help: "Bind worker i to the i-th CPU this process may use (round robin); each ceiling process gets its own.")
    var pin = false

    func settings() throws -> RunSettings {
        let base = ScaleConfig.defaultBase
        var o = SettingsInput()
        o.scheme = scheme
        o.duration = duration ?? (ops == nil ? "\(base.durationS)" : nil)
        o.ops = ops; o.warmup = warmup ?? "\(base.warmupS)"; o.seed = seed; o.mix = mix; o.checks = checks
        o.frames = frames; o.swapSlots = swapSlots; o.processes = processes; o.population = population
        o.familySize = familySize; o.locality = locality ?? "\(base.locality)"; o.vmaPages = vmaPages; o.auditInterval = auditInterval; o.stallTimeout = stallTimeout
        o.gpProbeInterval = gpProbeInterval ?? "\(base.gpProbeIntervalS)"
        o.latencySample = latencySample ?? "\(base.latencySample)"
        o.inject = inject; o.pin = pin
        return try o.settings()
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
    @Option(help: "Compare only the runs of this rmap scheme (\(SchemeKind.allCases.map(\.rawValue).joined(separator: ", "))), e.g. from a `stress schemes` folder.")
    var scheme: String?

    func run() throws {
        var a: [ScaleRun], b: [ScaleRun]
        let only: SchemeKind? = try scheme.map { try Parse.choice($0, "--scheme", "rmap scheme") }
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
        print(ScaleCompare.format(rows, baseName: base, newName: new, forced: diff), terminator: "")
    }
}

/// `stress bench`: microbenchmarks of hot paths.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Single-thread microbenchmarks of the model's hot paths (build with -c release).",
        discussion: "Exit status: 0 done, 1 a benchmark machine reported a violation or leak, 2 bad usage.")

    @Option(name: .customLong("repeat"), help: "Repeats per benchmark, \(Ranges.r(BenchOptions.repeatsRange)) (default 5); the median is reported.")
    var repeats: String?
    @Option(help: "rmap design of the benchmark machines: \(SchemeKind.allCases.map(\.rawValue).joined(separator: " or ")) (default anongroup).")
    var scheme: String?
    @Option(help: "Pages of the mm in the fork+exit and mremap benchmarks, a divisor of 512 (default 64).")
    var pages: String?
    @Option(help: "mms in the fork tree (one anongroup, or one anon_vma's VMAs) of the walk benchmarks, \(Ranges.r(BenchOptions.groupRange)) (default 8).")
    var group: String?
    @Option(help: "Always-on checks in the benchmark machines: full, fast or off (default off).")
    var checks: String?
    @Option(help: "Scale every iteration count by this factor, \(Ranges.s(BenchOptions.workRange)) (default 1; targets are judged only at 1 or more).")
    var work: String?
    @Option(help: "Write the results as JSON to this file (written atomically).")
    var json: String?

    func run() throws {
        var o = BenchOptions()
        if let v = repeats { o.repeats = try Parse.whole(v, "--repeat", BenchOptions.repeatsRange) }
        if let v = scheme { o.scheme = try Parse.choice(v, "--scheme", "rmap scheme") }
        if let v = pages { o.pages = try Parse.whole(v, "--pages", 1...512) }
        if let v = group { o.groupSize = try Parse.whole(v, "--group", BenchOptions.groupRange) }
        if let v = checks { o.checks = try Parse.choice(v, "--checks", "check level") }
        if let v = work { o.work = try Parse.decimal(v, "--work", BenchOptions.workRange) }
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
