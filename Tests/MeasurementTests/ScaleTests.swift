import ConcurrentRmap
import Foundation
import XCTest
@testable import Measurement
@testable import RunEngine
@testable import StressSupport

/// Issue 5: list parsing, statistics, CSV/HTML/SVG generation, compare math,
/// and the walk-cost and bench hooks on tiny machines.
final class ScaleTests: XCTestCase {
    /// A real (tiny) stress result, so the fixtures follow StressResult's shape.
    nonisolated(unsafe) static var template: StressResult?

    static func templateResult() throws -> StressResult {
        if let t = template { return t }
        var o = RunSettings()
        o.threads = 1
        o.durationS = 0.1
        o.seed = 42
        o.auditIntervalS = 0
        o.mix = "fault=20,fork=5,exit=5,reclaim=35,migrate=35"
        o.frames = 1024
        o.processes = 16
        let r = try StressEngine.run(o)
        template = r
        return r
    }

    /// A run of `sync` at `threads` with completed ops/s `ops` (and fault ops/s = ops/2).
    func run(_ sync: String, _ threads: Int, _ ops: Double, repeatIndex: Int = 0, verdict: String = "SUCCESS") throws -> ScaleRun {
        var r = try ScaleTests.templateResult()
        r.settings.sync = ListSync(rawValue: sync)!
        r.settings.threads = threads
        r.opsPerS = ops
        r.verdict = verdict
        var fault = r.ops["fault"]!
        fault.perS = ops / 2
        fault.completed = max(fault.completed, 1)
        r.ops["fault"] = fault
        return ScaleRun(sync: sync, rcu: "memb", threads: threads, repeatIndex: repeatIndex, oversubscribed: threads > 2, result: r)
    }

    /// `r` with counts that agree with its rates (over 1 s) and its own
    /// seed, as a result file the tool wrote would: what compare accepts.
    func consistent(_ r: ScaleRun, seed: UInt64) -> ScaleRun {
        var r = r
        r.result.elapsedS = 1
        r.result.settings.seed = seed
        var total: UInt64 = 0
        for (k, var op) in r.result.ops {
            op.completed = k == "fault" ? UInt64(r.result.opsPerS / 2) : 0
            op.perS = Double(op.completed)
            total += op.completed
            r.result.ops[k] = op
        }
        r.result.ops["fork"]?.completed = UInt64(r.result.opsPerS) - total
        r.result.ops["fork"]?.perS = Double(UInt64(r.result.opsPerS) - total)
        r.result.totalCompleted = UInt64(r.result.opsPerS)
        r.result.opsPerS = Double(r.result.totalCompleted)
        return r
    }

    func count(_ needle: String, in hay: String) -> Int { hay.components(separatedBy: needle).count - 1 }

    // MARK: Lists

    /// Measurements keep the fast path: no perturbation, throughput recycling.
    func testMeasuringRunsDoNotHunt() {
        for base in [ScaleConfig.defaultBase, SchemeConfig.defaultBase] {
            XCTAssertFalse(base.perturb)
            XCTAssertEqual(base.recycling, .throughput)
        }
    }

    func testIntListParses() throws {
        XCTAssertEqual(try ScaleLists.ints("1,2,4,8", option: "threads", range: 1...4096), [1, 2, 4, 8])
        XCTAssertEqual(try ScaleLists.ints(" 1, 64 ", option: "threads", range: 1...4096), [1, 64])
    }

    func testBadIntListsThrow() {
        for bad in ["", "1,,2", "1,x", "0", "1,2,1", "5000", "2,"] {
            XCTAssertThrowsError(try ScaleLists.ints(bad, option: "threads", range: 1...4096), "'\(bad)' must be refused") { e in
                XCTAssertTrue(e is ListParseError)
                XCTAssertFalse("\(e)".contains("\n"), "usage errors are one line")
            }
        }
    }

    func testNameLists() throws {
        XCTAssertEqual(try ScaleLists.names("rcu,mutex", option: "sync", as: ListSync.self), [.rcu, .mutex])
        XCTAssertEqual(try ScaleLists.names("memb,qsbr", option: "rcu", as: RCUFlavor.self), [.memb, .qsbr])
        XCTAssertThrowsError(try ScaleLists.names("rcu,spinlock", option: "sync", as: ListSync.self))
        XCTAssertThrowsError(try ScaleLists.names("rcu,rcu", option: "sync", as: ListSync.self))
    }

    // MARK: Statistics

    func testSpreadAndPercentChange() {
        let s = Spread([3, 1, 2])
        XCTAssertEqual(s.median, 2)
        XCTAssertEqual(s.min, 1)
        XCTAssertEqual(s.max, 3)
        XCTAssertEqual(s.stddev, 1, accuracy: 1e-12)
        XCTAssertEqual(Spread([4, 1, 3, 2]).median, 2.5)
        XCTAssertEqual(Spread([7]).stddev, 0)
        XCTAssertEqual(percentChange(base: 100, new: 110), 10, accuracy: 1e-12)
        XCTAssertEqual(percentChange(base: 200, new: 150), -25, accuracy: 1e-12)
        XCTAssertTrue(percentChange(base: 0, new: 5).isNaN)
    }

    // MARK: Charts

    func sweep() throws -> [ScaleRun] {
        var runs: [ScaleRun] = []
        for (sync, base) in [("rcu", 1000.0), ("rwlock", 800.0), ("mutex", 600.0)] {
            for t in [1, 2, 4] {
                for rep in 0..<3 {
                    // repeats base*t*(0.9, 1.0, 1.1): median base*t, min 0.9x, max 1.1x
                    runs.append(try run(sync, t, base * Double(t) * [1.0, 0.9, 1.1][rep], repeatIndex: rep))
                }
            }
        }
        return runs
    }

    func testThroughputChartHasOneLinePerSyncAndPerfectScaling() throws {
        let t = ScaleTable(try sweep())
        XCTAssertEqual(t.series.map(\.sync), ["rcu", "rwlock", "mutex"])
        XCTAssertEqual(t.threads, [1, 2, 4])
        let svg = ScaleReport.throughputChart(t, cpuCount: 2).svg()
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertEqual(count("<polyline class=\"series\"", in: svg), 3)
        XCTAssertEqual(count("<polyline class=\"ideal\"", in: svg), 3)
        XCTAssertEqual(count("class=\"errbar\"", in: svg), 9, "one min..max bar per point")
        XCTAssertEqual(count("class=\"oversubscribed\"", in: svg), 1, "4 threads on 2 CPUs is oversubscribed")
        XCTAssertTrue(svg.contains("oversubscribed (&gt; 2 CPUs)"))
        XCTAssertEqual(count("class=\"oversubscribed\"", in: ScaleReport.throughputChart(t, cpuCount: 8).svg()), 0)

        // Perfect scaling = 1-thread median x N.
        let rcu = ScaleTable.SeriesKey(sync: "rcu", rcu: "memb")
        let ideal = t.idealLine(rcu) { $0.result.opsPerS }
        XCTAssertEqual(ideal.map(\.threads), [1, 2, 4])
        for p in ideal { XCTAssertEqual(p.value, 1000 * Double(p.threads), accuracy: 1e-9) }
        let sp = t.spread(rcu, threads: 2) { $0.result.opsPerS }!
        XCTAssertEqual(sp.median, 2000, accuracy: 1e-9)
        XCTAssertEqual(sp.min, 1800, accuracy: 1e-9)
        XCTAssertEqual(sp.max, 2200, accuracy: 1e-9)
    }

    func testRatiosAndEfficiency() throws {
        let t = ScaleTable(try sweep())
        let r = ScaleReport.ratios(t, "rcu", over: "mutex")
        XCTAssertEqual(r.count, 3)
        for x in r { XCTAssertEqual(x.ratio, 1000.0 / 600.0, accuracy: 1e-9) }
        let eff = ScaleReport.efficiencyChart(t, cpuCount: 2)
        XCTAssertEqual(eff.series.count, 3)
        XCTAssertEqual(eff.series[0].points.map(\.y), [1000, 1000, 1000])
    }

    func testCSVAndHTML() throws {
        var runs = try sweep()
        runs.append(try run("rcu", 1, 5, repeatIndex: 3, verdict: "FAILURE"))
        let csv = ScaleReport.csv(runs)
        let lines = csv.split(separator: "\n")
        XCTAssertEqual(lines.count, runs.count + 1)
        XCTAssertTrue(lines[0].hasPrefix("sync,rcu,threads,repeat,"))
        XCTAssertTrue(lines[0].contains("fault_ops_per_s"))
        XCTAssertTrue(lines[0].hasSuffix("verdict"))
        XCTAssertTrue(lines.last!.hasSuffix("FAILURE"))
        XCTAssertEqual(lines[0].split(separator: ",").count, lines[1].split(separator: ",").count)

        let meta = ScaleMeta(arguments: ["stress", "scale", "--out", "x<y"], config: ScaleConfig())
        let walk = [WalkCostRun(sync: "rcu", groupSize: 8, repeatIndex: 0, walkNs: 400, agingWalkNs: 380, migrateNs: 1500,
                                mmsVisited: 8, walkIterations: 10, migrateIterations: 10, verdict: "SUCCESS")]
        let html = ScaleReport.html(runs: runs, walkCost: walk, meta: meta)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(html.lowercased().contains("<script"), "no scripts")
        XCTAssertFalse(html.contains("http://") && html.contains("src=\"http"), "no network resources")
        XCTAssertGreaterThanOrEqual(count("<svg", in: html), 6, "(a), (b) per op, (c), (d), (e)")
        XCTAssertTrue(html.contains("Verdict: <span style=\"color:#b00\">FAILURE</span>"), "a failed run makes the verdict")
        XCTAssertTrue(html.contains("(1 FAILURE, "), "and is counted")
        XCTAssertTrue(html.contains("x&lt;y"), "arguments are escaped")
        XCTAssertTrue(html.contains("(e) ns per rmap walk"))
        XCTAssertTrue(html.contains("proxies"))
    }

    // MARK: Compare

    func testCompareMath() throws {
        let base = [try run("rcu", 2, 100, repeatIndex: 0), try run("rcu", 2, 90, repeatIndex: 1), try run("rcu", 2, 110, repeatIndex: 2)]
        let new = [try run("rcu", 2, 130, repeatIndex: 0), try run("rcu", 2, 120, repeatIndex: 1), try run("rcu", 2, 125, repeatIndex: 2)]
        let rows = ScaleCompare.compare(base: base, new: new)
        let total = try XCTUnwrap(rows.first { $0.figure == "ops/s" })
        XCTAssertEqual(total.point, "sync=rcu rcu=memb threads=2")
        XCTAssertEqual(total.base?.median, 100)
        XCTAssertEqual(total.new?.median, 125)
        XCTAssertEqual(try XCTUnwrap(total.change), 25, accuracy: 1e-9)
        XCTAssertEqual(total.base?.min, 90)
        XCTAssertEqual(total.base?.max, 110)
        let fault = try XCTUnwrap(rows.first { $0.figure == "fault ops/s" })
        XCTAssertEqual(try XCTUnwrap(fault.change), 25, accuracy: 1e-9)
        let text = ScaleCompare.format(rows, baseName: "a", newName: "b")
        XCTAssertTrue(text.contains("+25.0%"))
        // A point on one side only has no change.
        let only = ScaleCompare.compare(base: base, new: [try run("mutex", 1, 50)])
        XCTAssertTrue(only.contains { $0.point.contains("mutex") && $0.base == nil && $0.change == nil })
    }

    func testFilesRoundTripAndLoadErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scale-test-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let runs = try sweep().enumerated().map { consistent($0.element, seed: UInt64($0.offset)) }
        try ScaleFiles.write(dir: dir, runs: runs, walkCost: [], meta: ScaleMeta(arguments: ["t"], config: ScaleConfig()))
        for f in ["runs.csv", "runs.json", "meta.json", "report.html"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), f)
        }
        let back = try ScaleCompare.load(dir)
        XCTAssertTrue(ScaleCompare.differences(base: back, new: runs).isEmpty)
        XCTAssertEqual(back.count, runs.count)
        XCTAssertEqual(back.map(\.result.opsPerS), runs.map(\.result.opsPerS))
        XCTAssertEqual(try ScaleCompare.load(dir + "/runs.json").count, runs.count)
        // A single `stress run --json` file (snake_case keys) loads as one run.
        try ResultFile.write(runs[0].result, to: dir + "/one.json")
        let one = try ScaleCompare.load(dir + "/one.json")
        XCTAssertEqual(one.count, 1)
        XCTAssertEqual(one[0].sync, "rcu")

        XCTAssertThrowsError(try ScaleCompare.load(dir + "/missing")) { XCTAssertTrue($0 is ScaleCompare.LoadError) }
        XCTAssertThrowsError(try ScaleCompare.load(dir + "/meta.json")) { XCTAssertTrue($0 is ScaleCompare.LoadError) }
        try Data("not json".utf8).write(to: URL(fileURLWithPath: dir + "/bad.json"))
        XCTAssertThrowsError(try ScaleCompare.load(dir + "/bad.json"))
        try Data("[]".utf8).write(to: URL(fileURLWithPath: dir + "/empty.json"))
        XCTAssertThrowsError(try ScaleCompare.load(dir + "/empty.json")) { XCTAssertTrue("\($0)".contains("no runs")) }
    }

    func testCompareNamesWhatDiffers() throws {
        let a = try sweep()
        var b = try sweep()
        for i in b.indices { b[i].result.settings.mix = "fault=1" }
        let d = ScaleCompare.differences(base: a, new: b)
        XCTAssertEqual(d.count, 1)
        XCTAssertTrue(d[0].hasPrefix("mix ("), d[0])
        let fewer = Array(a.filter { $0.threads != 4 })
        XCTAssertTrue(ScaleCompare.differences(base: a, new: fewer).contains { $0.hasPrefix("swept points") })
        var mixed = a
        mixed[0].result.settings.frames = 2048
        XCTAssertTrue(ScaleCompare.differences(base: mixed, new: a).contains { $0.contains("base mixes runs") })
    }

    /// The machine's noise comes from the ceiling's runs, and scaling is
    /// also paired repeat by repeat: a slow repeat that lowers both of its
    /// points leaves its ratio alone.
    func testMachineNoiseAndPairedScaling() throws {
        let runs = [try run("rcu", 1, 100, repeatIndex: 0), try run("rcu", 2, 190, repeatIndex: 0),
                    try run("rcu", 1, 80, repeatIndex: 1), try run("rcu", 2, 152, repeatIndex: 1),
                    try run("rcu", 1, 90, repeatIndex: 2), try run("rcu", 2, 180, repeatIndex: 2)]
        let ceiling = [CeilingRun(threads: 2, repeatIndex: 0, opsPerS: 200, perProcess: [100, 100], verdict: "SUCCESS"),
                       CeilingRun(threads: 2, repeatIndex: 1, opsPerS: 160, perProcess: [70, 90], verdict: "SUCCESS"),
                       CeilingRun(threads: 2, repeatIndex: 2, opsPerS: 180, perProcess: [90, 90], verdict: "SUCCESS")]
        let lines = ScaleReport.measurementLines(ScaleTable(runs), ceiling: ceiling)
        // Points spread 22.2% (t1: 80..100 over 90) and 21.1% (t2); the
        // ratios 1.90, 1.90, 2.00 only 5.3%.
        XCTAssertTrue(lines.contains("rcu threads=2 over threads=1, repeat by repeat: median 1.90x, spread 5.3% over 3 repeats"), "\(lines)")
        // Ceiling totals 160..200 over 180; single processes 70..100 over 90.
        XCTAssertTrue(lines.contains("machine noise at 2 threads: the ceiling (independent processes that share nothing) spread 22.2% over 3 repeats, its single processes 33.3% over 6"), "\(lines)")
        // One repeat gives no spread to report.
        // On one CPU the two processes only share it: no single-process figure.
        XCTAssertTrue(ScaleReport.measurementLines(ScaleTable(runs), ceiling: ceiling, cpuCount: 1)
            .contains("machine noise at 2 threads: the ceiling (independent processes that share nothing) spread 22.2% over 3 repeats (oversubscribed: single processes not compared)"))
        XCTAssertFalse(ScaleReport.measurementLines(ScaleTable(Array(runs.prefix(2))), ceiling: [ceiling[0]])
            .contains { $0.contains("repeat by repeat") || $0.contains("machine noise") })
    }

    func testPointsAreInterleavedAcrossRepeats() {
        var c = ScaleConfig()
        c.threads = [1, 2]
        c.syncs = [.rcu, .rwlock]
        c.repeats = 3
        let p = c.points()
        XCTAssertEqual(p.count, 12)
        XCTAssertEqual(p.prefix(4).map(\.repeatIndex), [0, 0, 0, 0])
        XCTAssertNotEqual(p[0].threads == p[4].threads && p[0].sync == p[4].sync, true, "each repeat starts one point further")
        XCTAssertEqual(Set(p.map { "\($0.sync)-\($0.threads)-\($0.repeatIndex)" }).count, 12)
    }

    /// Under --pin each ceiling process binds to its own CPU, as the workers
    /// of one multi-thread run do; all on the first CPU would measure one
    /// core, not the machine.
    func testCeilingProcessesArePinnedToDistinctCPUs() throws {
        var c = ScaleConfig()
        c.base.pin = true
        c.syncs = [.rwlock, .rcu]
        let procs = c.ceilingProcesses(threads: 4, repeat: 2)
        XCTAssertEqual(procs.map(\.pinFirst), [0, 1, 2, 3])
        XCTAssertEqual(Set(procs.map(\.seed)).count, 4)
        XCTAssertTrue(procs.allSatisfy { $0.threads == 1 && $0.sync == .rwlock && $0.pin })
        // The child's command line carries the slot, and parses back to it.
        let args = procs[3].arguments
        let i = try XCTUnwrap(args.firstIndex(of: "--pin-first"))
        XCTAssertEqual(args[i + 1], "3")
        XCTAssertFalse(procs[0].arguments.contains("--pin-first"), "slot 0 is the default and is not spelled out")
        XCTAssertNil(procs[3].validate())
        var bad = procs[3]
        bad.pinFirst = -1
        XCTAssertNotNil(bad.validate())
    }

    /// Weak scaling: every size of a point is the base's times its thread
    /// count, the ceiling's processes keep one thread's worth, and a sweep
    /// whose largest point would leave the limits is refused up front.
    func testPerThreadSizeGivesEachThreadItsOwnTable() {
        var c = ScaleConfig()
        c.threads = [1, 4]
        c.base.frames = 4096
        c.base.swapSlots = 2048
        c.base.processes = 256
        c.base.population = 100
        XCTAssertEqual(c.settings(ScaleConfig.Point(sync: .rcu, rcu: .memb, threads: 4, repeatIndex: 0)).frames, 4096, "strong by default")
        c.perThreadSize = true
        let four = c.settings(ScaleConfig.Point(sync: .rcu, rcu: .memb, threads: 4, repeatIndex: 0))
        XCTAssertEqual([four.frames, four.swapSlots, four.processes, four.population], [16384, 8192, 1024, 400])
        let one = c.settings(ScaleConfig.Point(sync: .rcu, rcu: .memb, threads: 1, repeatIndex: 0))
        XCTAssertEqual([one.frames, one.processes], [4096, 256])
        XCTAssertTrue(c.ceilingProcesses(threads: 4, repeat: 0).allSatisfy { $0.frames == 4096 && $0.processes == 256 })
        XCTAssertNil(c.validate())
        XCTAssertEqual(ScaleMeta(arguments: [], config: c).perThreadSize, true)
        c.threads = [1, 4096]
        let p = c.validate()
        XCTAssertNotNil(p)
        XCTAssertTrue(p?.contains("--per-thread-size") ?? false, p ?? "")
    }

    /// An RCU-only walk cannot run under a lock mode: a sweep over sync
    /// modes is refused before any run, not failed run by run.
    func testRCUOnlyWalkRefusesLockModesInTheSweep() {
        var c = ScaleConfig()
        c.base.scheme = .anonVMAChain
        c.base.anonVmaWalk = .rcuOnly
        c.syncs = [.rcu]
        XCTAssertNil(c.validate())
        c.syncs = [.rcu, .mutex]
        let p = c.validate()
        XCTAssertTrue(p?.contains("sync mutex") ?? false, p ?? "accepted")
    }

    /// The usable CPUs are the process's affinity mask: distinct, ascending,
    /// as many as `cpuCount`, and the pin slots wrap round them.
    func testUsableCPUsFollowTheAffinityMask() {
        let n = HostInfo.cpuCount
        XCTAssertGreaterThanOrEqual(n, 1)
        let cpus = (0..<n).map { HostInfo.pinnedCPU(slot: $0) }
        XCTAssertTrue(cpus.allSatisfy { $0 >= 0 })
        XCTAssertEqual(cpus, cpus.sorted())
        XCTAssertEqual(Set(cpus).count, n)
        XCTAssertEqual(HostInfo.pinnedCPU(slot: n), cpus[0])
    }

    /// A real sweep of child processes, with the ceiling measurement.
    func testSweepRunsChildrenAndMeasuresTheCeiling() throws {
        var c = ScaleConfig()
        c.threads = [1, 2]
        c.syncs = [.rcu]
        c.repeats = 1
        c.base.durationS = 0.3
        c.base.warmupS = 0
        c.base.frames = 1024
        c.base.processes = 32
        let out = ScaleSweep.run(c, executable: try StressBinary.url())
        XCTAssertEqual(out.runs.count, 2, "\(out.lost)")
        XCTAssertTrue(out.runs.allSatisfy { $0.result.verdict == Verdict.success })
        XCTAssertEqual(out.ceiling.count, 1)
        XCTAssertEqual(out.ceiling[0].perProcess.count, 2)
        XCTAssertGreaterThan(out.ceiling[0].opsPerS, 0)
        let lines = ScaleReport.measurementLines(ScaleTable(out.runs), ceiling: out.ceiling)
        XCTAssertTrue(lines.contains { $0.contains("of the ceiling") }, "\(lines)")
    }

    // MARK: Hooks into the model

    func testWalkCostPointVisitsEveryMember() throws {
        for g in [1, 5] {
            let w = try ScaleSweep.walkCostPoint(sync: .rcu, groupSize: g, repeatIndex: 0, work: 0.001, seed: 3)
            XCTAssertEqual(w.verdict, "SUCCESS")
            XCTAssertEqual(w.mmsVisited, g)
            XCTAssertGreaterThan(w.walkNs, 0)
            XCTAssertGreaterThan(w.migrateNs, 0)
        }
        let rw = try ScaleSweep.walkCostPoint(sync: .rwlock, groupSize: 3, repeatIndex: 0, work: 0.001, seed: 3)
        XCTAssertEqual(rw.verdict, "SUCCESS")
        XCTAssertEqual(rw.mmsVisited, 3)
        let charts = ScaleReport.walkCostCharts([rw])
        XCTAssertEqual(charts.count, 4)
        XCTAssertEqual(count("<polyline class=\"series\"", in: charts[0].svg()), 1)
    }

    func testBenchSuiteRunsCleanOnTinyWork() throws {
        var o = BenchOptions()
        o.repeats = 1
        o.work = 0.0005
        o.groupSize = 4
        o.pages = 16
        let r = try BenchSuite.run(o)
        XCTAssertEqual(r.problems, [])
        // At tiny work no target is judged: a few iterations prove nothing.
        XCTAssertNotNil(r.row("first-touch fault")?.target)
        XCTAssertNil(r.row("first-touch fault")?.met)
        XCTAssertNil(r.row("RCU read section, memb (lock+unlock)")?.met)
        XCTAssertNotNil(r.row("RCU read section, qsbr (lock+unlock)"))
        XCTAssertNil(r.row("group-list walk rcu, 2 threads")?.met)
        XCTAssertTrue(r.table().contains("not judged"))
        XCTAssertTrue(r.rows.allSatisfy { $0.nsPerOp.median > 0 })
        XCTAssertTrue(r.table().contains("first-touch fault"))
        XCTAssertNotNil(BenchOptions().validate() == nil ? 1 : nil)
        var bad = BenchOptions(); bad.pages = 3
        XCTAssertNotNil(bad.validate())
    }
}
