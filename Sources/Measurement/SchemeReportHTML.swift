import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport

/// The files of `stress schemes`: report.html (inline SVG, no script, no
/// external resource), one CSV per section, schemes.json (everything) and
/// runs.json (the throughput runs, for `stress compare --scheme`).
public enum SchemeReport {
    /// Per scheme, in `SchemeKind` order: its hue for RCU, then lighter
    /// (rwlock) and darker (mutex) shades.
    static let palette: [(String, String, String)] = [("#1f77b4", "#6baed6", "#08306b"), ("#d62728", "#fc9272", "#67000d"),
                                                      ("#2ca02c", "#a1d99b", "#00441b"), ("#9467bd", "#bcbddc", "#3f007d"),
                                                      ("#ff7f0e", "#fdae6b", "#7f2704")]
    static func shades(_ scheme: String) -> (String, String, String) {
        let i = SchemeKind.allCases.firstIndex { $0.rawValue == scheme } ?? 0
        return palette[i % palette.count]
    }
    static var schemeColor: [String: String] {
        Dictionary(uniqueKeysWithValues: SchemeKind.allCases.map { ($0.rawValue, shades($0.rawValue).0) })
    }
    static let pageColor = ["shared": "#1f77b4", "private-cow": "#2ca02c", "private-fresh": "#d62728"]
    static let syncDash = ["rcu": false, "rwlock": true, "mutex": true]

    // MARK: Files

    public static func write(dir: String, _ o: SchemeComparison) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ResultFile.write(o, to: dir + "/schemes.json")
        try ResultFile.write(o.runs, to: dir + "/runs.json")
        let csvs: [(String, String)] = [("throughput.csv", throughputCSV(o)), ("walks.csv", walksCSV(o.walks)),
                                       ("forkexit.csv", forkExitCSV(o.forkExit)), ("mremap.csv", mremapCSV(o.mremap)),
                                       ("swap.csv", swapCSV(o.swap)), ("metadata.csv", metadataCSV(o.metadata)),
                                       ("mix.csv", mixCSV(o.mix)), ("claims.csv", claimsCSV(o.claims)),
                                       ("aim7.csv", HistoricReport.aim7CSV(o.aim7)), ("forkchain.csv", HistoricReport.chainCSV(o.forkChain)),
                                       ("zygote.csv", HistoricReport.zygoteCSV(o.zygote)), ("filewalks.csv", FileReport.csv(o.fileWalks))]
        for (name, text) in csvs { try AtomicFile.write(Data(text.utf8), to: dir + "/" + name) }
        try AtomicFile.write(Data(html(o).utf8), to: dir + "/report.html")
    }

    public static let files = ["report.html", "schemes.json", "runs.json", "throughput.csv", "walks.csv", "forkexit.csv",
                               "mremap.csv", "swap.csv", "metadata.csv", "mix.csv", "claims.csv", "aim7.csv", "forkchain.csv", "zygote.csv",
                               "filewalks.csv"]

    // MARK: CSV

    /// A CSV field: quoted when it holds a comma, quote or newline.
    static func field(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static func rows(_ head: [String], _ body: [[String]]) -> String {
        ([head] + body).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    static func d(_ x: Double, _ digits: Int = 1) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "" }

    public static func throughputCSV(_ o: SchemeComparison) -> String {
        var head = ["scheme", "sync", "threads", "repeat", "ops_per_s"]
        for op in ScaleReport.opOrder { head += ["\(op)_ops_per_s", "\(op)_p50_ns", "\(op)_p99_ns"] }
        head += ["rmap_walks", "visited_per_walk", "wasted_per_walk", "mean_family_size", "mremap_copy", "mremap_move", "mremap_keep",
                 "swap_cache_hit", "swap_cache_copy", "verdict"]
        let body = o.runs.map { r -> [String] in
            let x = r.result
            var row = [x.settings.scheme.rawValue, r.sync, "\(r.threads)", "\(r.repeatIndex)", d(x.opsPerS)]
            for op in ScaleReport.opOrder {
                let s = x.ops[op]
                row += [d(s?.perS ?? 0), "\(s?.p50Ns ?? 0)", "\(s?.p99Ns ?? 0)"]
            }
            let fam = x.samples.isEmpty ? 0 : x.samples.map(\.meanFamilySize).reduce(0, +) / Double(x.samples.count)
            row += ["\(x.walks.count)", d(x.walks.visitedPerWalk, 3), d(x.walks.wastedPerWalk, 3), d(fam, 2),
                    "\(x.event(.mremapCopy))", "\(x.event(.mremapMove))", "\(x.event(.mremapKeep))",
                    "\(x.event(.swapCacheHit))", "\(x.event(.swapCacheCopy))", x.verdict]
            return row
        }
        return rows(head, body)
    }

    public static func walksCSV(_ w: [TreeWalkRun]) -> String {
        rows(["scheme", "tree", "children", "depth", "exec", "page", "repeat", "mms", "sharers", "execed", "ns_per_walk", "visited", "found",
              "wasted", "ns_per_visit", "walks", "contexts", "vmas", "live_mms", "metadata_bytes", "verdict"],
             w.map { [$0.scheme, $0.tree, "\($0.children)", "\($0.depth)", $0.exec ? "1" : "0", $0.page, "\($0.repeatIndex)", "\($0.mms)",
                      "\($0.sharers)", "\($0.execed)", d($0.nsPerWalk), "\($0.visited)", "\($0.found)", "\($0.wasted)", d($0.nsPerVisit, 2),
                      "\($0.walks)", "\($0.contexts)", "\($0.vmas)", "\($0.liveMMs)", $0.metadataBytes.map(String.init) ?? "", $0.verdict] })
    }

    public static func forkExitCSV(_ f: [ForkExitRun]) -> String {
        rows(["scheme", "vmas", "pages_per_vma", "repeat", "iterations", "ns_per_fork_exit", "verdict"],
             f.map { [$0.scheme, "\($0.vmas)", "\($0.pagesPerVMA)", "\($0.repeatIndex)", "\($0.iterations)", d($0.nsPerForkExit), $0.verdict] })
    }

    public static func mremapCSV(_ m: [MremapRun]) -> String {
        rows(["scheme", "pages", "shared_percent", "repeat", "calls", "ns_per_mremap", "copied_per_call", "reindexed_per_call", "kept_per_call", "verdict"],
             m.map { [$0.scheme, "\($0.pages)", "\($0.sharedPercent)", "\($0.repeatIndex)", "\($0.calls)", d($0.nsPerMremap),
                      d($0.copiedPerCall, 2), d($0.reindexedPerCall, 2), d($0.keptPerCall, 2), $0.verdict] })
    }

    public static func swapCSV(_ s: [SwapRun]) -> String {
        rows(["scheme", "after_mremap", "repeat", "pages", "swapped_out", "cache_hits", "copies", "slot_reads", "copies_avoided",
              "frames_after", "ns_per_fault", "verdict"],
             s.map { [$0.scheme, $0.afterMremap ? "1" : "0", "\($0.repeatIndex)", "\($0.pages)", "\($0.swappedOut)", "\($0.hits)", "\($0.copies)",
                      "\($0.reads)", "\($0.copiesAvoided)", "\($0.framesAfter)", d($0.nsPerFault), $0.verdict] })
    }

    public static func metadataCSV(_ m: [MetadataRow]) -> String {
        rows(["scheme", "bytes_per_vma", "bytes_per_mm", "default_process_vmas", "bytes_per_default_process", "tree", "tree_vmas", "tree_mms",
              "tree_contexts", "tree_bytes"],
             m.map { [$0.scheme, "\($0.bytesPerVMA)", "\($0.bytesPerMM)", "\($0.defaultProcessVMAs)", "\($0.bytesPerDefaultProcess)", $0.tree ?? "",
                      $0.treeVMAs.map(String.init) ?? "", $0.treeMMs.map(String.init) ?? "", $0.treeContexts.map(String.init) ?? "",
                      $0.treeBytes.map(String.init) ?? ""] })
    }

    public static func mixCSV(_ m: [MixFigures]) -> String {
        rows(["scheme", "runs", "mean_family_size", "max_family_size", "family_size_limit", "visited_per_walk", "wasted_per_walk", "mremap_calls",
              "mremap_copied", "mremap_reindexed", "mremap_kept", "mremap_swap_moved", "copies_per_mremap", "shared_page_fraction",
              "swap_cache_hits", "swap_cache_copies", "swap_reads"],
             m.map { [$0.scheme, "\($0.runs)", d($0.meanFamilySize, 2), "\($0.maxFamilySize)", "\($0.familySizeLimit)", d($0.visitedPerWalk, 3),
                      d($0.wastedPerWalk, 3), "\($0.mremapCalls)", "\($0.mremapCopied)", "\($0.mremapReindexed)", "\($0.mremapKept)",
                      "\($0.mremapSwapMoved)", d($0.copiesPerMremap, 3), d($0.sharedPageFraction, 4), "\($0.swapCacheHits)",
                      "\($0.swapCacheCopies)", "\($0.swapReads)"] })
    }

    public static func claimsCSV(_ c: [ClaimRow]) -> String {
        rows(["who", "claim", "figure", "workload", "verdict", "why"], c.map { [$0.who, $0.claim, $0.figure, $0.workload, $0.verdict, $0.why] })
    }

    // MARK: Charts

    public static func throughputChart(_ o: SchemeComparison) -> LineChart {
        var series: [LineChart.Series] = []
        for p in orderedKeys(o.throughput) {
            let pts = o.throughput.filter { $0.scheme == p.scheme && $0.sync == p.sync }.sorted { $0.threads < $1.threads }
            let color = syncShade(p.scheme, p.sync)
            series.append(.init(name: "\(p.scheme) \(p.sync)", color: color,
                                points: pts.map { .init(x: Double($0.threads), y: $0.opsPerS.median, lo: $0.opsPerS.min, hi: $0.opsPerS.max) },
                                dashed: syncDash[p.sync] ?? false))
            // Perfect scaling from the 1-thread median, for RCU (the design under test).
            if p.sync == ListSync.rcu.rawValue, let one = pts.first(where: { $0.threads == 1 }), pts.count > 1 {
                series.append(.init(name: "\(p.scheme) rcu ideal", color: color,
                                    points: pts.map { .init(x: Double($0.threads), y: one.opsPerS.median * Double($0.threads)) }, ideal: true))
            }
        }
        var c = LineChart(title: "Completed ops/s against threads (median, min..max)", xLabel: "worker threads", yLabel: "ops/s",
                          xValues: Array(Set(o.throughput.map { Double($0.threads) })), series: series)
        c.oversubscribedAbove = Double(o.meta.cpuCount)
        c.width = 900
        return c
    }

    static func orderedKeys(_ t: [ThroughputPoint]) -> [(scheme: String, sync: String)] {
        var out: [(scheme: String, sync: String)] = []
        for p in t where !out.contains(where: { $0.scheme == p.scheme && $0.sync == p.sync }) { out.append((p.scheme, p.sync)) }
        return out
    }

    /// A scheme's hue, lighter for the lock baselines.
    static func syncShade(_ scheme: String, _ sync: String) -> String {
        let c = shades(scheme)
        switch sync {
        case "rcu": return c.0
        case "rwlock": return c.1
        default: return c.2
        }
    }

    public static func walkChart(_ w: [TreeWalkRun], exec: Bool) -> LineChart {
        let v = w.filter { $0.exec == exec }
        var series: [LineChart.Series] = []
        for s in orderedSchemes(v.map(\.scheme)) {
            for page in ["shared", "private-fresh"] {
                let mmsList = Set(v.filter { $0.scheme == s && $0.page == page }.map(\.mms)).sorted()
                let pts = mmsList.map { n -> LineChart.Point in
                    let xs = v.filter { $0.scheme == s && $0.page == page && $0.mms == n }.map(\.nsPerWalk)
                    let sp = Spread(xs)
                    return .init(x: Double(n), y: sp.median, lo: sp.min, hi: sp.max)
                }
                series.append(.init(name: "\(s) \(page)", color: schemeColor[s] ?? "#333", points: pts, dashed: page != "shared"))
            }
        }
        var c = LineChart(title: "ns per rmap walk against fork-tree size\(exec ? " (even children exec)" : " (no exec)")",
                          xLabel: "processes in the tree (shapes: \(treeLabels(v)))", yLabel: "ns per walk",
                          xValues: Array(Set(v.map { Double($0.mms) })), series: series)
        c.logY = true
        return c
    }

    static func treeLabels(_ v: [TreeWalkRun]) -> String {
        var seen: [(Int, String)] = []
        for r in v where !seen.contains(where: { $0.1 == r.tree }) { seen.append((r.mms, r.tree)) }
        return seen.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: ", ")
    }

    static func orderedSchemes(_ s: [String]) -> [String] {
        SchemeKind.allCases.map(\.rawValue).filter { s.contains($0) }
    }

    public static func forkExitChart(_ f: [ForkExitRun]) -> LineChart {
        var series: [LineChart.Series] = []
        let sizes = Set(f.map(\.pagesPerVMA)).sorted()
        for s in orderedSchemes(f.map(\.scheme)) {
            for (k, pages) in sizes.enumerated() {
                let v = f.filter { $0.scheme == s && $0.pagesPerVMA == pages }
                let pts = Set(v.map(\.vmas)).sorted().map { n -> LineChart.Point in
                    let sp = Spread(v.filter { $0.vmas == n }.map { $0.nsPerForkExit / 1000 })
                    return .init(x: Double(n), y: sp.median, lo: sp.min, hi: sp.max)
                }
                series.append(.init(name: "\(s), \(pages) page\(pages == 1 ? "" : "s")/VMA", color: schemeColor[s] ?? "#333", points: pts, dashed: k > 0))
            }
        }
        var c = LineChart(title: "fork + exit against VMAs per process (every page written)",
                          xLabel: "VMAs in the parent", yLabel: "µs per fork+exit", xValues: Array(Set(f.map { Double($0.vmas) })), series: series)
        c.logY = sizes.count > 1
        c.width = 900
        return c
    }

    public static func mremapChart(_ m: [MremapRun]) -> LineChart {
        var series: [LineChart.Series] = []
        for (si, s) in orderedSchemes(m.map(\.scheme)).enumerated() {
            let shares = Set(m.map(\.sharedPercent)).sorted()
            for (k, sh) in shares.enumerated() {
                let pts = Set(m.filter { $0.scheme == s && $0.sharedPercent == sh }.map(\.pages)).sorted().map { p -> LineChart.Point in
                    let sp = Spread(m.filter { $0.scheme == s && $0.sharedPercent == sh && $0.pages == p }.map { $0.nsPerMremap / 1000 })
                    return .init(x: Double(p), y: sp.median, lo: sp.min, hi: sp.max)
                }
                let c = SchemeReport.shades(s)
                series.append(.init(name: "\(s) \(sh)% shared", color: [c.1, c.0, c.2][min(k, 2)], points: pts, dashed: si % 2 == 1))
            }
        }
        var c = LineChart(title: "mremap after fork against VMA size and pages still shared", xLabel: "pages in the VMA",
                          yLabel: "µs per mremap", xValues: Array(Set(m.map { Double($0.pages) })), series: series)
        c.logY = true
        c.width = 900
        return c
    }

    // MARK: HTML

    /// "anongroup (the seed) against anon_vma (Linux 2.6.7)" and so on.
    static func schemeTitle(_ schemes: [String]) -> String {
        let names: [String: String] = ["anongroup": "anongroup (the seed, 2004)", "anon-vma": "anon_vma (Linux 2.6.7-2.6.33)",
                                       "anon-vma-chain": "anon_vma_chain (Linux 2.6.34 to today)",
                                       "pte-chains": "pte_chains (Linux 2.5-2.6.5)"]
        let parts = orderedSchemes(schemes).map { names[$0] ?? $0 }
        return parts.count == 2 ? parts[0] + " against " + parts[1] : "The rmap schemes side by side: " + parts.joined(separator: ", ")
    }

    /// Throughput per (sync, threads): each scheme's median ops/s, and each
    /// against the first scheme: the ratio of medians and the decision of
    /// the exact Mann-Whitney test over the repeats (a bootstrap interval
    /// from 3 repeats claimed a 95% it did not have).
    static func throughputTable(_ o: SchemeComparison, _ points: [ThroughputPoint], runs: [ScaleRun], syncs: [String]) -> String {
        let schemes = orderedSchemes(o.meta.schemes)
        var h = "<table>\n" + header(["sync", "threads"] + schemes.map { "\($0) ops/s" }
                                     + schemes.dropFirst().flatMap { ["\($0) / \(schemes[0])", "p (Mann-Whitney): decision"] })
        for sync in syncs {
            for th in Set(points.map(\.threads)).sorted() {
                let ps = schemes.map { sc in points.first { $0.scheme == sc && $0.sync == sync && $0.threads == th } }
                guard ps.contains(where: { $0 != nil }) else { continue }
                let xs = schemes.map { sc in runs.filter { $0.result.settings.scheme.rawValue == sc && $0.sync == sync && $0.threads == th }.map { $0.result.opsPerS } }
                h += "<tr>\(cell(sync, left: true))\(cell("\(th)"))" + ps.map { p in cell(p.map { LineChart.short($0.opsPerS.median) } ?? "–") }.joined()
                for k in schemes.indices.dropFirst() {
                    let ratio = (ps[0] != nil && ps[k] != nil) ? String(format: "%.3f×", ps[k]!.opsPerS.median / ps[0]!.opsPerS.median) : "–"
                    let d = Confidence.decide(xs[k], over: xs[0])
                    let what = d.map { d in
                        (d.p.map { String(format: "%.3f: ", $0) } ?? "")
                            + (d.outcome == .faster ? "\(schemes[k]) faster" : d.outcome == .slower ? "\(schemes[k]) slower" : d.outcome.rawValue)
                    } ?? "–"
                    h += cell(ratio) + cell(what)
                }
                h += "</tr>\n"
            }
        }
        return h + "</table>\n"
    }

    static func cell(_ s: String, left: Bool = false, cls: String? = nil) -> String {
        "<td\(left ? " class=\"l\"" : "")\(cls.map { " class=\"\($0)\"" } ?? "")>\(htmlEscaped(s))</td>"
    }

    static func header(_ cols: [String]) -> String {
        "<tr>" + cols.enumerated().map { "<th\($0.offset == 0 ? " class=\"l\"" : "")>\(htmlEscaped($0.element))</th>" }.joined() + "</tr>\n"
    }

    static func us(_ ns: Double) -> String { ns >= 10_000 ? String(format: "%.1f µs", ns / 1000) : String(format: "%.0f ns", ns) }

    public static func html(_ o: SchemeComparison) -> String {
        let m = o.meta
        let schemes = orderedSchemes(m.schemes)
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>ConcurrentRmap: the rmap schemes side by side</title>
        <style>
        body{font-family:sans-serif;margin:24px;color:#222;max-width:1250px}
        table{border-collapse:collapse;margin:8px 0 16px}
        td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right;vertical-align:top}
        th{background:#f3f3f3} td.l,th.l{text-align:left}
        tr.fail td{background:#fdd}
        td.supports{background:#e3f4e3} td.refutes{background:#fbe3e3} td.partly{background:#fdf3d8}
        .charts{display:flex;flex-wrap:wrap;gap:12px}
        .note{color:#555;font-size:13px;max-width:1100px}
        code{background:#f5f5f5;padding:0 3px}
        </style></head><body>
        <h1>\(htmlEscaped(schemeTitle(m.schemes)))</h1>

        """
        let fails = o.failures
        // The verdict names itself, how complete the report is, and the
        // commit, before anything else.
        let planned = m.plannedRuns ?? o.runs.count
        let word = o.interrupted != 0 ? "INTERRUPTED" : fails > 0 ? Verdict.failure : o.runs.count + o.lost.count < planned ? "INCOMPLETE" : Verdict.success
        h += "<p class=\"verdict\"><b>Verdict: <span\(word == Verdict.success ? "" : " style=\"color:#b00\"")>\(word)</span></b>: "
            + "\(o.runs.count) of \(planned) planned throughput runs finished; "
            + (fails == 0 ? "every run and benchmark machine SUCCESS (no violation, no leak)" : "\(fails) failing or lost measurement(s)")
            + (o.interrupted != 0 ? "; interrupted by signal \(o.interrupted), later sections missing" : "") + ".</p>\n"
        h += "<p><b>Commit:</b> <code>\(htmlEscaped(m.gitCommit))</code>\(m.gitDirty ? " <span style=\"color:#b00\">built from a tree with uncommitted changes: not a report to commit</span>" : "").</p>\n"
        if let w = Confidence.starvedMachine(measuredParallelism: m.measuredParallelism, mostThreads: m.threads.max() ?? 1) {
            h += "<p class=\"starved\" style=\"color:#b00\"><b>\(htmlEscaped(w))</b></p>\n"
        }
        h += "<table>\n"
        let meta: [(String, String)] = [
            ("commit", m.gitCommit + (m.gitDirty ? " (dirty tree)" : "")), ("version", m.version), ("build", m.buildConfiguration), ("date", m.date),
            ("CPU", "\(m.cpuModel), \(m.cpuCount) online"), ("kernel", m.kernel),
            ("load average at start", m.loadAverage + " (other work on the machine; every ratio below is between figures of this one run)"),
            ("measured parallelism", m.measuredParallelism.map { String(format: "%.2f× for 2 spinning threads (2.00 = two free cores)", $0) } ?? "not measured"),
            ("command", m.arguments.joined(separator: " ")), ("seed", "\(m.seed) (repeat r uses seed+r)"),
            ("repeats", "\(m.repeats), interleaved: each repeat alternates which scheme runs first; figures are medians over repeats"),
            ("throughput runs", "threads \(m.threads.map(String.init).joined(separator: ",")) × sync \(m.sync.joined(separator: ",")) × \(m.schemes.joined(separator: ", ")); \(m.settings.warmupS) s warm-up + \(m.settings.durationS) s each; mix \(m.settings.mix); processes \(m.settings.processes), frames \(m.settings.frames), family size ≤ \(m.settings.familySize), locality \(m.settings.locality)%, checks \(m.settings.checks.rawValue)"),
            ("benchmarks", "one thread, a fresh machine per point, checks \(m.benchChecks), work ×\(m.work); trees \(m.trees.joined(separator: ", ")); fork+exit with \(m.vmas.map(String.init).joined(separator: ",")) VMAs of \(m.forkVMAPages.map(String.init).joined(separator: " or ")) pages; mremap sizes \(m.mremapPages.map(String.init).joined(separator: ",")) pages, shared \(m.sharedPercents.map { "\($0)%" }.joined(separator: ",")); swap \(m.swapPages) pages"),
            ("wall time", String(format: "%.0f s", m.wallS)),
        ]
        for (k, v) in meta { h += "<tr><th class=\"l\">\(htmlEscaped(k))</th><td class=\"l\">\(htmlEscaped(v))</td></tr>\n" }
        h += "</table>\n"

        // Claims
        h += "<h2>The 2004 claims against this report's figures</h2>\n<table>\n" + header(["who", "claim", "figure (this run)", "workload", "verdict"])
        for c in o.claims {
            h += "<tr>\(cell(c.who, left: true))\(cell(c.claim, left: true))\(cell(c.figure, left: true))\(cell(c.workload, left: true))<td class=\"l \(c.verdict)\"><b>\(htmlEscaped(c.verdict))</b>: \(htmlEscaped(c.why))</td></tr>\n"
        }
        h += "</table>\n"

        // 1. Throughput and latency
        if !o.throughput.isEmpty {
            h += "<h2>1. Throughput and latency of the stress mix</h2>\n"
            h += "<p class=\"note\">Each point: completed operations per second of one <code>stress run</code> child (the scale sweep's machinery), median over repeats with min..max bars; the faint dashed line of each scheme's colour is perfect scaling of its RCU run (1-thread median × N). Above \(m.cpuCount) threads the workers share cores. On this machine other work runs beside (see load average), so compare schemes within a row, not against other machines.</p>\n"
            h += "<div class=\"charts\">\(throughputChart(o).svg())</div>\n"
            h += throughputTable(o, o.throughput, runs: o.runs, syncs: m.sync)
            h += "<h3>Latency per operation kind (median over repeats of each run's p50 / p99; one operation in \(m.settings.latencySample) timed)</h3>\n<table>\n"
            h += header(["sync", "threads", "operation"] + schemes.flatMap { ["\($0) p50", "\($0) p99"] } + schemes.map { "\($0) ops/s" })
            for sync in m.sync {
                for th in m.threads {
                    let ps = schemes.map { sc in o.throughput.first { $0.scheme == sc && $0.sync == sync && $0.threads == th } }
                    for op in ScaleReport.opOrder where ps.contains(where: { $0?.p50Ns[op] != nil }) {
                        func f(_ x: Double?) -> String { x.map(us) ?? "–" }
                        h += "<tr>\(cell(sync, left: true))\(cell("\(th)"))\(cell(op, left: true))"
                        h += ps.map { cell(f($0?.p50Ns[op])) + cell(f($0?.p99Ns[op])) }.joined()
                        h += ps.map { p in cell(p.map { LineChart.short($0.perOpS[op] ?? 0) } ?? "–") }.joined() + "</tr>\n"
                    }
                }
            }
            h += "</table>\n"
        }

        // 2. Walks
        if !o.walks.isEmpty {
            h += "<h2>2. rmap walk cost against fork-tree shape</h2>\n"
            h += "<p class=\"note\">A root with 2 VMAs writes two pages of its first VMA, then every node down to the tree's depth forks its children (CxD: C children per parent, D levels). With exec, every even-numbered child of each parent (the first included) execs at once: under anongroup it leaves the group, under anon_vma its VMAs leave the anon_vma; what it forks later never maps the root's pages. Three pages are walked as migration walks them (page locked, each object's page-table lock taken, the PTE looked up): <b>shared</b>, the root's page that every sharer maps; <b>private-cow</b>, the deepest sharer's copy-on-write copy of the root's second page; <b>private-fresh</b>, the deepest sharer's first touch of its second VMA, which nobody had touched before fork. <i>visited</i> = mms (anongroup) or VMAs (anon_vma) the walk looked at; <i>wasted</i> = visited objects that did not map the page. Solid: shared page; dashed: private-fresh.</p>\n"
            h += "<div class=\"charts\">\(walkChart(o.walks, exec: false).svg())\(walkChart(o.walks, exec: true).svg())</div>\n"
            h += "<table>\n" + header(["tree", "exec", "mms", "sharers", "page"] + schemes.flatMap { ["\($0) ns/walk", "visited", "wasted"] }
                                         + schemes.dropFirst().map { "\($0) / \(schemes[0])" })
            var seen: [(String, Bool)] = []
            for r in o.walks where !seen.contains(where: { $0.0 == r.tree && $0.1 == r.exec }) { seen.append((r.tree, r.exec)) }
            for (tree, exec) in seen {
                for page in ["shared", "private-cow", "private-fresh"] {
                    let ws = schemes.map { SchemeCompare.walkMedian(o.walks, scheme: $0, tree: tree, exec: exec, page: page) }
                    let bad = o.walks.contains { $0.tree == tree && $0.exec == exec && $0.page == page && $0.verdict != Verdict.success }
                    let any = ws.compactMap { $0 }.first
                    h += "<tr\(bad ? " class=\"fail\"" : "")>\(cell(tree, left: true))\(cell(exec ? "yes" : "no"))\(cell("\(any?.mms ?? 0)"))\(cell("\(any?.sharers ?? 0)"))\(cell(page, left: true))"
                    for w in ws { h += cell(w.map { us($0.ns) } ?? "–") + cell(w.map { "\($0.visited)" } ?? "–") + cell(w.map { "\($0.wasted)" } ?? "–") }
                    for w in ws.dropFirst() { h += cell((w != nil && ws[0] != nil) ? String(format: "%.2f×", w!.ns / ws[0]!.ns) : "–") }
                    h += "</tr>\n"
                }
            }
            h += "</table>\n"
        }

        // 3. fork+exit
        if !o.forkExit.isEmpty {
            h += "<h2>3. fork + exit against VMAs per process</h2>\n"
            h += "<p class=\"note\">A parent with N VMAs of P pages, every page written, forks a child that exits at once; fork and exit are timed together (solid: 1 page per VMA, where the per-VMA work shows; dashed: more pages, where copying the page tables adds to it). anon_vma links and unlinks each VMA of the child on its anon_vma (a lock and a list insertion per VMA); anongroup adds the child mm to one list.</p>\n"
            h += "<div class=\"charts\">\(forkExitChart(o.forkExit).svg())</div>\n<table>\n"
            h += header(["pages per VMA", "VMAs"] + schemes + schemes.dropFirst().map { "\($0) / \(schemes[0])" })
            for pages in Set(o.forkExit.map(\.pagesPerVMA)).sorted() {
                for n in Set(o.forkExit.map(\.vmas)).sorted() {
                    let f = o.forkExit.filter { $0.pagesPerVMA == pages && $0.vmas == n }
                    let v = schemes.map { sc in SchemeCompare.median(f.filter { $0.scheme == sc }.map(\.nsPerForkExit)) }
                    h += "<tr>\(cell("\(pages)", left: true))\(cell("\(n)"))" + v.map { cell(us($0)) }.joined()
                    h += v.dropFirst().map { cell(String(format: "%.2f×", $0 / v[0])) }.joined() + "</tr>\n"
                }
            }
            h += "</table>\n"
            for pages in Set(o.forkExit.map(\.pagesPerVMA)).sorted() {
                if let s = SchemeClaims.forkExitSlope(o, pages: pages) {
                    h += "<p class=\"note\">Least-squares slope with \(pages)-page VMAs: anongroup \(String(format: "%.0f", s.g)) ns, anon_vma \(String(format: "%.0f", s.a)) ns per extra VMA.</p>\n"
                }
            }
        }

        // 4. mremap
        if !o.mremap.isEmpty {
            h += "<h2>4. mremap after fork against VMA size and pages still shared</h2>\n"
            h += "<p class=\"note\">A parent writes every page of one VMA and forks a child; the child writes (copies on write) the pages that are not to stay shared; then the parent moves the VMA with mremap (only the mremap is timed; a fresh child per call). anongroup copies each page still shared (the seed's rule: one index names every PTE of a page) and re-indexes the exclusive ones; anon_vma moves the PTEs and touches no page.</p>\n"
            h += "<div class=\"charts\">\(mremapChart(o.mremap).svg())</div>\n<table>\n"
            h += header(["pages", "shared"] + schemes.flatMap { ["\($0)", "copied/call", "re-indexed/call", "moved untouched/call"] })
            for p in Set(o.mremap.map(\.pages)).sorted() {
                for sh in Set(o.mremap.map(\.sharedPercent)).sorted() {
                    h += "<tr>\(cell("\(p)", left: true))\(cell("\(sh)%"))"
                    for sc in schemes {
                        let v = o.mremap.filter { $0.scheme == sc && $0.pages == p && $0.sharedPercent == sh }
                        h += cell(us(SchemeCompare.median(v.map(\.nsPerMremap)))) + cell(d(v.first?.copiedPerCall ?? .nan))
                        h += cell(d(v.first?.reindexedPerCall ?? .nan)) + cell(d(v.first?.keptPerCall ?? .nan))
                    }
                    h += "</tr>\n"
                }
            }
            h += "</table>\n"
        }

        // 5. swap cache
        if !o.swap.isEmpty {
            h += "<h2>5. Swap-in from a sharer: copies the swap cache avoids</h2>\n"
            h += "<p class=\"note\">A parent writes \(m.swapPages) pages and forks; reclaim swaps them out of both and keeps them in the swap cache (as kswapd does); optionally the child moves its VMA with mremap first (Hugh Dickins' case); then the parent and the child read every page back. A <i>hit</i> maps the cached page (no copy: the copy the cache avoided); a <i>copy</i> gives the faulting mm its own page, because the scheme cannot map the cached one there (anongroup: its one index is another address). Without a swap cache every one of the 2×\(m.swapPages) swap-ins would need its own frame.</p>\n<table>\n"
            h += header(["scheme", "child mremapped first", "swapped out", "cache hits (copies avoided)", "copies", "slot reads", "frames afterwards", "ns per swap-in fault"])
            for s in orderedSchemes(o.swap.map(\.scheme)) {
                for after in [false, true] {
                    let v = o.swap.filter { $0.scheme == s && $0.afterMremap == after }
                    guard let x = v.first else { continue }
                    let bad = v.contains { $0.verdict != Verdict.success }
                    h += "<tr\(bad ? " class=\"fail\"" : "")>\(cell(s, left: true))\(cell(after ? "yes" : "no"))\(cell("\(x.swappedOut)/\(x.pages)"))\(cell("\(x.hits)"))\(cell("\(x.copies)"))\(cell("\(x.reads)"))\(cell("\(x.framesAfter)"))\(cell(us(SchemeCompare.median(v.map(\.nsPerFault)))))</tr>\n"
                }
            }
            h += "</table>\n"
            if !o.mix.isEmpty {
                h += "<p class=\"note\">In the stress mix (all throughput runs together): " + o.mix.map { "\($0.scheme): \($0.swapCacheHits) swap-cache hits, \($0.swapCacheCopies) copies, \($0.swapReads) slot reads" }.joined(separator: "; ") + ".</p>\n"
            }
        }

        // 6. metadata
        if !o.metadata.isEmpty {
            h += "<h2>6. rmap metadata</h2>\n<p class=\"note\">Bytes each scheme adds per VMA and per mm (<code>RmapScheme.metadataBytes</code>; 4-byte handles in this model), the context objects (an anongroup or an anon_vma: a lock and a list head) not counted; and the live objects on the bench machine with the largest tree built.</p>\n<table>\n"
            h += header(["scheme", "bytes per VMA", "bytes per mm", "default process (\(o.metadata.first?.defaultProcessVMAs ?? 0) VMAs)", "tree", "live VMAs", "live mms", "rmap contexts", "rmap bytes (VMAs + mms)", "contexts per VMA"])
            for r in o.metadata {
                let perVMA = (r.treeContexts != nil && (r.treeVMAs ?? 0) > 0) ? String(format: "%.4f", Double(r.treeContexts!) / Double(r.treeVMAs!)) : "–"
                h += "<tr>\(cell(r.scheme, left: true))\(cell("\(r.bytesPerVMA)"))\(cell("\(r.bytesPerMM)"))\(cell("\(r.bytesPerDefaultProcess) B"))\(cell(r.tree ?? "–"))\(cell(r.treeVMAs.map(String.init) ?? "–"))\(cell(r.treeMMs.map(String.init) ?? "–"))\(cell(r.treeContexts.map(String.init) ?? "–"))\(cell(r.treeBytes.map { "\($0) B" } ?? "–"))\(cell(perVMA))</tr>\n"
            }
            h += "</table>\n"
        }

        if !o.mix.isEmpty {
            h += "<h2>The stress mix, per scheme</h2>\n<table>\n"
            h += header(["scheme", "runs", "mean family size", "largest", "mms/VMAs visited per walk", "wasted per walk", "mremaps", "pages copied", "re-indexed", "moved untouched", "copies per mremap", "shared share of moved pages"])
            for x in o.mix {
                h += "<tr>\(cell(x.scheme, left: true))\(cell("\(x.runs)"))\(cell(d(x.meanFamilySize, 2)))\(cell("\(x.maxFamilySize)"))\(cell(d(x.visitedPerWalk, 2)))\(cell(d(x.wastedPerWalk, 2)))\(cell("\(x.mremapCalls)"))\(cell("\(x.mremapCopied)"))\(cell("\(x.mremapReindexed)"))\(cell("\(x.mremapKept)"))\(cell(d(x.copiesPerMremap, 2)))\(cell(String(format: "%.1f%%", x.sharedPageFraction * 100)))</tr>\n"
            }
            h += "</table>\n"
        }
        h += HistoricReport.html(o)
        h += FileReport.html(o)
        if !o.lost.isEmpty {
            h += "<h2>Lost measurements</h2>\n<ul>\n" + o.lost.map { "<li>\(htmlEscaped($0))</li>\n" }.joined() + "</ul>\n"
        }
        h += "<p class=\"note\">Generated by <code>stress schemes</code> \(htmlEscaped(m.version)) (\(htmlEscaped(m.gitCommit))). Raw data: \(files.dropFirst().joined(separator: ", ")). <code>stress compare --scheme anongroup OLD NEW</code> reads runs.json.</p>\n"
        h += "</body></html>\n"
        return h
    }
}
