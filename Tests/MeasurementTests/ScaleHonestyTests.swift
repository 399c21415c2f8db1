import ConcurrentRmap
import Foundation
import XCTest
@testable import Measurement
@testable import RunEngine
@testable import StressSupport

/// Issue 23: the reports claim only what the numbers show. Intervals are
/// what their names say, "faster" needs a significance test and a
/// difference beyond the machine's noise, every report names its verdict,
/// completeness and commit, and the charts are drawn to be read.
final class ScaleHonestyTests: XCTestCase {
    // MARK: Intervals and tests on synthetic numbers

    func testMedianIntervalFromOrderStatistics() throws {
        XCTAssertNil(Confidence.medianInterval([1, 2, 3, 4, 5]), "5 repeats cannot reach 95%")
        let six = try XCTUnwrap(Confidence.medianInterval([6, 1, 5, 2, 4, 3]))
        XCTAssertEqual(six.lo, 1)
        XCTAssertEqual(six.hi, 6)
        XCTAssertEqual(six.coverage, 1 - 2.0 / 64, accuracy: 1e-12, "P(all 6 on one side of the median) = 2/64")
        // 10 repeats: [x(2), x(9)], coverage 1 - 2 * 11/1024 = 97.85%.
        let ten = try XCTUnwrap(Confidence.medianInterval((1...10).map(Double.init)))
        XCTAssertEqual(ten.lo, 2)
        XCTAssertEqual(ten.hi, 9)
        XCTAssertEqual(ten.coverage, 1 - 22.0 / 1024, accuracy: 1e-12)
        XCTAssertGreaterThanOrEqual(ten.coverage, 0.95)
        XCTAssertNil(Confidence.medianInterval([1, 2, 3, .nan, .infinity, 4, 5]), "non-finite values do not count")
    }

    func testExactMannWhitney() throws {
        // 3 against 3, completely separated: 2 of 20 arrangements as extreme.
        XCTAssertEqual(try XCTUnwrap(Confidence.mannWhitneyP([4, 5, 6], [1, 2, 3])), 0.1, accuracy: 1e-12)
        // 4 against 4: 2 of 70.
        XCTAssertEqual(try XCTUnwrap(Confidence.mannWhitneyP([5, 6, 7, 8], [1, 2, 3, 4])), 2.0 / 70, accuracy: 1e-12)
        // Interleaved samples: no evidence at all.
        XCTAssertEqual(try XCTUnwrap(Confidence.mannWhitneyP([1, 4, 5, 8], [2, 3, 6, 7])), 1, accuracy: 1e-12)
        XCTAssertEqual(Confidence.smallestP(2, 2), 1.0 / 3, accuracy: 1e-12)
        XCTAssertLessThan(Confidence.smallestP(4, 4), 0.05)
        XCTAssertGreaterThan(Confidence.smallestP(3, 4), 0.05)
    }

    /// The case of the issue: 2 repeats a side, rcu 3x the mutex's median.
    /// Two against two can never be significant: "too few repeats to tell".
    func testTwoRepeatsCannotClaimFaster() throws {
        let d = try XCTUnwrap(Confidence.decide([300, 310], over: [100, 104]))
        XCTAssertEqual(d.outcome, .tooFew)
        XCTAssertEqual(d.ratio, 305.0 / 102, accuracy: 1e-9)
        XCTAssertTrue(d.reason.contains("2 against 2 repeats can never reach p < 0.05"))
    }

    func testDecisionRules() throws {
        let fast: [Double] = [120, 121, 122, 123, 124, 125], slow: [Double] = [100, 101, 102, 103, 104, 105]
        let d = try XCTUnwrap(Confidence.decide(fast, over: slow))
        XCTAssertEqual(d.outcome, .faster)
        XCTAssertEqual(d.exceedsBothSides, true)
        XCTAssertLessThan(try XCTUnwrap(d.p), 0.01)
        XCTAssertEqual(try XCTUnwrap(Confidence.decide(slow, over: fast)).outcome, .slower)
        // A 20% difference on a machine whose own noise is 30%: not a finding.
        XCTAssertEqual(try XCTUnwrap(Confidence.decide(fast, over: slow, machineNoisePercent: 30)).outcome, .withinNoise)
        XCTAssertEqual(try XCTUnwrap(Confidence.decide(fast, over: slow, machineNoisePercent: 5)).outcome, .faster)
        // Overlapping repeats: no difference shown.
        let mixed = try XCTUnwrap(Confidence.decide([100, 103, 106, 109, 112, 115], over: [101, 104, 107, 110, 113, 116]))
        XCTAssertEqual(mixed.outcome, .noDifference)
        XCTAssertEqual(mixed.exceedsBothSides, false)
        // One repeat a side: its noise is unknown.
        XCTAssertNil(try XCTUnwrap(Confidence.decide([2], over: [1])).exceedsBothSides)
        XCTAssertNil(Confidence.decide([], over: [1]))
    }

    func testStarvedMachineWarning() {
        XCTAssertNil(Confidence.starvedMachine(measuredParallelism: 1.95, mostThreads: 4))
        XCTAssertNil(Confidence.starvedMachine(measuredParallelism: 1.0, mostThreads: 1), "one thread asks for no parallelism")
        XCTAssertNil(Confidence.starvedMachine(measuredParallelism: nil, mostThreads: 4))
        let w = Confidence.starvedMachine(measuredParallelism: 1.03, mostThreads: 4)
        XCTAssertTrue(w?.hasPrefix("STARVED MACHINE: measured parallelism 1.03x") == true, w ?? "")
    }

    // MARK: Reports

    func run(_ sync: String, _ threads: Int, _ ops: Double, repeatIndex: Int, verdict: String = Verdict.success) throws -> ScaleRun {
        var r = try CompareInputTests.result()
        r.settings.sync = ListSync(rawValue: sync)!
        r.settings.threads = threads
        r.opsPerS = ops
        r.verdict = verdict
        return ScaleRun(sync: sync, rcu: "memb", threads: threads, repeatIndex: repeatIndex, oversubscribed: false, result: r)
    }

    func config() -> ScaleConfig {
        var c = ScaleConfig()
        c.threads = [1, 2]
        c.syncs = [.rcu, .mutex]
        c.repeats = 2
        return c
    }

    func testMeasurementLinesPutTheDecisionFirst() throws {
        var runs: [ScaleRun] = []
        for r in 0..<2 {
            runs += [try run("rcu", 1, 100 + Double(r), repeatIndex: r), try run("rcu", 2, 300 + Double(r) * 10, repeatIndex: r),
                     try run("mutex", 1, 99 + Double(r), repeatIndex: r), try run("mutex", 2, 100 + Double(r) * 4, repeatIndex: r)]
        }
        let lines = ScaleReport.measurementLines(ScaleTable(runs), ceiling: [], measuredParallelism: 1.1)
        XCTAssertTrue(lines[0].hasPrefix("rcu against mutex at 1 threads"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("rcu against mutex at 2 threads: 2.99x, too few repeats to tell"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("STARVED MACHINE"), lines[2])
        XCTAssertFalse(lines.contains { $0.contains("95% CI") && !$0.contains("too few repeats to tell") },
                       "no interval claimed from 2 repeats: \(lines)")
        XCTAssertFalse(lines.contains { $0.contains("rcu is faster") })
    }

    func testVerdictCompletenessAndCommit() throws {
        let c = config()
        var meta = ScaleMeta(arguments: ["stress", "scale"], config: c)
        XCTAssertEqual(meta.plannedRuns, 8)
        let runs = [try run("rcu", 1, 100, repeatIndex: 0), try run("rcu", 2, 190, repeatIndex: 0), try run("mutex", 1, 90, repeatIndex: 0)]
        meta.interruptedBy = 2
        var v = ScaleReport.verdict(runs: runs, ceiling: [], walkCost: [], meta: meta)
        XCTAssertEqual(v.word, "INTERRUPTED")
        XCTAssertTrue(v.detail.contains("by signal 2; 3 of 8 planned runs finished (3 SUCCESS)"), v.detail)
        let html = ScaleReport.html(runs: runs, walkCost: [], meta: meta)
        XCTAssertTrue(html.contains("Verdict: <span style=\"color:#b00\">INTERRUPTED</span>"))
        XCTAssertFalse(html.contains("all 3 runs SUCCESS"))
        XCTAssertTrue(html.contains("<b>Commit:</b> <code>\(StressVersion.gitCommit)</code>"))
        meta.interruptedBy = nil
        XCTAssertEqual(ScaleReport.verdict(runs: runs, ceiling: [], walkCost: [], meta: meta).word, "INCOMPLETE")
        meta.lostRuns = ["sync=mutex rcu=memb threads=2 repeat=0: crashed"]
        v = ScaleReport.verdict(runs: runs, ceiling: [], walkCost: [], meta: meta)
        XCTAssertEqual(v.word, Verdict.failure)
        XCTAssertTrue(v.detail.contains("1 lost"))
        meta.lostRuns = nil
        meta.plannedRuns = 3
        XCTAssertEqual(ScaleReport.verdict(runs: runs, ceiling: [], walkCost: [], meta: meta).word, Verdict.success)
        let failed = runs + [try run("mutex", 2, 80, repeatIndex: 0, verdict: Verdict.failure)]
        meta.plannedRuns = 4
        v = ScaleReport.verdict(runs: failed, ceiling: [], walkCost: [], meta: meta)
        XCTAssertEqual(v.word, Verdict.failure)
        XCTAssertTrue(v.detail.contains("4 of 4 planned runs finished (1 FAILURE, 3 SUCCESS)"), v.detail)
        meta.measuredParallelism = 1.05
        XCTAssertTrue(ScaleReport.html(runs: runs, walkCost: [], meta: meta).contains("STARVED MACHINE"))
    }

    /// A rerun into the same folder removes the earlier sweep's files that
    /// this one does not write, and nothing else.
    func testRerunRemovesOnlyItsOwnStaleFiles() throws {
        let dir = NSTemporaryDirectory() + "scale-stale-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let runs = [try run("rcu", 1, 100, repeatIndex: 0)]
        let meta = ScaleMeta(arguments: ["t"], config: config())
        let walk = [WalkCostRun(sync: "rcu", groupSize: 8, repeatIndex: 0, walkNs: 400, agingWalkNs: 380, migrateNs: 1500,
                                mmsVisited: 8, walkIterations: 10, migrateIterations: 10, verdict: "SUCCESS")]
        let ceiling = [CeilingRun(threads: 2, repeatIndex: 0, opsPerS: 200, perProcess: [100, 100], verdict: "SUCCESS")]
        try ScaleFiles.write(dir: dir, runs: runs, ceiling: ceiling, walkCost: walk, meta: meta)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        for f in ["ceiling.json", "walkcost.csv", "walkcost.json"] { XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f)) }
        try ScaleFiles.write(dir: dir, runs: runs, walkCost: [], meta: meta)
        for f in ["ceiling.json", "walkcost.csv", "walkcost.json"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f) of the earlier sweep is gone")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/notes.txt"), "a file not ours is left alone")
    }

    // MARK: Charts

    func svgNumbers(_ svg: String, _ pattern: String) -> [Double] {
        let re = try! NSRegularExpression(pattern: pattern)
        let ns = svg as NSString
        return re.matches(in: svg, range: NSRange(location: 0, length: ns.length)).compactMap { Double(ns.substring(with: $0.range(at: 1))) }
    }

    func testChartsAreDrawnToBeRead() throws {
        let s = [LineChart.Series(name: "rcu", color: "#000", points: [.init(x: 1, y: 100, lo: 90, hi: 110), .init(x: 2, y: 110, lo: 100, hi: 120),
                                                                       .init(x: 4, y: 115, lo: 105, hi: 125), .init(x: 8, y: 118, lo: 108, hi: 128)]),
                 LineChart.Series(name: "mutex", color: "#111", points: [.init(x: 1, y: 100, lo: 90, hi: 110), .init(x: 2, y: 110, lo: 100, hi: 120),
                                                                         .init(x: 4, y: 115, lo: 105, hi: 125), .init(x: 8, y: 118, lo: 108, hi: 128)]),
                 LineChart.Series(name: "rcu perfect scaling", color: "#000", points: [1, 2, 4, 8].map { .init(x: $0, y: 100 * $0) }, ideal: true),
                 LineChart.Series(name: "machine ceiling (N independent 1-thread processes)", color: "#777", points: [.init(x: 1, y: 100)], dashed: true)]
        let c = LineChart(title: "t", xLabel: "worker threads", yLabel: "ops/s", xValues: [1, 2, 4, 8], series: s)
        let svg = c.svg()
        // The y axis follows the measured lines (up to 128), not the
        // perfect-scaling line (800), which is clipped to the plot.
        let ticks = svgNumbers(svg, "text-anchor=\"end\">([0-9.]+)</text>")
        XCTAssertLessThan(try XCTUnwrap(ticks.max()), 200, "\(ticks)")
        XCTAssertTrue(svg.contains("class=\"ideal\"") && svg.contains("clip-path=\"url(#plot-"))
        // True spacing: x of 1, 2, 4, 8 are proportional to the values.
        // The x ticks: short vertical marks below the axis, one per value.
        let tickX = svgNumbers(svg, "<line x1=\"([0-9.]+)\" y1=\"([0-9.]+)\" x2=\"\\1\" y2=\"[0-9.]+\" stroke=\"#333\"/>\n<text x=\"\\1\"")
        XCTAssertEqual(tickX.count, 4, svg)
        if tickX.count == 4 {
            XCTAssertEqual((tickX[3] - tickX[2]) / (tickX[2] - tickX[1]), 2, accuracy: 0.05)
            XCTAssertEqual((tickX[2] - tickX[1]) / (tickX[1] - tickX[0]), 2, accuracy: 0.05)
        }
        // Equal points of two series: their error bars do not coincide.
        let bars = svgNumbers(svg, "class=\"errbar\" d=\"M([0-9.]+) ")
        XCTAssertEqual(bars.count, 8)
        XCTAssertEqual(Set(bars).count, 8, "\(bars)")
        // The legend is below the plot and every entry fits the width.
        let height = try XCTUnwrap(svgNumbers(svg, "height=\"([0-9.]+)\" viewBox").first)
        XCTAssertGreaterThan(height, c.height)
        for (i, x, _) in c.legendLayout(width: c.width, left: 78).items {
            XCTAssertLessThanOrEqual(x + 28 + 6.6 * Double(s[i].name.count), c.width, s[i].name)
        }
        XCTAssertTrue(svg.contains("machine ceiling (N independent 1-thread processes)"))
        XCTAssertEqual(svg, c.svg(), "the same chart draws the same text")
    }
}
