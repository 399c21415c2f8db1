import Foundation
import RunEngine
import StressSupport

/// runs.csv, walkcost.csv and the self-contained report.html of a sweep.
public enum ScaleReport {
    public static let opOrder = ["fault", "fork", "exit", "exec", "mremap", "munmap", "reclaim", "migrate"]

    // MARK: CSV

    public static func csv(_ runs: [ScaleRun]) -> String {
        var head = ["sync", "rcu", "threads", "repeat", "oversubscribed", "elapsed_s", "completed", "idle", "ops_per_s"]
        head += opOrder.map { "\($0)_ops_per_s" }
        head += ["reclaim_p50_ns", "reclaim_p99_ns", "migrate_p50_ns", "migrate_p99_ns",
                 "rmap_walks", "visited_per_walk", "walk_trylock_failures", "mean_family_size", "steady", "audits", "violations", "verdict"]
        var out = head.joined(separator: ",") + "\n"
        for r in runs {
            let x = r.result
            var row = [r.sync, r.rcu, "\(r.threads)", "\(r.repeatIndex)", r.oversubscribed ? "1" : "0",
                       String(format: "%.3f", x.elapsedS), "\(x.totalCompleted)", "\(x.totalIdle)", String(format: "%.1f", x.opsPerS)]
            row += opOrder.map { String(format: "%.1f", x.ops[$0]?.perS ?? 0) }
            let fam = x.samples.isEmpty ? 0 : x.samples.map(\.meanFamilySize).reduce(0, +) / Double(x.samples.count)
            row += ["\(x.ops["reclaim"]?.p50Ns ?? 0)", "\(x.ops["reclaim"]?.p99Ns ?? 0)",
                    "\(x.ops["migrate"]?.p50Ns ?? 0)", "\(x.ops["migrate"]?.p99Ns ?? 0)",
                    "\(x.walks.count)", String(format: "%.3f", x.walks.visitedPerWalk), "\(x.walks.trylockFailures)",
                    String(format: "%.2f", fam), x.steadyState.map { $0.steady ? "1" : "0" } ?? "n/a",
                    "\(x.audits)", "\(x.violationsByKind.values.reduce(0, +))", x.verdict]
            out += row.joined(separator: ",") + "\n"
        }
        return out
    }

    public static func walkCostCSV(_ w: [WalkCostRun]) -> String {
        var out = "sync,group_size,repeat,walk_ns,ns_per_mm,aging_walk_ns,migrate_ns,walks_per_s,migrations_per_s,mms_visited,walk_iterations,migrate_iterations,verdict\n"
        for r in w {
            out += [r.sync, "\(r.groupSize)", "\(r.repeatIndex)", String(format: "%.1f", r.walkNs), String(format: "%.2f", r.nsPerMM),
                    String(format: "%.1f", r.agingWalkNs), String(format: "%.1f", r.migrateNs),
                    String(format: "%.0f", r.walksPerS), String(format: "%.0f", r.migrationsPerS),
                    "\(r.mmsVisited)", "\(r.walkIterations)", "\(r.migrateIterations)", r.verdict].joined(separator: ",") + "\n"
        }
        return out
    }

    // MARK: Charts

    static func color(_ t: ScaleTable, _ k: ScaleTable.SeriesKey) -> String {
        LineChart.palette[(t.series.firstIndex(of: k) ?? 0) % LineChart.palette.count]
    }

    /// One data series per sync choice (or sync/rcu pair), medians with
    /// min..max error bars, and optionally its perfect-scaling line.
    public static func seriesChart(_ t: ScaleTable, title: String, yLabel: String, cpuCount: Int, ideal: Bool,
                                   _ metric: @escaping (ScaleRun) -> Double?) -> LineChart {
        var series: [LineChart.Series] = []
        for k in t.series {
            var pts: [LineChart.Point] = []
            for th in t.threads {
                guard let sp = t.spread(k, threads: th, metric) else { continue }
                pts.append(.init(x: Double(th), y: sp.median, lo: sp.min, hi: sp.max))
            }
            series.append(.init(name: t.name(k), color: color(t, k), points: pts))
        }
        if ideal {
            for k in t.series {
                let line = t.idealLine(k, metric).map { LineChart.Point(x: Double($0.threads), y: $0.value) }
                series.append(.init(name: "\(t.name(k)) perfect scaling", color: color(t, k), points: line, ideal: true))
            }
        }
        var c = LineChart(title: title, xLabel: "worker threads", yLabel: yLabel, xValues: t.threads.map(Double.init), series: series)
        c.oversubscribedAbove = Double(cpuCount)
        // Thread counts at true spacing; over a wide range (1..64) both axes
        // in log, where perfect scaling is still a straight line.
        if wideRange(t.threads) { c.logX = true; c.logY = true }
        return c
    }

    /// Counts spanning 16x or more are drawn on a log 2 axis.
    static func wideRange(_ v: [Int]) -> Bool {
        guard let lo = v.min(), let hi = v.max(), lo > 0 else { return false }
        return hi >= 16 * lo
    }

    /// (a) total completed ops/s against threads, with perfect-scaling
    /// lines and, when measured, the machine's ceiling.
    public static func throughputChart(_ t: ScaleTable, ceiling: [CeilingRun] = [], cpuCount: Int) -> LineChart {
        var c = seriesChart(t, title: "(a) Total throughput", yLabel: "completed ops/s (median, min..max)", cpuCount: cpuCount,
                            ideal: true) { $0.result.opsPerS }
        if !ceiling.isEmpty, let base = t.series.first, let one = t.spread(base, threads: 1, { $0.result.opsPerS }) {
            var pts = [LineChart.Point(x: 1, y: one.median, lo: one.min, hi: one.max)]
            for th in t.threads where th > 1 {
                let v = ceiling.filter { $0.threads == th }.map(\.opsPerS)
                guard !v.isEmpty else { continue }
                let sp = Spread(v)
                pts.append(.init(x: Double(th), y: sp.median, lo: sp.min, hi: sp.max))
            }
            c.series.append(.init(name: "machine ceiling (N independent 1-thread processes)", color: "#777777", points: pts, dashed: true))
        }
        return c
    }

    /// (b) one chart per operation.
    public static func perOpCharts(_ t: ScaleTable, cpuCount: Int) -> [LineChart] {
        t.operations.map { op in
            var c = seriesChart(t, title: "(b) \(op) ops/s", yLabel: "\(op) ops/s", cpuCount: cpuCount, ideal: false) { $0.result.ops[op]?.perS }
            c.width = 560; c.height = 300
            return c
        }
    }

    /// (c) reclaim and migration latency p50 (solid) and p99 (dashed).
    public static func latencyCharts(_ t: ScaleTable, cpuCount: Int) -> [LineChart] {
        ["reclaim", "migrate"].filter(t.operations.contains).map { op in
            var series: [LineChart.Series] = []
            for k in t.series {
                for (pct, dashed) in [("p50", false), ("p99", true)] {
                    var pts: [LineChart.Point] = []
                    for th in t.threads {
                        let metric: (ScaleRun) -> Double? = { r in
                            guard let s = r.result.ops[op], s.timed > 0 else { return nil }
                            return Double(pct == "p50" ? s.p50Ns : s.p99Ns)
                        }
                        guard let sp = t.spread(k, threads: th, metric) else { continue }
                        pts.append(.init(x: Double(th), y: sp.median, lo: sp.min, hi: sp.max))
                    }
                    series.append(.init(name: "\(t.name(k)) \(pct)", color: color(t, k), points: pts, dashed: dashed))
                }
            }
            var c = LineChart(title: "(c) \(op) latency (whole operation, includes its rmap walks)", xLabel: "worker threads",
                              yLabel: "ns per \(op) call", xValues: t.threads.map(Double.init), series: series)
            c.logY = true
            c.logX = wideRange(t.threads)
            c.oversubscribedAbove = Double(cpuCount)
            c.width = 560; c.height = 320
            return c
        }
    }

    /// (d) ops/s per thread.
    public static func efficiencyChart(_ t: ScaleTable, cpuCount: Int) -> LineChart {
        seriesChart(t, title: "(d) Throughput per thread (efficiency)", yLabel: "ops/s per thread", cpuCount: cpuCount, ideal: false) {
            $0.result.opsPerS / Double($0.threads)
        }
    }

    /// (e) walk cost against group size, one line per sync choice.
    public static func walkCostCharts(_ w: [WalkCostRun]) -> [LineChart] {
        guard !w.isEmpty else { return [] }
        let syncs = orderedSyncs(w.map(\.sync))
        let sizes = Set(w.map(\.groupSize)).sorted().map(Double.init)
        func chart(_ title: String, _ y: String, logY: Bool, _ metric: @escaping (WalkCostRun) -> Double) -> LineChart {
            var series: [LineChart.Series] = []
            for (i, s) in syncs.enumerated() {
                var pts: [LineChart.Point] = []
                for g in sizes {
                    let v = w.filter { $0.sync == s && Double($0.groupSize) == g }.map(metric)
                    guard !v.isEmpty else { continue }
                    let sp = Spread(v)
                    pts.append(.init(x: g, y: sp.median, lo: sp.min, hi: sp.max))
                }
                series.append(.init(name: s, color: LineChart.palette[i % LineChart.palette.count], points: pts))
            }
            var c = LineChart(title: title, xLabel: "mms in the anongroup (G)", yLabel: y, xValues: sizes, series: series)
            c.logY = logY
            c.logX = wideRange(sizes.map { Int($0) })
            c.width = 560; c.height = 320
            return c
        }
        return [
            chart("(e) ns per rmap walk of a page shared by G mms", "ns per walk", logY: true) { $0.walkNs },
            chart("(e) ns per mm visited", "ns per mm", logY: false) { $0.nsPerMM },
            chart("(e) reclaim aging walks/s", "walks/s", logY: true) { $0.agingWalksPerS },
            chart("(e) migrations/s of a page shared by G mms", "migrations/s", logY: true) { $0.migrationsPerS },
        ]
    }

    static func orderedSyncs(_ names: [String]) -> [String] {
        let order = ["rcu", "rwlock", "mutex"]
        let set = Set(names)
        return order.filter(set.contains) + set.subtracting(order).sorted()
    }

    // MARK: Ratios

    /// Median total ops/s of sync `a` over sync `b`, per (rcu flavor, threads).
    public static func ratios(_ t: ScaleTable, _ a: String, over b: String) -> [(rcu: String, threads: Int, ratio: Double)] {
        var out: [(String, Int, Double)] = []
        for rcu in Set(t.series.map(\.rcu)).sorted() {
            let ka = ScaleTable.SeriesKey(sync: a, rcu: rcu), kb = ScaleTable.SeriesKey(sync: b, rcu: rcu)
            for th in t.threads {
                guard let x = t.spread(ka, threads: th, { $0.result.opsPerS }), let y = t.spread(kb, threads: th, { $0.result.opsPerS }),
                      y.median > 0 else { continue }
                out.append((rcu, th, x.median / y.median))
            }
        }
        return out.map { (rcu: $0.0, threads: $0.1, ratio: $0.2) }
    }

    // MARK: How sure the figures are

    /// The machine's noise at `threads`: how far the ceiling's totals
    /// (independent processes sharing nothing) spread over repeats, in
    /// percent of their median; nil with fewer than 2 ceiling repeats.
    static func machineNoise(_ ceiling: [CeilingRun], threads: Int) -> Double? {
        let v = ceiling.filter { $0.threads == threads && $0.verdict == "SUCCESS" }.map(\.opsPerS)
        return v.count >= 2 ? Spread(v).rangePercent : nil
    }

    public struct PairDecision: Sendable {
        public var a: String
        public var b: String
        public var rcu: String
        public var threads: Int
        public var decision: Confidence.Decision
    }

    /// "Does rcu beat rwlock / mutex?" at every thread count: the exact
    /// Mann-Whitney test over the repeats, with the machine's noise at that
    /// thread count (the ceiling's spread) folded in.
    public static func pairDecisions(_ t: ScaleTable, ceiling: [CeilingRun]) -> [PairDecision] {
        var out: [PairDecision] = []
        for (a, b) in [("rcu", "rwlock"), ("rcu", "mutex")] {
            for rcu in Set(t.series.map(\.rcu)).sorted() {
                let ka = ScaleTable.SeriesKey(sync: a, rcu: rcu), kb = ScaleTable.SeriesKey(sync: b, rcu: rcu)
                for th in t.threads {
                    let x = t.values(ka, threads: th) { $0.result.opsPerS }, y = t.values(kb, threads: th) { $0.result.opsPerS }
                    guard let d = Confidence.decide(x, over: y, machineNoisePercent: machineNoise(ceiling, threads: th)) else { continue }
                    out.append(PairDecision(a: a, b: b, rcu: rcu, threads: th, decision: d))
                }
            }
        }
        return out
    }

    static func decisionLine(_ p: PairDecision, multipleRCU: Bool) -> String {
        let d = p.decision
        let what: String
        switch d.outcome {
        case .faster: what = "\(p.a) is faster"
        case .slower: what = "\(p.a) is slower"
        default: what = d.outcome.rawValue
        }
        return String(format: "%@ against %@%@ at %d threads: %.2fx, %@ (%@)", p.a, p.b, multipleRCU ? " (\(p.rcu))" : "", p.threads,
                      d.ratio, what, d.reason)
    }

    /// Rows of the measurement summary. The decisions first (does rcu beat
    /// the baselines, with their significance), a STARVED MACHINE warning
    /// when the machine gave fewer free cores than threads asked; then per
    /// series and thread count the median with its 95% interval (order
    /// statistics; none below 6 repeats) and the spread of the repeats; the
    /// ceiling and the series' ratio to it; the machine's noise.
    public static func measurementLines(_ t: ScaleTable, ceiling: [CeilingRun], cpuCount: Int = .max,
                                        measuredParallelism: Double? = nil) -> [String] {
        var out: [String] = []
        for p in pairDecisions(t, ceiling: ceiling) { out.append(decisionLine(p, multipleRCU: t.multipleRCU)) }
        if let w = Confidence.starvedMachine(measuredParallelism: measuredParallelism, mostThreads: t.threads.max() ?? 1) {
            out.append(w)
        }
        for k in t.series {
            for th in t.threads {
                let v = t.values(k, threads: th) { $0.result.opsPerS }
                guard !v.isEmpty else { continue }
                let sp = Spread(v)
                var line = "\(t.name(k)) threads=\(th): median \(LineChart.short(sp.median)) ops/s"
                if let ci = Confidence.medianInterval(v) {
                    line += String(format: " (95%% CI %@..%@, order statistics, coverage %.1f%%)", LineChart.short(ci.lo), LineChart.short(ci.hi), ci.coverage * 100)
                } else {
                    line += " (95% CI: too few repeats to tell, \(v.count) < \(Confidence.minRepeatsForInterval))"
                }
                line += String(format: ", spread (max-min)/median %.1f%% over %d repeats", sp.rangePercent, sp.n)
                let c = ceiling.filter { $0.threads == th }.map(\.opsPerS)
                if th > 1, !c.isEmpty, let one = t.spread(k, threads: 1, { $0.result.opsPerS }) {
                    let cm = Spread(c).median
                    line += String(format: "; ceiling %@ ops/s: %.2fx of one thread, the model reaches %.2fx = %.2f of the ceiling",
                                   LineChart.short(cm), cm / one.median, sp.median / one.median, sp.median / cm)
                }
                out.append(line)
            }
            out += pairedScalingLines(t, k)
        }
        out += machineNoiseLines(ceiling, cpuCount: cpuCount)
        return out
    }

    /// Scaling of a series repeat by repeat: each N-thread run over the
    /// 1-thread run of the same repeat. The two ran close in time (repeats
    /// are interleaved), so a drift of a shared machine slower than the
    /// pair lowers both and cancels out of the ratio; swings within seconds
    /// do not (on the 2-core VM they are as large as the drift).
    static func pairedScalingLines(_ t: ScaleTable, _ k: ScaleTable.SeriesKey) -> [String] {
        let one = Dictionary(t.runs(k, threads: 1).map { ($0.repeatIndex, $0.result.opsPerS) }, uniquingKeysWith: { a, _ in a })
        var out: [String] = []
        for th in t.threads where th > 1 {
            let r = t.runs(k, threads: th)
                .compactMap { run in one[run.repeatIndex].flatMap { $0 > 0 ? run.result.opsPerS / $0 : nil } }
            guard r.count >= 2 else { continue }
            let sp = Spread(r)
            out.append(String(format: "%@ threads=%d over threads=1, repeat by repeat: median %.2fx, spread %.1f%% over %d repeats",
                              t.name(k), th, sp.median, sp.rangePercent, sp.n))
        }
        return out
    }

    /// The machine's own noise, from the ceiling's runs: N independent
    /// 1-thread processes share nothing, so however they spread is the
    /// machine (other tenants, the hypervisor moving virtual CPUs), not
    /// the model. A point of the model cannot be expected to spread less.
    /// With more processes than CPUs the single processes' shares differ
    /// by the OS scheduler's choices, not by noise: only the total is given.
    static func machineNoiseLines(_ ceiling: [CeilingRun], cpuCount: Int) -> [String] {
        var out: [String] = []
        for th in Set(ceiling.map(\.threads)).sorted() {
            let runs = ceiling.filter { $0.threads == th && $0.verdict == "SUCCESS" }
            guard runs.count >= 2 else { continue }
            let total = Spread(runs.map(\.opsPerS)), single = Spread(runs.flatMap(\.perProcess))
            var line = String(format: "machine noise at %d threads: the ceiling (independent processes that share nothing) spread %.1f%% over %d repeats",
                              th, total.rangePercent, total.n)
            line += th <= cpuCount
                ? String(format: ", its single processes %.1f%% over %d", single.rangePercent, single.n)
                : " (oversubscribed: single processes not compared)"
            out.append(line)
        }
        return out
    }

    static func measurementSection(_ t: ScaleTable, ceiling: [CeilingRun], cpuCount: Int, measuredParallelism: Double?) -> String {
        var h = "<h2>How sure: medians, 95% intervals, the machine's ceiling</h2>\n"
        h += "<p class=\"note\">Repeats of the points are interleaved in time. A 95% interval of a median is the order-statistic one (distribution-free, exact coverage given); below \(Confidence.minRepeatsForInterval) repeats no such interval exists and none is claimed. \"A is faster\" needs an exact two-sided Mann-Whitney U test over the repeats at p &lt; 0.05, ranges of repeats that do not overlap, and a difference larger than the machine's own noise. The ceiling is N independent 1-thread <code>stress run</code> processes at once, measured in the same sweep: the scaling this machine allows a workload that shares nothing. Its spread is the machine's own noise: a point of the model cannot be expected to spread less. Scaling is also given repeat by repeat (each N-thread run over the 1-thread run of its repeat): a drift of the machine slower than a pair of runs cancels out of it, faster swings do not.</p>\n<ul>\n"
        for l in measurementLines(t, ceiling: ceiling, cpuCount: cpuCount, measuredParallelism: measuredParallelism) {
            h += "<li>\(htmlEscaped(l))</li>\n"
        }
        return h + "</ul>\n"
    }

    /// The decision table: does rcu beat the baselines, with significance.
    static func decisionTable(_ t: ScaleTable, ceiling: [CeilingRun]) -> String {
        let ds = pairDecisions(t, ceiling: ceiling)
        guard !ds.isEmpty else { return "" }
        var h = "<h2>Decision: does RCU beat the locks?</h2>\n<table class=\"decision\"><tr><th class=\"l\">comparison</th><th>threads</th><th>ratio of medians</th><th>p (Mann-Whitney)</th><th>beyond the noise of both sides</th><th>machine noise</th><th class=\"l\">decision</th></tr>\n"
        for p in ds {
            let d = p.decision
            let noise = machineNoise(ceiling, threads: p.threads).map { String(format: "%.1f%%", $0) } ?? "not measured"
            let what = d.outcome == .faster ? "\(p.a) is faster" : d.outcome == .slower ? "\(p.a) is slower" : d.outcome.rawValue
            h += "<tr><td class=\"l\">\(p.a) / \(p.b)\(t.multipleRCU ? " (\(p.rcu))" : "")</td><td>\(p.threads)</td><td>\(String(format: "%.2f", d.ratio))×</td><td>\(d.p.map { String(format: "%.3f", $0) } ?? "–")</td><td>\(d.exceedsBothSides.map { $0 ? "yes" : "no" } ?? "one repeat: unknown")</td><td>\(noise)</td><td class=\"l\"><b>\(htmlEscaped(what))</b> (\(htmlEscaped(d.reason)))</td></tr>\n"
        }
        return h + "</table>\n"
    }

    /// A sweep's verdict and completeness: INTERRUPTED (by a signal), STALL
    /// (the sweep stopped at a stalled run), FAILURE (a run failed or was
    /// lost), INCOMPLETE (fewer runs than planned for another reason), or
    /// SUCCESS; and "n of m runs" with what ended how.
    public static func verdict(runs: [ScaleRun], ceiling: [CeilingRun], walkCost: [WalkCostRun], meta: ScaleMeta) -> (word: String, detail: String) {
        let planned = meta.plannedRuns ?? runs.count
        let lost = meta.lostRuns ?? []
        var ended: [String: Int] = [:]
        for r in runs { ended[r.result.verdict, default: 0] += 1 }
        var detail = "\(runs.count) of \(planned) planned runs finished ("
            + ended.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + ")"
        if !lost.isEmpty { detail += ", \(lost.count) lost" }
        let ceilingBad = ceiling.filter { $0.verdict != Verdict.success }.count
        if !ceiling.isEmpty { detail += ", \(ceiling.count) ceiling measurements\(ceilingBad > 0 ? " (\(ceilingBad) failed)" : "")" }
        let wcBad = walkCost.filter { $0.verdict != Verdict.success }.count
        if !walkCost.isEmpty { detail += ", \(walkCost.count) walk-cost measurements\(wcBad > 0 ? " (\(wcBad) failed)" : "")" }
        let failed = runs.contains { $0.result.verdict != Verdict.success && $0.result.verdict != Verdict.stall } || !lost.isEmpty
            || ceilingBad > 0 || wcBad > 0
        if let sig = meta.interruptedBy { return ("INTERRUPTED", "by signal \(sig); " + detail) }
        if runs.contains(where: { $0.result.verdict == Verdict.stall }) { return (Verdict.stall, detail + "; the sweep stopped at the stall") }
        if failed { return (Verdict.failure, detail) }
        if runs.count < planned { return ("INCOMPLETE", detail) }
        return (Verdict.success, detail)
    }

    // MARK: HTML

    public static func html(runs: [ScaleRun], ceiling: [CeilingRun] = [], walkCost: [WalkCostRun], meta: ScaleMeta) -> String {
        let t = ScaleTable(runs)
        let cpus = meta.cpuCount
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>ConcurrentRmap scalability report</title>
        <style>
        body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
        table{border-collapse:collapse;margin:8px 0 16px}
        td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}
        th{background:#f3f3f3} td.l,th.l{text-align:left}
        tr.fail td{background:#fdd}
        .charts{display:flex;flex-wrap:wrap;gap:12px}
        .note{color:#555;font-size:13px;max-width:1000px}
        code{background:#f5f5f5;padding:0 3px}
        </style></head><body>
        <h1>ConcurrentRmap scalability report</h1>

        """
        let verdict = ScaleReport.verdict(runs: runs, ceiling: ceiling, walkCost: walkCost, meta: meta)
        let bad = verdict.word != Verdict.success
        h += "<p class=\"verdict\"><b>Verdict: <span\(bad ? " style=\"color:#b00\"" : "")>\(htmlEscaped(verdict.word))</span></b>: \(htmlEscaped(verdict.detail)).</p>\n"
        h += "<p><b>Commit:</b> <code>\(htmlEscaped(meta.gitCommit))</code>\(meta.gitDirty == true ? " <span style=\"color:#b00\">built from a tree with uncommitted changes</span>" : "").</p>\n"
        if let w = Confidence.starvedMachine(measuredParallelism: meta.measuredParallelism, mostThreads: t.threads.max() ?? 1) {
            h += "<p class=\"starved\" style=\"color:#b00\"><b>\(htmlEscaped(w))</b></p>\n"
        }
        h += decisionTable(t, ceiling: ceiling)
        h += "<table>\n"
        let rows: [(String, String)] = [
            ("commit", meta.gitCommit), ("version", meta.version), ("build", meta.buildConfiguration), ("date", meta.date),
            ("CPU", meta.cpuModel), ("usable CPUs", "\(meta.cpuCount)"),
            ("measured parallelism", meta.measuredParallelism.map { String(format: "%.2f× for 2 spinning threads (2.00 = two free cores; lower = the machine is busy with other work, read multi-thread figures against it)", $0) } ?? "not measured"),
            ("kernel", meta.kernel),
            ("command", meta.arguments.joined(separator: " ")), ("seed", "\(meta.seed) (repeat r uses seed+r)"),
            ("mix", meta.mix), ("duration per run", "\(meta.durationS) s"), ("repeats", "\(meta.repeats)"),
            ("machine", "frames=\(meta.frames) swap-slots=\(meta.swapSlots) processes=\(meta.maxProcesses) vma-pages=\(meta.vmaPages) checks=\(meta.checks)"
                + (meta.perThreadSize == true ? " per thread (weak scaling: N threads get N times each)" : " for every thread count (strong scaling)")),
        ]
        for (k, v) in rows { h += "<tr><th class=\"l\">\(htmlEscaped(k))</th><td class=\"l\">\(htmlEscaped(v))</td></tr>\n" }
        h += "</table>\n"
        h += "<p class=\"note\">Each point is the median over repeats; error bars span min..max. Dashed lines are perfect scaling (the series' 1-thread median × N, as will-it-scale draws it). Thread counts above the \(cpus) CPUs this process may use are shaded as oversubscribed: there the workers share cores (the engine's coordinator and grace-period probe threads run too), so flat or falling lines are expected and say nothing about the design.</p>\n"

        if !runs.isEmpty {
            // Summary table
            h += "<h2>Summary: median total ops/s</h2>\n<table><tr><th class=\"l\">threads</th>"
            for k in t.series { h += "<th>\(htmlEscaped(t.name(k)))</th>" }
            let pairs = [("rcu", "rwlock"), ("rcu", "mutex")].filter { p in t.series.contains { $0.sync == p.0 } && t.series.contains { $0.sync == p.1 } }
            let multi = Set(t.series.map(\.rcu)).count > 1
            let rcus = Set(t.series.map(\.rcu)).sorted()
            for p in pairs { for r in rcus { h += "<th>\(p.0)/\(p.1)\(multi ? " (\(r))" : "")</th>" } }
            h += "</tr>\n"
            for th in t.threads {
                h += "<tr><td class=\"l\">\(th)\(th > cpus ? " (oversubscribed)" : "")</td>"
                for k in t.series {
                    if let sp = t.spread(k, threads: th, { $0.result.opsPerS }) {
                        h += "<td>\(LineChart.short(sp.median)) <small>(\(LineChart.short(sp.min))..\(LineChart.short(sp.max)))</small></td>"
                    } else { h += "<td>–</td>" }
                }
                for p in pairs {
                    let rs = ratios(t, p.0, over: p.1)
                    for r in rcus {
                        if let x = rs.first(where: { $0.rcu == r && $0.threads == th }) { h += "<td>\(String(format: "%.2f", x.ratio))×</td>" } else { h += "<td>–</td>" }
                    }
                }
                h += "</tr>\n"
            }
            h += "</table>\n"

            h += measurementSection(t, ceiling: ceiling, cpuCount: cpus, measuredParallelism: meta.measuredParallelism)
            h += "<h2>(a) Total throughput against threads</h2>\n<div class=\"charts\">\(throughputChart(t, ceiling: ceiling, cpuCount: cpus).svg())</div>\n"
            h += "<h2>(b) Per-operation throughput</h2>\n<div class=\"charts\">\n"
            for c in perOpCharts(t, cpuCount: cpus) { h += c.svg() }
            h += "</div>\n"
            h += "<h2>(c) rmap-walk latency proxies</h2>\n"
            h += "<p class=\"note\">The stress engine records latency per operation, not per walk. A reclaim call (clock scan of 64 frames, aging walks of each candidate, swap-out walks) and a migration (two blocking rmap walks plus the copy) are dominated by their rmap walks, so their p50/p99 are shown here as <i>proxies</i> for walk latency: they include the scan, page locks and allocation, not the walk alone. Solid: p50, dashed: p99. Single-threaded ns per walk itself is in (e) when the walk-cost sweep ran, and in <code>stress bench</code>.</p>\n<div class=\"charts\">\n"
            for c in latencyCharts(t, cpuCount: cpus) { h += c.svg() }
            h += "</div>\n"
            h += "<h2>(d) Efficiency: ops/s per thread</h2>\n<div class=\"charts\">\(efficiencyChart(t, cpuCount: cpus).svg())</div>\n"
        }

        if !walkCost.isEmpty {
            h += "<h2>(e) Walk cost against anongroup size</h2>\n"
            h += "<p class=\"note\">One process writes 4 pages and forks G−1 times without exec, so all G mms sit in one anongroup and map the pages. Single-threaded, on a fresh machine per point: <b>walk</b> = one rmap walk with the page pinned and locked, each mm's page-table lock taken and the PTE at page.index looked up (what migration does); <b>aging walk</b> = reclaim's walk (trylock, clear the young bit); <b>migration</b> = a full migration of the shared page (two walks, G PTEs rewritten). Medians over repeats.</p>\n<div class=\"charts\">\n"
            for c in walkCostCharts(walkCost) { h += c.svg() }
            h += "</div>\n<table><tr><th class=\"l\">sync</th><th>G</th><th>ns/walk</th><th>ns/mm</th><th>ns/aging walk</th><th>ns/migration</th><th>migrations/s</th><th>verdict</th></tr>\n"
            for s in orderedSyncs(walkCost.map(\.sync)) {
                for g in Set(walkCost.map(\.groupSize)).sorted() {
                    let v = walkCost.filter { $0.sync == s && $0.groupSize == g }
                    guard !v.isEmpty else { continue }
                    let ok = v.allSatisfy { $0.verdict == "SUCCESS" }
                    let w = Spread(v.map(\.walkNs)), a = Spread(v.map(\.agingWalkNs)), m = Spread(v.map(\.migrateNs))
                    h += "<tr\(ok ? "" : " class=\"fail\"")><td class=\"l\">\(s)</td><td>\(g)</td><td>\(String(format: "%.0f", w.median))</td><td>\(String(format: "%.1f", w.median / Double(g)))</td><td>\(String(format: "%.0f", a.median))</td><td>\(String(format: "%.0f", m.median))</td><td>\(LineChart.short(1e9 / m.median))</td><td>\(ok ? "SUCCESS" : "FAILURE")</td></tr>\n"
                }
            }
            h += "</table>\n"
        }

        if !runs.isEmpty {
            h += "<h2>All runs</h2>\n<table><tr><th class=\"l\">sync</th><th class=\"l\">rcu</th><th>threads</th><th>repeat</th><th>ops/s</th><th>rmap walks</th><th>mms/walk</th><th>audits</th><th class=\"l\">verdict</th></tr>\n"
            for r in runs {
                let x = r.result
                let bad = x.verdict != "SUCCESS"
                let why = bad ? " " + x.violationsByKind.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + (x.leaks.isEmpty ? "" : " leaks=\(x.leaks.count)") : ""
                h += "<tr\(bad ? " class=\"fail\"" : "")><td class=\"l\">\(htmlEscaped(r.sync))</td><td class=\"l\">\(htmlEscaped(r.rcu))</td><td>\(r.threads)</td><td>\(r.repeatIndex)</td><td>\(String(format: "%.0f", x.opsPerS))</td><td>\(x.walks.count)</td><td>\(String(format: "%.2f", x.walks.visitedPerWalk))</td><td>\(x.audits)</td><td class=\"l\">\(htmlEscaped(x.verdict + why))</td></tr>\n"
            }
            h += "</table>\n"
        }
        h += "<p class=\"note\">Generated by <code>stress scale</code> \(htmlEscaped(meta.version)) (commit \(htmlEscaped(meta.gitCommit))\(meta.gitDirty == true ? ", dirty tree" : "")). Raw data: runs.csv, runs.json, meta.json\(walkCost.isEmpty ? "" : ", walkcost.csv, walkcost.json"). Compare two sweeps with <code>stress compare OLD NEW</code>.</p>\n"
        h += "</body></html>\n"
        return h
    }
}
