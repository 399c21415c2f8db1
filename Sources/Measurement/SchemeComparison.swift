import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport

// MARK: What to compare

/// A fork tree: every node down to `depth` forks `children` children.
public struct TreeShape: Codable, Sendable, Equatable, CustomStringConvertible {
    public var children: Int
    public var depth: Int
    public init(children: Int, depth: Int) { self.children = children; self.depth = depth }

    /// Processes in the tree, the root included.
    public var mms: Int {
        var total = 1, level = 1
        for _ in 0..<depth { level *= children; total += level }
        return total
    }

    /// "8x2": 8 children per parent, 2 levels.
    public var description: String { "\(children)x\(depth)" }

    public static let childrenRange = 1...4096
    public static let depthRange = 1...12
    /// The most processes a tree may have (the bench machine holds them all).
    public static let mmsLimit = 4096

    /// Parses "1x1,4x1,2x3" (children x depth).
    public static func list(_ text: String, option: String) throws -> [TreeShape] {
        var out: [TreeShape] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map({ String(ScaleLists.strip($0)) }) {
            let xy = part.split(separator: "x", omittingEmptySubsequences: false)
            guard xy.count == 2, let c = Int(xy[0]), let d = Int(xy[1]), xy.allSatisfy({ $0.allSatisfy(\.isNumber) }) else {
                throw ListParseError(message: "bad tree '\(part)' in --\(option): expected CHILDRENxDEPTH, e.g. 8x2")
            }
            guard childrenRange.contains(c), depthRange.contains(d) else {
                throw ListParseError(message: "bad tree '\(part)' in --\(option): children must be \(childrenRange.lowerBound)...\(childrenRange.upperBound), depth \(depthRange.lowerBound)...\(depthRange.upperBound)")
            }
            // Bound the size before computing it (4096^12 overflows).
            var total = 1, level = 1
            for _ in 0..<d {
                level = level.multipliedReportingOverflow(by: c).partialValue
                total += level
                if level > mmsLimit || total > mmsLimit { break }
            }
            guard total <= mmsLimit else {
                throw ListParseError(message: "tree '\(part)' in --\(option) has more than \(mmsLimit) processes")
            }
            let t = TreeShape(children: c, depth: d)
            guard !out.contains(t) else { throw ListParseError(message: "tree '\(part)' appears twice in --\(option)") }
            out.append(t)
        }
        return out
    }
}

/// What `stress schemes` measures.
public struct SchemeConfig: Sendable {
    /// Every scheme, oldest design last (2004's anongroup first, then the
    /// anon_vma line, pte_chains that they replaced, and the 2026 proposal).
    public var schemes: [SchemeKind] = SchemeKind.allCases
    public var threads: [Int] = [1, 2]
    public var syncs: [ListSync] = [.rcu, .rwlock, .mutex]
    public var repeats = 3
    public var seed: UInt64 = 1
    /// Settings of the throughput runs but scheme, threads, sync and seed.
    public var base: RunSettings = SchemeConfig.defaultBase
    /// Run the throughput child runs (off: benchmarks only).
    public var runs = true
    public var trees: [TreeShape] = [TreeShape(children: 1, depth: 1), TreeShape(children: 4, depth: 1),
                                     TreeShape(children: 2, depth: 3), TreeShape(children: 8, depth: 2),
                                     TreeShape(children: 1000, depth: 1)]
    public var vmas: [Int] = [1, 2, 4, 8, 16]
    /// Written pages per VMA in the fork+exit benchmark: with 1 the
    /// per-VMA rmap work shows, with more the page copying adds to it.
    public var forkVMAPages: [Int] = [1, 16]
    public var mremapPages: [Int] = [4, 16, 64, 256]
    public var sharedPercents: [Int] = [0, 50, 100]
    public var swapPages = 64
    /// Scales every benchmark's iteration count (tests use a small one).
    public var work = 1.0
    /// Always-on checks in the benchmark machines (audits and the leak
    /// check always run).
    public var benchChecks: CheckLevel = .off
    /// AIM7, the fork chain, the zygote and fork-heavy throughput.
    public var historic = HistoricConfig()
    /// The file workloads (FileWorkloads.swift).
    public var file = FileBenchConfig()

    public init() {}

    /// The scale sweep's measuring settings, with short runs.
    public static var defaultBase: RunSettings {
        var b = ScaleConfig.defaultBase
        b.durationS = 2
        b.warmupS = 0.5
        return b
    }

    public static let vmaPagesRange = 1...512
    public static let workRange = 0.0001...100.0

    public func validate() -> String? {
        if schemes.isEmpty || threads.isEmpty || syncs.isEmpty { return "scheme, threads and sync lists must not be empty" }
        if repeats < 1 || repeats > 100 { return "repeat must be 1...100 (got \(repeats))" }
        var o = base
        o.threads = threads.max() ?? 1
        if let p = o.validate() { return p }
        if trees.isEmpty && vmas.isEmpty && mremapPages.isEmpty { return "nothing to benchmark" }
        for t in trees where t.mms > TreeShape.mmsLimit { return "tree \(t) has more than \(TreeShape.mmsLimit) processes" }
        for v in vmas where v < 1 || v > MachineConfig.maxVMAs { return "VMAs per process must be 1...\(MachineConfig.maxVMAs) (got \(v))" }
        for p in mremapPages + forkVMAPages where !SchemeConfig.isVMASize(p) {
            return "VMA sizes must be divisors of 512: 1, 2, 4, ... 512 (got \(p))"
        }
        if sharedPercents.isEmpty && !mremapPages.isEmpty { return "shared percentages must not be empty" }
        for s in sharedPercents where s < 0 || s > 100 { return "shared percentages must be 0...100 (got \(s))" }
        if swapPages < 1 || swapPages > 512 { return "swap pages must be 1...512 (got \(swapPages))" }
        if let p = historic.validate() { return p }
        if let p = file.validate() { return p }
        if !work.isFinite || !SchemeConfig.workRange.contains(work) { return "work must be \(SchemeConfig.workRange.lowerBound)...\(SchemeConfig.workRange.upperBound) (got \(work))" }
        return nil
    }

    public static func isVMASize(_ p: Int) -> Bool { vmaPagesRange.contains(p) && 512 % p == 0 }

    /// Scheme order of repeat `r`: alternated, so neither is always first.
    func schemeOrder(_ r: Int) -> [SchemeKind] { r % 2 == 0 ? schemes : schemes.reversed() }
}

// MARK: Records

/// One walk measurement: one page of one fork tree on one scheme.
public struct TreeWalkRun: Codable, Sendable, Equatable {
    public var scheme: String
    public var tree: String
    public var children: Int
    public var depth: Int
    public var exec: Bool
    /// shared (the root's page, mapped by every sharer), private-cow (the
    /// deepest sharer's copy of a page of a VMA that had pages before
    /// fork), private-fresh (its first touch of a VMA untouched before fork).
    public var page: String
    public var repeatIndex: Int
    public var mms: Int
    public var sharers: Int
    public var execed: Int
    public var nsPerWalk: Double
    public var visited: Int
    public var found: Int
    public var wasted: Int
    public var walks: Int
    /// rmap contexts, VMAs and mms live with the tree built.
    public var contexts: Int
    public var vmas: Int
    public var liveMMs: Int
    /// The scheme's live rmap bytes with the tree built (absent in results
    /// written before it was recorded).
    public var metadataBytes: Int?
    public var verdict: String
    public var nsPerVisit: Double { visited > 0 ? nsPerWalk / Double(visited) : .nan }
}

public struct ForkExitRun: Codable, Sendable, Equatable {
    public var scheme: String
    public var vmas: Int
    public var pagesPerVMA: Int
    public var repeatIndex: Int
    public var iterations: Int
    public var nsPerForkExit: Double
    public var verdict: String
}

public struct MremapRun: Codable, Sendable, Equatable {
    public var scheme: String
    public var pages: Int
    public var sharedPercent: Int
    public var repeatIndex: Int
    public var calls: Int
    public var nsPerMremap: Double
    public var copiedPerCall: Double
    public var reindexedPerCall: Double
    public var keptPerCall: Double
    public var verdict: String
}

public struct SwapRun: Codable, Sendable, Equatable {
    public var scheme: String
    public var afterMremap: Bool
    public var repeatIndex: Int
    public var pages: Int
    public var swappedOut: Int
    /// Swap-ins of both processes: cache hits (no copy), copies, slot reads.
    public var hits: Int
    public var copies: Int
    public var reads: Int
    public var framesAfter: Int
    public var nsPerFault: Double
    public var verdict: String
    /// Copies the swap cache avoided: without it every swap-in needs a frame.
    public var copiesAvoided: Int { hits }
}

public struct MetadataRow: Codable, Sendable, Equatable {
    public var scheme: String
    public var bytesPerVMA: Int
    public var bytesPerMM: Int
    /// A process as `stress run` starts it (vmas-per-process VMAs).
    public var defaultProcessVMAs: Int
    public var bytesPerDefaultProcess: Int
    /// The largest fork tree measured: its live VMAs, mms and rmap
    /// contexts, and the scheme's live rmap bytes.
    public var tree: String?
    public var treeVMAs: Int?
    public var treeMMs: Int?
    public var treeContexts: Int?
    public var treeBytes: Int?
}

/// Per-scheme figures of the default stress mix, from the throughput runs.
public struct MixFigures: Codable, Sendable, Equatable {
    public var scheme: String
    public var runs: Int
    /// Medians over runs of each run's mean family size (mms related by
    /// fork without exec), and the largest family seen in any sample.
    public var meanFamilySize: Double
    public var maxFamilySize: Int
    public var familySizeLimit: Int
    public var visitedPerWalk: Double
    public var wastedPerWalk: Double
    public var mremapCalls: UInt64
    /// Pages mremap copied (anongroup: shared), re-indexed (exclusive),
    /// moved untouched (anon_vma), and swap entries moved, over all runs.
    public var mremapCopied: UInt64
    public var mremapReindexed: UInt64
    public var mremapKept: UInt64
    public var mremapSwapMoved: UInt64
    public var swapCacheHits: UInt64
    public var swapCacheCopies: UInt64
    public var swapReads: UInt64
    public var copiesPerMremap: Double { mremapCalls > 0 ? Double(mremapCopied) / Double(mremapCalls) : 0 }
    /// Of the present pages mremap met, the share still shared (copied).
    public var sharedPageFraction: Double {
        let n = mremapCopied + mremapReindexed
        return n > 0 ? Double(mremapCopied) / Double(n) : 0
    }
}

/// Throughput and latency of one (scheme, sync, threads) point, medians over repeats.
public struct ThroughputPoint: Codable, Sendable, Equatable {
    public var scheme: String
    public var sync: String
    public var threads: Int
    public var repeats: Int
    public var opsPerS: Spread
    /// Per operation kind: median over repeats of each run's p50 and p99 (ns).
    public var p50Ns: [String: Double]
    public var p99Ns: [String: Double]
    public var perOpS: [String: Double]
}

public struct ClaimRow: Codable, Sendable, Equatable {
    public var who: String
    public var claim: String
    public var figure: String
    public var workload: String
    /// supports, refutes or partly, computed from this comparison's
    /// figures by the rule in `why`; or "by construction" where the figure
    /// follows from the model's layout and no run could change it.
    public var verdict: String
    public var why: String
}

public struct SchemeMeta: Codable, Sendable {
    public var tool = "concurrent-rmap-stress"
    public var version = StressVersion.version
    public var gitCommit = StressVersion.gitCommit
    public var gitDirty = StressVersion.gitDirty
    public var arguments: [String]
    public var seed: UInt64
    public var cpuModel = HostInfo.cpuModel
    public var cpuCount = HostInfo.cpuCount
    public var kernel = HostInfo.kernel
    public var date = ISO8601DateFormatter().string(from: Date())
    public var buildConfiguration = HostInfo.buildConfiguration
    /// /proc/loadavg when the comparison started (other work on the machine).
    public var loadAverage: String
    public var measuredParallelism: Double?
    public var repeats: Int
    public var schemes: [String]
    public var threads: [Int]
    public var sync: [String]
    public var settings: RunSettings
    public var trees: [String]
    public var vmas: [Int]
    public var forkVMAPages: [Int]
    public var mremapPages: [Int]
    public var sharedPercents: [Int]
    public var swapPages: Int
    public var work: Double
    public var benchChecks: String
    public var wallS: Double = 0
    /// Throughput runs planned (the report says how many it holds).
    public var plannedRuns: Int?

    public init(arguments: [String], config c: SchemeConfig) {
        self.arguments = arguments
        plannedRuns = c.runs ? c.repeats * c.schemes.count * c.threads.count * c.syncs.count : 0
        seed = c.seed
        loadAverage = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))
            .map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "unknown"
        repeats = c.repeats
        schemes = c.schemes.map(\.rawValue)
        threads = c.threads
        sync = c.syncs.map(\.rawValue)
        settings = c.base
        trees = c.trees.map(\.description)
        vmas = c.vmas
        forkVMAPages = c.forkVMAPages
        mremapPages = c.mremapPages
        sharedPercents = c.sharedPercents
        swapPages = c.swapPages
        work = c.work
        benchChecks = c.benchChecks.rawValue
    }
}

/// Everything `stress schemes` measured (schemes.json).
public struct SchemeComparison: Codable, Sendable {
    public var meta: SchemeMeta
    public var runs: [ScaleRun] = []
    public var lost: [String] = []
    public var throughput: [ThroughputPoint] = []
    public var mix: [MixFigures] = []
    public var walks: [TreeWalkRun] = []
    public var forkExit: [ForkExitRun] = []
    public var mremap: [MremapRun] = []
    public var swap: [SwapRun] = []
    public var metadata: [MetadataRow] = []
    public var claims: [ClaimRow] = []
    /// The historic workloads (HistoricWorkloads.swift).
    public var aim7: [AIM7Run] = []
    public var forkChain: [ForkChainRun] = []
    public var zygote: [ZygoteRun] = []
    public var forkHeavyRuns: [ScaleRun] = []
    public var forkHeavy: [ThroughputPoint] = []
    /// The file workloads (FileWorkloads.swift).
    public var fileWalks: [FileWalkRun] = []
    /// Signal that stopped the comparison, 0 if none.
    public var interrupted: Int32 = 0

    public init(meta: SchemeMeta) { self.meta = meta }

    /// Runs and benchmarks that did not end SUCCESS, and lost runs.
    public var failures: Int {
        runs.filter { $0.result.verdict != Verdict.success }.count + lost.count
            + walks.filter { $0.verdict != Verdict.success }.count + forkExit.filter { $0.verdict != Verdict.success }.count
            + mremap.filter { $0.verdict != Verdict.success }.count + swap.filter { $0.verdict != Verdict.success }.count
            + aim7.filter { $0.verdict != Verdict.success }.count + forkChain.filter { $0.verdict != Verdict.success }.count
            + zygote.filter { $0.verdict != Verdict.success }.count
            + forkHeavyRuns.filter { $0.result.verdict != Verdict.success }.count
            + fileWalks.filter { $0.verdict != Verdict.success }.count
    }
}

// MARK: Running it

public enum SchemeCompare {
    /// Runs everything: the throughput runs (child processes, each repeat
    /// alternating the scheme order), then the benchmarks (in this process,
    /// a fresh machine per point, schemes alternated per repeat), then the
    /// summaries and the claims.
    public static func run(_ c: SchemeConfig, arguments: [String], executable: URL = ChildProcess.selfExecutable,
                           progress: ((String) -> Void)? = nil) throws -> SchemeComparison {
        let t0 = Date()
        var out = SchemeComparison(meta: SchemeMeta(arguments: arguments, config: c))
        if c.runs {
            out.meta.measuredParallelism = HostInfo.measuredParallelism()
            loop: for r in 0..<c.repeats {
                for scheme in c.schemeOrder(r) {
                    var sc = ScaleConfig()
                    sc.threads = c.threads
                    sc.syncs = c.syncs
                    sc.repeats = 1
                    sc.ceiling = false
                    sc.seed = c.seed &+ UInt64(r)
                    sc.base = c.base
                    sc.base.scheme = scheme
                    let sweep = ScaleSweep.run(sc, executable: executable) { progress?("\(scheme.rawValue) repeat \(r): \($0)") }
                    out.runs += sweep.runs.map { var x = $0; x.repeatIndex = r; return x }
                    out.lost += sweep.lost.map { "\(scheme.rawValue) repeat \(r): \($0)" }
                    if sweep.interrupted != 0 { out.interrupted = sweep.interrupted; break loop }
                    if sweep.runs.contains(where: { $0.result.verdict == Verdict.stall }) { break loop }
                }
            }
        }
        if c.runs && out.interrupted == 0 {
            try HistoricCompare.forkHeavyRuns(c, executable: executable, into: &out, progress: progress)
        }
        if out.interrupted == 0 {
            try benchmarks(c, into: &out, progress: progress)
            try HistoricCompare.benchmarks(c, into: &out, progress: progress)
            try FileCompare.benchmarks(c, into: &out, progress: progress)
        }
        summarize(&out, c)
        out.meta.wallS = Date().timeIntervalSince(t0)
        return out
    }

    /// A fresh bench machine: runs `body` on a registered thread with a
    /// CPU, then tears down; ok when no violation and no leak.
    static func onMachine<T>(_ mc: MachineConfig, seed: UInt64, _ body: (Machine, CPU) -> T) throws -> (T, ok: Bool) {
        guard RCU.select(.memb) else { throw Machine.ConfigError.invalid("cannot switch RCU flavor while threads are registered") }
        let m = try Machine(config: mc)
        return RCU.withRegisteredThread {
            let cpu = m.makeCPU(id: 0, seed: seed)
            let r = body(m, cpu)
            m.releaseCPU(cpu)
            let closer = m.makeCPU(id: 1, seed: seed)
            let leaks = m.teardown(cpu: closer)
            m.releaseCPU(closer)
            return (r, leaks.isEmpty && m.violationCount == 0)
        }
    }

    static func benchConfig(_ scheme: SchemeKind, _ c: SchemeConfig, processes: Int, vmaPages: Int, vmasPerProcess: Int,
                            frames: Int = 4096, swapSlots: Int = 256) -> MachineConfig {
        var m = MachineConfig()
        m.scheme = scheme
        m.frames = frames
        m.swapSlots = swapSlots
        m.maxProcesses = processes
        m.vmaPages = vmaPages
        m.vmasPerProcess = vmasPerProcess
        m.checks = c.benchChecks
        m.sync = .rcu
        m.expectedCPUs = 1
        return m
    }

    static func verdict(_ ok: Bool) -> String { ok ? Verdict.success : Verdict.failure }

    static func benchmarks(_ c: SchemeConfig, into out: inout SchemeComparison, progress: ((String) -> Void)?) throws {
        let walkVisits = max(64, Int(400_000 * c.work))
        for r in 0..<c.repeats {
            let seed = c.seed &+ UInt64(r)
            for scheme in c.schemeOrder(r) {
                let s = scheme.rawValue
                // (2) walks over fork trees
                for t in c.trees {
                    for exec in [false, true] {
                        let mc = benchConfig(scheme, c, processes: t.mms + 4, vmaPages: 16, vmasPerProcess: 2)
                        let (tree, ok) = try onMachine(mc, seed: seed) { m, cpu in
                            m.benchForkTree(children: t.children, depth: t.depth, exec: exec, walkVisits: walkVisits, cpu: cpu)
                        }
                        guard let tree else {
                            out.lost.append("\(s) tree \(t)\(exec ? " with exec" : ""): the bench machine could not build it")
                            continue
                        }
                        for (page, w) in [("shared", tree.shared), ("private-cow", tree.privateCOW), ("private-fresh", tree.privateFresh)] {
                            out.walks.append(TreeWalkRun(scheme: s, tree: t.description, children: t.children, depth: t.depth, exec: exec,
                                                         page: page, repeatIndex: r, mms: tree.mms, sharers: tree.sharers, execed: tree.execed,
                                                         nsPerWalk: w.nsPerWalk, visited: w.visited, found: w.found, wasted: w.wasted,
                                                         walks: w.walks, contexts: tree.contexts, vmas: tree.vmas, liveMMs: tree.liveMMs,
                                                         metadataBytes: tree.metadataBytes,
                                                         verdict: verdict(ok && w.found == w.mapcount)))
                        }
                        progress?(String(format: "walk   %@ %-7@ %@ repeat=%d  shared %8.0f ns/walk (%d visited)  private-fresh %8.0f ns (%d visited, %d wasted)  %@",
                                         s, t.description, exec ? "exec   " : "no-exec", r, tree.shared.nsPerWalk, tree.shared.visited,
                                         tree.privateFresh.nsPerWalk, tree.privateFresh.visited, tree.privateFresh.wasted, verdict(ok)))
                    }
                }
                // (3) fork+exit against VMAs per process
                for pages in c.forkVMAPages {
                    for n in c.vmas {
                        let iters = max(5, Int(4000 * c.work / Double(max(1, n * pages / 64))))
                        let mc = benchConfig(scheme, c, processes: 8, vmaPages: pages, vmasPerProcess: 1)
                        let (res, ok) = try onMachine(mc, seed: seed) { m, cpu in m.benchForkExitVMAs(vmas: n, iterations: iters, cpu: cpu) }
                        guard let res else { out.lost.append("\(s) fork+exit with \(n) VMAs of \(pages) pages: the bench machine failed"); continue }
                        let run = ForkExitRun(scheme: s, vmas: n, pagesPerVMA: pages, repeatIndex: r, iterations: res.count,
                                              nsPerForkExit: Double(res.ns) / Double(res.count), verdict: verdict(ok))
                        out.forkExit.append(run)
                        progress?(String(format: "fork   %@ vmas=%-3d pages/vma=%-3d repeat=%d %10.0f ns per fork+exit  %@",
                                         s, n, pages, r, run.nsPerForkExit, run.verdict))
                    }
                }
                // (4) mremap against VMA size and pages still shared
                for p in c.mremapPages {
                    for sh in c.sharedPercents {
                        let iters = max(5, Int(40_000 * c.work / Double(p)))
                        let mc = benchConfig(scheme, c, processes: 8, vmaPages: p, vmasPerProcess: 1, frames: max(4096, p * 8))
                        let (res, ok) = try onMachine(mc, seed: seed) { m, cpu in m.benchMremapShared(sharedPercent: sh, iterations: iters, cpu: cpu) }
                        guard let res else { out.lost.append("\(s) mremap of \(p) pages, \(sh)% shared: the bench machine failed"); continue }
                        let n = Double(res.calls)
                        let run = MremapRun(scheme: s, pages: p, sharedPercent: sh, repeatIndex: r, calls: res.calls,
                                            nsPerMremap: Double(res.ns) / n, copiedPerCall: Double(res.copied) / n,
                                            reindexedPerCall: Double(res.reindexed) / n, keptPerCall: Double(res.kept) / n, verdict: verdict(ok))
                        out.mremap.append(run)
                        progress?(String(format: "mremap %@ pages=%-4d shared=%3d%% repeat=%d %10.0f ns  %.1f copied/call  %@",
                                         s, p, sh, r, run.nsPerMremap, run.copiedPerCall, run.verdict))
                    }
                }
                // (5) swap-in from a sharer
                for afterMremap in [false, true] {
                    let mc = benchConfig(scheme, c, processes: 8, vmaPages: 512, vmasPerProcess: 1, swapSlots: 4096)
                    let (res, ok) = try onMachine(mc, seed: seed) { m, cpu in m.benchSwapShared(pages: c.swapPages, mremapChild: afterMremap, cpu: cpu) }
                    guard let res else { out.lost.append("\(s) swap-in\(afterMremap ? " after mremap" : ""): the bench machine failed"); continue }
                    let run = SwapRun(scheme: s, afterMremap: afterMremap, repeatIndex: r, pages: res.pages, swappedOut: res.swappedOut,
                                      hits: res.hits, copies: res.copies, reads: res.reads, framesAfter: res.framesAfter,
                                      nsPerFault: Double(res.faultNs) / Double(2 * res.pages),
                                      verdict: verdict(ok && res.swappedOut == res.pages))
                    out.swap.append(run)
                    progress?("swap   \(s)\(afterMremap ? " after mremap" : "") repeat=\(r): \(run.hits) cache hits, \(run.copies) copies, \(run.reads) reads, \(run.framesAfter) frames for \(run.pages) shared pages  \(run.verdict)")
                }
            }
        }
        // (6) metadata bytes (static per scheme) and the largest tree's live counts
        for scheme in c.schemes {
            let mc = benchConfig(scheme, c, processes: 8, vmaPages: 16, vmasPerProcess: c.base.vmasPerProcess)
            let (bytes, _) = try onMachine(mc, seed: c.seed) { m, _ in m.rmapMetadataBytes }
            var row = MetadataRow(scheme: scheme.rawValue, bytesPerVMA: bytes.perVMA, bytesPerMM: bytes.perMM,
                                  defaultProcessVMAs: c.base.vmasPerProcess,
                                  bytesPerDefaultProcess: bytes.perVMA * c.base.vmasPerProcess + bytes.perMM)
            if let big = out.walks.filter({ $0.scheme == scheme.rawValue && !$0.exec }).max(by: { $0.mms < $1.mms }) {
                row.tree = big.tree
                row.treeVMAs = big.vmas
                row.treeMMs = big.liveMMs
                row.treeContexts = big.contexts
                // Live bytes as the scheme counts them (pte-chains' blocks grow
                // with mapped pages, not VMAs); the static formula for results
                // recorded before them.
                row.treeBytes = big.metadataBytes ?? (bytes.perVMA * big.vmas + bytes.perMM * big.liveMMs)
            }
            out.metadata.append(row)
        }
    }

    // MARK: Summaries

    static func median(_ v: [Double]) -> Double { v.isEmpty ? .nan : Spread(v).median }

    static func summarize(_ out: inout SchemeComparison, _ c: SchemeConfig) {
        out.throughput = points(out.runs, c, syncs: c.syncs)
        out.forkHeavy = points(out.forkHeavyRuns, c, syncs: c.historic.forkHeavySyncs)
        out.mix = c.schemes.compactMap { scheme in
            let rs = out.runs.filter { $0.result.settings.scheme == scheme }.map(\.result)
            guard !rs.isEmpty else { return nil }
            func sum(_ e: Event) -> UInt64 { rs.reduce(0) { $0 + $1.event(e) } }
            let fam = rs.map { r in r.samples.isEmpty ? 0 : r.samples.map(\.meanFamilySize).reduce(0, +) / Double(r.samples.count) }
            return MixFigures(scheme: scheme.rawValue, runs: rs.count, meanFamilySize: median(fam),
                              maxFamilySize: rs.flatMap(\.samples).map(\.maxFamilySize).max() ?? 0,
                              familySizeLimit: c.base.familySize,
                              visitedPerWalk: median(rs.map(\.walks.visitedPerWalk)), wastedPerWalk: median(rs.map(\.walks.wastedPerWalk)),
                              mremapCalls: rs.reduce(0) { $0 + ($1.ops["mremap"]?.completed ?? 0) },
                              mremapCopied: sum(.mremapCopy), mremapReindexed: sum(.mremapMove), mremapKept: sum(.mremapKeep),
                              mremapSwapMoved: sum(.mremapSwapMove), swapCacheHits: sum(.swapCacheHit),
                              swapCacheCopies: sum(.swapCacheCopy), swapReads: sum(.swapIn))
        }
        out.claims = SchemeClaims.judge(out) + HistoricClaims.judge(out)
    }

    /// Medians over repeats per (scheme, sync, threads).
    static func points(_ runs: [ScaleRun], _ c: SchemeConfig, syncs: [ListSync]) -> [ThroughputPoint] {
        var out: [ThroughputPoint] = []
        for scheme in c.schemes {
            for sync in syncs {
                for th in c.threads {
                    let rs = runs.filter { $0.result.settings.scheme == scheme && $0.sync == sync.rawValue && $0.threads == th }
                    guard !rs.isEmpty else { continue }
                    var p50: [String: Double] = [:], p99: [String: Double] = [:], per: [String: Double] = [:]
                    for op in ScaleReport.opOrder {
                        let timed = rs.compactMap { $0.result.ops[op] }.filter { $0.timed > 0 }
                        if !timed.isEmpty {
                            p50[op] = median(timed.map { Double($0.p50Ns) })
                            p99[op] = median(timed.map { Double($0.p99Ns) })
                        }
                        per[op] = median(rs.map { $0.result.ops[op]?.perS ?? 0 })
                    }
                    out.append(ThroughputPoint(scheme: scheme.rawValue, sync: sync.rawValue, threads: th, repeats: rs.count,
                                                          opsPerS: Spread(rs.map { $0.result.opsPerS }), p50Ns: p50, p99Ns: p99, perOpS: per))
                }
            }
        }
        return out
    }

    /// Median over repeats of a walk figure.
    public static func walkMedian(_ w: [TreeWalkRun], scheme: String, tree: String, exec: Bool, page: String) -> (ns: Double, visited: Int, wasted: Int, sharers: Int, mms: Int)? {
        let v = w.filter { $0.scheme == scheme && $0.tree == tree && $0.exec == exec && $0.page == page }
        guard let first = v.first else { return nil }
        return (median(v.map(\.nsPerWalk)), first.visited, first.wasted, first.sharers, first.mms)
    }
}

// MARK: The 2004 claims

public enum SchemeClaims {
    static let g = SchemeKind.anongroup.rawValue
    static let a = SchemeKind.anonVma.rawValue

    static func pct(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
    static func ns(_ x: Double) -> String {
        x >= 10_000 ? String(format: "%.1f µs", x / 1000) : String(format: "%.0f ns", x)
    }

    /// Each claim with the figure of this comparison that bears on it. The
    /// verdict follows from the figures by the rule stated in `why`.
    public static func judge(_ o: SchemeComparison) -> [ClaimRow] {
        var rows: [ClaimRow] = []
        let mixG = o.mix.first { $0.scheme == g }
        let mdG = o.metadata.first { $0.scheme == g }, mdA = o.metadata.first { $0.scheme == a }
        let mixLabel = "default stress mix (\(o.meta.settings.mix)), family-size limit \(o.meta.settings.familySize), locality \(o.meta.settings.locality)"

        // Linus: groups are small, one address per mm.
        if let m = mixG, let md = mdG {
            // The walk's visits are what a large group costs; the family
            // size is how large groups got.
            let largest = max(m.meanFamilySize, m.visitedPerWalk)
            let verdict = largest <= 4 ? "supports" : (largest <= 16 ? "partly" : "refutes")
            rows.append(ClaimRow(
                who: "Linus Torvalds (the seed)",
                claim: "In most cases an anongroup is very small, and even a large one costs only one address per mm.",
                figure: String(format: "mean group (fork family) size %.2f mms, largest seen %d (the mix execs any fork past %d); rmap walks visited %.2f mms each; anongroup adds %d B per mm and %d B per VMA",
                               m.meanFamilySize, m.maxFamilySize, m.familySizeLimit, m.visitedPerWalk, md.bytesPerMM, md.bytesPerVMA),
                workload: "throughput runs, \(mixLabel), samples each second; RmapScheme.metadataBytes",
                verdict: verdict,
                why: "rule: the larger of the mean group size and the mms visited per walk: at most 4 supports, at most 16 partly, else refutes (measured: \(String(format: "%.2f", largest))); the per-mm cost is a fixed link, but this mix forks without exec up to its family-size limit, so the sizes say more about the mix than about real programs"))
        }
        // Linus: the extra COW in mremap is benign.
        if let m = mixG {
            let f = m.sharedPageFraction
            let verdict = f < 0.05 ? "supports" : (f < 0.25 ? "partly" : "refutes")
            rows.append(ClaimRow(
                who: "Linus Torvalds",
                claim: "The extra COW in mremap is benign and should usually not trigger.",
                figure: String(format: "%.2f pages copied per mremap (%@ of the present pages mremap moved were still shared and copied; %llu copied, %llu re-indexed over %llu mremaps)",
                               m.copiesPerMremap, pct(f), m.mremapCopied, m.mremapReindexed, m.mremapCalls),
                workload: "anongroup throughput runs, \(mixLabel); events mremap_copy and mremap_move",
                verdict: verdict,
                why: "rule: under 5% of moved pages copied supports, under 25% partly, else refutes; this mix forks without exec and mremaps often, so it says more about the mix than about real programs"))
        }
        // Andrea: scanning all mms is the only complexity issue.
        let trees = Set(o.walks.map(\.tree))
        if let big = o.walks.filter({ !$0.exec }).max(by: { $0.mms < $1.mms })?.tree, trees.contains(big),
           let gs = SchemeCompare.walkMedian(o.walks, scheme: g, tree: big, exec: false, page: "shared"),
           let asw = SchemeCompare.walkMedian(o.walks, scheme: a, tree: big, exec: false, page: "shared"),
           let gf = SchemeCompare.walkMedian(o.walks, scheme: g, tree: big, exec: false, page: "private-fresh"),
           let af = SchemeCompare.walkMedian(o.walks, scheme: a, tree: big, exec: false, page: "private-fresh"),
           let gc = SchemeCompare.walkMedian(o.walks, scheme: g, tree: big, exec: false, page: "private-cow"),
           let ac = SchemeCompare.walkMedian(o.walks, scheme: a, tree: big, exec: false, page: "private-cow") {
            let fe = forkExitSlope(o)
            // The scan is an issue when anongroup visits more for one mm's
            // COW copy than anon_vma does; it is not the only one when
            // mremap after fork made anongroup copy pages.
            let scanIssue = gc.visited > ac.visited || gc.wasted > ac.wasted
            let copied = o.mremap.filter { $0.scheme == g }.map(\.copiedPerCall).max() ?? 0
            let otherIssue = copied > 0 || (mixG?.mremapCopied ?? 0) > 0
            let verdict = !scanIssue ? "refutes" : (otherIssue ? "partly" : "supports")
            rows.append(ClaimRow(
                who: "Andrea Arcangeli",
                claim: "Scanning all mms of a group is the only complexity issue of anongroup.",
                figure: "tree \(big) (\(gs.mms) mms): page shared by all: anongroup \(ns(gs.ns))/walk, anon_vma \(ns(asw.ns))/walk (\(gs.visited) vs \(asw.visited) visited); one mm's COW copy: \(gc.visited) vs \(ac.visited) visited (\(gc.wasted) vs \(ac.wasted) wasted); one mm's page in a VMA untouched before fork: \(ns(gf.ns)) vs \(ns(af.ns)) (\(gf.visited) vs \(af.visited) visited)"
                    + (fe.map { String(format: "; fork+exit (1-page VMAs) costs anon_vma %+.0f ns per extra VMA vs anongroup %+.0f", $0.a, $0.g) } ?? ""),
                workload: "fork-tree walk benchmark (one thread, page locked, each ptl taken); fork+exit against VMAs",
                verdict: verdict,
                why: "rule: the scan is an issue if anongroup visits or wastes more than anon_vma for one mm's COW copy (\(gc.visited)/\(gc.wasted) vs \(ac.visited)/\(ac.wasted) visited/wasted); it is not the only one if anongroup copied pages on mremap after fork (up to \(String(format: "%.0f", copied)) per call in the mremap benchmark, \(mixG?.mremapCopied ?? 0) in the mix). Issue and no copies: supports; issue and copies: partly; no issue: refutes"))
        }
        // Hugh: 24 bytes per VMA.
        if let mg = mdG, let ma = mdA {
            let extra = ma.bytesPerVMA - mg.bytesPerVMA
            // Measured: the live rmap bytes of the largest fork tree, per
            // live VMA (anongroup pays per mm, anon_vma per VMA). Without a
            // tree the figure is the layout's, by construction.
            var measured: Double?
            if let bg = mg.treeBytes, let ba = ma.treeBytes, let v = ma.treeVMAs, v > 0 {
                measured = Double(ba - bg) / Double(v)
            }
            let verdict = measured.map { $0 >= 12 && $0 <= 48 ? "supports" : ($0 > 0 ? "partly" : "refutes") } ?? "by construction"
            rows.append(ClaimRow(
                who: "Hugh Dickins",
                claim: "anon_vma costs about 24 bytes more per VMA.",
                figure: "anon_vma +\(extra) B per VMA, anongroup +\(mg.bytesPerMM - ma.bytesPerMM) B per mm (this model's 4-byte handles: anon_vma pointer + list next/prev, 3 fields = 24 B with 8-byte pointers); a default process (\(ma.defaultProcessVMAs) VMAs): \(mg.bytesPerDefaultProcess) B vs \(ma.bytesPerDefaultProcess) B"
                    + ((mg.treeBytes != nil && ma.treeBytes != nil) ? "; tree \(ma.tree ?? ""): \(mg.treeBytes!) B vs \(ma.treeBytes!) B (\(ma.treeVMAs ?? 0) VMAs, \(ma.treeContexts ?? 0) anon_vmas vs \(mg.treeContexts ?? 0) anongroups)" : ""),
                workload: "RmapScheme.metadataBytes; live counts of the largest fork tree",
                verdict: verdict,
                why: measured.map { String(format: "rule: the live rmap bytes of the largest tree, anon_vma minus anongroup, per live VMA (measured %.1f B): 12-48 B is about 24 and supports, more than 0 partly, else refutes", $0) }
                    ?? "no fork tree was measured, so the figure is the layout's (+\(extra) B per VMA: anon_vma pointer and list links), the same in every run"))
        }
        // Andrea: anongroup must copy on mremap after fork.
        let full = o.mremap.filter { $0.sharedPercent == 100 }
        if let p = full.map(\.pages).max(),
           let gr = full.first(where: { $0.scheme == g && $0.pages == p }), let ar = full.first(where: { $0.scheme == a && $0.pages == p }) {
            let gNs = SchemeCompare.median(full.filter { $0.scheme == g && $0.pages == p }.map(\.nsPerMremap))
            let aNs = SchemeCompare.median(full.filter { $0.scheme == a && $0.pages == p }.map(\.nsPerMremap))
            rows.append(ClaimRow(
                who: "Andrea Arcangeli",
                claim: "anongroup must copy pages on mremap after fork.",
                figure: String(format: "mremap of a %d-page VMA all shared with a child: anongroup copies %.0f pages per call (%@), anon_vma copies %.0f (%@), %.1f× faster",
                               p, gr.copiedPerCall, ns(gNs), ar.copiedPerCall, ns(aNs), gNs / aNs),
                workload: "mremap benchmark (fresh child per call, share of pages still shared 0/50/100%)",
                verdict: gr.copiedPerCall > 0 && ar.copiedPerCall == 0 ? "supports" : "refutes",
                why: "anongroup copies exactly the pages still shared; anon_vma moves the VMA and touches no page"))
        }
        // wli: mremap of shared anonymous memory is rare.
        if let m = mixG {
            let f = m.sharedPageFraction
            let verdict = f < 0.05 ? "supports" : (f < 0.25 ? "partly" : "refutes")
            rows.append(ClaimRow(
                who: "William Lee Irwin III",
                claim: "mremap of shared anonymous memory is rare.",
                figure: String(format: "%@ of the present pages the mix's mremaps moved were shared (%.2f shared pages per mremap call; counted per page, the model counts no per-call event)",
                               pct(f), m.copiesPerMremap),
                workload: "anongroup throughput runs, \(mixLabel)",
                verdict: verdict,
                why: "rule: under 5% supports, under 25% partly, else refutes; the stress mix forks without exec and mremaps any VMA, which is not what real programs do, so it cannot confirm rarity in real workloads"))
        }
        return rows
    }

    /// ns per extra VMA of fork+exit (least squares over the VMA counts),
    /// per scheme, for VMAs of `pages` pages (default: the fewest measured).
    public static func forkExitSlope(_ o: SchemeComparison, pages: Int? = nil) -> (g: Double, a: Double)? {
        guard let pages = pages ?? o.forkExit.map(\.pagesPerVMA).min() else { return nil }
        func slope(_ s: String) -> Double? {
            let f = o.forkExit.filter { $0.scheme == s && $0.pagesPerVMA == pages }
            let vs = Set(f.map(\.vmas)).sorted()
            guard vs.count >= 2 else { return nil }
            let pts = vs.map { v in (Double(v), SchemeCompare.median(f.filter { $0.vmas == v }.map(\.nsPerForkExit))) }
            let mx = pts.map(\.0).reduce(0, +) / Double(pts.count), my = pts.map(\.1).reduce(0, +) / Double(pts.count)
            let num = pts.reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }, den = pts.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) }
            return den > 0 ? num / den : nil
        }
        guard let x = slope(g), let y = slope(a) else { return nil }
        return (x, y)
    }
}
