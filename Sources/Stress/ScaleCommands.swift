import ArgumentParser
import ConcurrentRmap
import Foundation
import StressKit

/// `stress scale`: a scalability sweep written to a folder with a report.
struct Scale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Sweep threads x sync x RCU flavor (and optionally anongroup size) and write runs.csv, runs.json, meta.json and report.html.",
        discussion: "Every run is a quiet `stress run`; repeat r uses seed+r. Exit status 1 when any run fails (after the report is written).")

    @Option(help: "Worker thread counts, e.g. 1,2,4,8.")
    var threads: String = "1,2,4"
    @Option(help: "Group-list protections to compare: rcu,rwlock,mutex.")
    var sync: String = "rcu,rwlock,mutex"
    @Option(help: "liburcu flavors: memb, qsbr, mb, bp (comma-separated).")
    var rcu: String = "memb"
    @Option(name: .customLong("repeat"), help: "Runs per point.")
    var repeats: Int = 3
    @Option(help: "Seconds per run.")
    var duration: Double = 5
    @Option(help: "Seed of repeat 0 (random when omitted; recorded in meta.json).")
    var seed: UInt64?
    @Option(help: "Operation weights, NAME=WEIGHT,...")
    var mix: String = OperationMix.default.description
    @OptionGroup var machine: MachineOptions
    @Option(help: "Plant one known bug in every run (see stress run --list-injections); such runs should fail.")
    var inject: Injection = .none
    @Option(name: .customLong("group-sizes"), help: "Also run the walk-cost sweep over these anongroup sizes, e.g. 1,8,64,512.")
    var groupSizes: String?
    @Option(help: "Output folder (created if missing).")
    var out: String

    func run() throws {
        var c = ScaleConfig()
        do {
            c.threads = try ScaleLists.ints(threads, option: "threads", range: 1...4096)
            c.syncs = try ScaleLists.names(sync, option: "sync", as: ListSync.self)
            c.rcus = try ScaleLists.names(rcu, option: "rcu", as: RCUFlavor.self)
            if let groupSizes { c.groupSizes = try ScaleLists.ints(groupSizes, option: "group-sizes", range: 1...4096) }
            c.base.mix = try OperationMix(parsing: mix)
        } catch let e as ListParseError {
            throw ValidationError(e.message)
        } catch {
            throw ValidationError("\(error)")
        }
        c.repeats = repeats
        c.seed = seed ?? freshSeed()
        c.base.duration = duration
        machine.apply(to: &c.base)
        c.base.machine.injection = inject
        if let p = c.validate() { throw ValidationError(p) }
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("cannot create output folder '\(out)'")
        }
        guard FileManager.default.isWritableFile(atPath: out) else { throw ValidationError("output folder '\(out)' is not writable") }

        var meta = ScaleMeta(arguments: CommandLine.arguments, config: c)
        meta.measuredParallelism = HostInfo.measuredParallelism()
        print("stress scale \(StressVersion.version) (\(StressVersion.gitCommit)): \(c.points().count) runs of \(duration)s, seed=\(c.seed), \(meta.cpuCount) CPUs (\(meta.cpuModel)), measured parallelism \(String(format: "%.2f", meta.measuredParallelism ?? 0))x for 2 threads")
        fflush(nil)
        let runs = try ScaleSweep.run(c) { n, total, r in
            print(String(format: "[%3d/%d] sync=%-6@ rcu=%@ threads=%-3d repeat=%d %12.0f ops/s  %@%@",
                         n, total, r.sync, r.rcu, r.threads, r.repeatIndex, r.result.opsPerS, r.result.verdict,
                         r.oversubscribed ? "  (oversubscribed)" : ""))
            fflush(nil)
        }
        var walk: [WalkCostRun] = []
        let stalled = runs.contains { $0.result.verdict == "STALL" }
        if !c.groupSizes.isEmpty && !stalled {
            walk = try ScaleSweep.walkCost(c) { w in
                print(String(format: "walk cost sync=%-6@ G=%-4d repeat=%d  %9.0f ns/walk  %7.1f ns/mm  %9.0f ns/migration  %@",
                             w.sync, w.groupSize, w.repeatIndex, w.walkNs, w.nsPerMM, w.migrateNs, w.verdict))
                fflush(nil)
            }
        }
        try ScaleFiles.write(dir: out, runs: runs, walkCost: walk, meta: meta)
        let table = ScaleTable(runs)
        for (a, b) in [("rcu", "rwlock"), ("rcu", "mutex")] {
            let rs = ScaleReport.ratios(table, a, over: b)
            if !rs.isEmpty {
                print("\(a)/\(b) median ops/s: " + rs.map { "\($0.threads)T\(table.multipleRCU ? "(\($0.rcu))" : "")=\(String(format: "%.2f", $0.ratio))x" }.joined(separator: " "))
            }
        }
        let failed = runs.filter { $0.result.verdict != "SUCCESS" }.count + walk.filter { $0.verdict != "SUCCESS" }.count
        print("wrote \(out)/report.html, runs.csv, runs.json, meta.json\(walk.isEmpty ? "" : ", walkcost.csv, walkcost.json")")
        print(failed == 0 ? "SUCCESS" : "FAILURE: \(failed) failing run(s)")
        fflush(nil)
        if stalled { throw ExitRequest(status: ExitStatus.stall) }
        throw ExitRequest(status: failed == 0 ? ExitStatus.success : ExitStatus.violation)
    }
}

/// `stress compare OLD NEW`.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two sweeps (scale folders, runs.json files, or `stress run --json` files) figure by figure.")

    @Argument(help: "Baseline: a scale folder, runs.json, or a run --json file.")
    var base: String
    @Argument(help: "New: a scale folder, runs.json, or a run --json file.")
    var new: String

    func run() throws {
        let a: [ScaleRun], b: [ScaleRun]
        do {
            a = try ScaleCompare.load(base)
            b = try ScaleCompare.load(new)
        } catch let e as ScaleCompare.LoadError {
            throw ValidationError(e.message)
        }
        let rows = ScaleCompare.compare(base: a, new: b)
        print(ScaleCompare.format(rows, baseName: base, newName: new), terminator: "")
    }
}

/// `stress bench`: microbenchmarks of hot paths.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Single-thread microbenchmarks of the model's hot paths (build with -c release).")

    @Option(name: .customLong("repeat"), help: "Repeats per benchmark; the median is reported.")
    var repeats: Int = 5
    @Option(help: "Pages of the mm in the fork+exit and mremap benchmarks (divides 512).")
    var pages: Int = 64
    @Option(help: "mms in the anongroup of the walk benchmarks.")
    var group: Int = 8
    @Option(help: "Always-on checks in the benchmark machines: full, fast or off.")
    var checks: CheckLevel = .off
    @Option(help: "Scale every iteration count by this factor.")
    var work: Double = 1
    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    func run() throws {
        var o = BenchOptions()
        o.repeats = repeats
        o.pages = pages
        o.groupSize = group
        o.checks = checks
        o.work = work
        if let p = o.validate() { throw ValidationError(p) }
        if let json { try checkWritable(json) }
        let report = try BenchSuite.run(o) { name in
            FileHandle.standardError.write(Data("  running \(name)...\n".utf8))
        }
        print(report.table(), terminator: "")
        if let json {
            try ScaleFiles.encoder().encode(report).write(to: URL(fileURLWithPath: json))
        }
        throw ExitRequest(status: report.problems.isEmpty ? ExitStatus.success : ExitStatus.violation)
    }
}
