import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport

/// The workloads the rmap designs were argued over (AIM7, the fork chain,
/// the zygote, fork-heavy throughput), as sections of `stress schemes`.
/// The single-thread hooks are in the model (`Bench/HistoricWorkloads.swift`).
public struct HistoricConfig: Sendable, Equatable {
    /// AIM7: children of the one parent (each point a fresh machine).
    public var aim7Children: [Int] = [10, 100, 1000]
    public var aim7Pages = 16
    /// Share of the inherited range each child writes ("most of it").
    public var aim7CowPercent = 75
    /// The fork chain: generations, sampled every `chainSampleEvery`.
    public var chainGenerations = 2000
    public var chainSampleEvery = 250
    public var chainPages = 16
    /// The zygote: long-lived children of one parent with `zygoteVMAs` VMAs.
    public var zygoteChildren = 200
    public var zygoteVMAs = MachineConfig.maxVMAs
    public var zygotePages = 4
    /// Fork-heavy throughput: this mix under these list locks.
    public var forkHeavyMix = "fault=40,fork=25,exit=25,exec=2,reclaim=5,migrate=3"
    public var forkHeavySyncs: [ListSync] = [.rwlock, .mutex]
    public var forkHeavy = true

    public init() {}

    public static let aim7ChildrenRange = 1...4000
    public static let generationsRange = 1...1_000_000
    public static let zygoteChildrenRange = 1...4000

    func validate() -> String? {
        for n in aim7Children where !HistoricConfig.aim7ChildrenRange.contains(n) {
            return "AIM7 children must be \(HistoricConfig.aim7ChildrenRange.lowerBound)...\(HistoricConfig.aim7ChildrenRange.upperBound) (got \(n))"
        }
        if !HistoricConfig.generationsRange.contains(chainGenerations) {
            return "fork-chain generations must be \(HistoricConfig.generationsRange.lowerBound)...\(HistoricConfig.generationsRange.upperBound) (got \(chainGenerations))"
        }
        if !HistoricConfig.zygoteChildrenRange.contains(zygoteChildren) {
            return "zygote children must be \(HistoricConfig.zygoteChildrenRange.lowerBound)...\(HistoricConfig.zygoteChildrenRange.upperBound) (got \(zygoteChildren))"
        }
        return nil
    }
}

// MARK: Records

public struct AIM7Run: Codable, Sendable, Equatable {
    public var scheme: String
    public var children: Int
    public var pages: Int
    public var cowPages: Int
    public var repeatIndex: Int
    public var childCopy: BenchPageWalk
    public var parentOwn: BenchPageWalk
    public var shared: BenchPageWalk
    public var visitsPerPage: Double
    public var wastedPerPage: Double
    public var nsPerWalk: Double
    public var metadata: BenchMetadata
    public var verdict: String
}

public struct ForkChainRun: Codable, Sendable, Equatable {
    public var scheme: String
    /// The anon_vma reuse rule on fork (anon-vma-chain; the others have none).
    public var reuse: Bool
    public var generations: Int
    public var samples: [BenchChainSample]
    public var verdict: String
    /// Live contexts at the last sample over the first: 1 when bounded
    /// flat, about generations/sampleEvery when each generation adds one.
    public var growth: Double {
        guard let a = samples.first?.metadata.contexts, let b = samples.last?.metadata.contexts, a > 0 else { return .nan }
        return Double(b) / Double(a)
    }
}

public struct ZygoteRun: Codable, Sendable, Equatable {
    public var scheme: String
    public var children: Int
    public var vmas: Int
    public var metadata: BenchMetadata
    public var zygoteOnly: BenchMetadata
    public var bytesPerChild: Double
    public var verdict: String
}

public enum HistoricCompare {
    /// The fork-chain runs of a scheme: with and without the reuse rule
    /// where the scheme has one.
    static func reuseModes(_ s: SchemeKind) -> [Bool] { s.rawValue == "anon-vma-chain" ? [true, false] : [true] }

    /// The machine of a fork-chain run with the reuse rule on or off.
    static func withReuse(_ mc: MachineConfig, _ reuse: Bool) -> MachineConfig {
        var c = mc
        c.anonVmaReuse = reuse
        return c
    }

    /// Single-thread benchmarks, each point a fresh machine (schemes
    /// alternated per repeat, like the other benchmarks).
    static func benchmarks(_ c: SchemeConfig, into out: inout SchemeComparison, progress: ((String) -> Void)?) throws {
        let h = c.historic
        for r in 0..<c.repeats {
            let seed = c.seed &+ UInt64(r)
            for scheme in c.schemeOrder(r) {
                let s = scheme.rawValue
                for n in h.aim7Children {
                    var mc = SchemeCompare.benchConfig(scheme, c, processes: n + 4, vmaPages: h.aim7Pages, vmasPerProcess: 1,
                                                       frames: max(4096, (n + 2) * h.aim7Pages + 1024))
                    mc.swapSlots = 256
                    let (fig, ok) = try SchemeCompare.onMachine(mc, seed: seed) { m, cpu in
                        m.benchAIM7(children: n, pages: h.aim7Pages, cowPercent: h.aim7CowPercent, cpu: cpu)
                    }
                    guard let fig else { out.lost.append("\(s) AIM7 with \(n) children: the bench machine could not build it"); continue }
                    let run = AIM7Run(scheme: s, children: n, pages: fig.pages, cowPages: fig.cowPages, repeatIndex: r,
                                      childCopy: fig.childCopy, parentOwn: fig.parentOwn, shared: fig.shared,
                                      visitsPerPage: fig.visitsPerPage, wastedPerPage: fig.wastedPerPage, nsPerWalk: fig.nsPerWalk,
                                      metadata: fig.metadata, verdict: SchemeCompare.verdict(ok))
                    out.aim7.append(run)
                    progress?(String(format: "aim7   %@ children=%-5d repeat=%d %.2f visits/page (%.2f wasted), child copy %d visited  %@",
                                     s, n, r, run.visitsPerPage, run.wastedPerPage, run.childCopy.visited, run.verdict))
                }
                // Counts, not times: one repeat is enough.
                if r == 0 {
                    for reuse in reuseModes(scheme) {
                        let mc = withReuse(SchemeCompare.benchConfig(scheme, c, processes: 8, vmaPages: h.chainPages, vmasPerProcess: 1), reuse)
                        let (samples, ok) = try SchemeCompare.onMachine(mc, seed: seed) { m, cpu in
                            m.benchForkChain(generations: h.chainGenerations, pages: h.chainPages, sampleEvery: h.chainSampleEvery, cpu: cpu)
                        }
                        guard let samples else { out.lost.append("\(s) fork chain: the bench machine failed"); continue }
                        let run = ForkChainRun(scheme: s, reuse: reuse, generations: h.chainGenerations, samples: samples,
                                               verdict: SchemeCompare.verdict(ok))
                        out.forkChain.append(run)
                        let last = samples.last?.metadata
                        progress?("chain  \(s)\(reuseModes(scheme).count > 1 ? (reuse ? " reuse" : " no-reuse") : "") \(h.chainGenerations) generations: \(last?.contexts ?? 0) contexts, \(last?.links ?? 0) links, longest chain \(last?.maxChain ?? 0)  \(run.verdict)")
                    }
                    let mc = SchemeCompare.benchConfig(scheme, c, processes: h.zygoteChildren + 4, vmaPages: 16, vmasPerProcess: 1,
                                                       frames: max(4096, (h.zygoteChildren + 2) * h.zygoteVMAs * 2 + h.zygoteVMAs * h.zygotePages + 1024))
                    let (z, ok) = try SchemeCompare.onMachine(mc, seed: seed) { m, cpu in
                        m.benchZygote(children: h.zygoteChildren, vmas: h.zygoteVMAs, pages: h.zygotePages, cpu: cpu)
                    }
                    guard let z else { out.lost.append("\(s) zygote: the bench machine failed"); continue }
                    let run = ZygoteRun(scheme: s, children: z.children, vmas: z.vmas, metadata: z.metadata, zygoteOnly: z.zygoteOnly,
                                        bytesPerChild: z.bytesPerChild, verdict: SchemeCompare.verdict(ok))
                    out.zygote.append(run)
                    progress?(String(format: "zygote %@ %d children x %d VMAs: %d B live rmap metadata (%.0f B per child)  %@",
                                     s, z.children, z.vmas, z.metadata.bytes, z.bytesPerChild, run.verdict))
                }
            }
        }
    }

    /// Fork-heavy throughput runs (child processes) per scheme × lock × threads.
    static func forkHeavyRuns(_ c: SchemeConfig, executable: URL, into out: inout SchemeComparison,
                              progress: ((String) -> Void)?) throws {
        guard c.historic.forkHeavy else { return }
        let mix = try OperationMix(parsing: c.historic.forkHeavyMix).description
        loop: for r in 0..<c.repeats {
            for scheme in c.schemeOrder(r) {
                var sc = ScaleConfig()
                sc.threads = c.threads
                sc.syncs = c.historic.forkHeavySyncs
                sc.repeats = 1
                sc.ceiling = false
                sc.seed = c.seed &+ UInt64(r)
                sc.base = c.base
                sc.base.scheme = scheme
                sc.base.mix = mix
                let sweep = ScaleSweep.run(sc, executable: executable) { progress?("fork-heavy \(scheme.rawValue) repeat \(r): \($0)") }
                out.forkHeavyRuns += sweep.runs.map { var x = $0; x.repeatIndex = r; return x }
                out.lost += sweep.lost.map { "fork-heavy \(scheme.rawValue) repeat \(r): \($0)" }
                if sweep.interrupted != 0 { out.interrupted = sweep.interrupted; break loop }
            }
        }
    }
}

// MARK: The claims these workloads test

public enum HistoricClaims {
    static let avc = "anon-vma-chain"
    static let av = SchemeKind.anonVma.rawValue

    static func median(_ v: [Double]) -> Double { SchemeCompare.median(v) }

    /// Median visits per page of a scheme's AIM7 point.
    static func aim7(_ o: SchemeComparison, _ s: String, _ n: Int) -> (visits: Double, wasted: Double, copy: Int)? {
        let v = o.aim7.filter { $0.scheme == s && $0.children == n }
        guard let first = v.first else { return nil }
        return (median(v.map(\.visitsPerPage)), median(v.map(\.wastedPerPage)), first.childCopy.visited)
    }

    public static func judge(_ o: SchemeComparison) -> [ClaimRow] {
        var rows: [ClaimRow] = []
        let ns = Set(o.aim7.map(\.children)).sorted()
        // Rik van Riel (2010): AVC's scan per page is about constant.
        if let lo = ns.first, let hi = ns.last, lo < hi, let a0 = aim7(o, av, lo), let a1 = aim7(o, av, hi) {
            let c = (aim7(o, avc, lo), aim7(o, avc, hi))
            let figs = o.aim7.map(\.scheme).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }.compactMap { s -> String? in
                guard let x = aim7(o, s, lo), let y = aim7(o, s, hi) else { return nil }
                return String(format: "%@ %.2f -> %.2f visits per page (%.2f -> %.2f wasted; a child's copy %d -> %d visited)",
                              s, x.visits, y.visits, x.wasted, y.wasted, x.copy, y.copy)
            }.joined(separator: "; ")
            let growth = Double(hi) / Double(lo)
            let avGrows = a1.visits / a0.visits >= growth / 4
            // Judged only with anon_vma_chain measured: the claim is about it.
            guard let c0 = c.0, let c1 = c.1 else { return rows + judgeRest(o) }
            let flat = c1.visits / c0.visits <= 1.5
            let verdict = flat && c1.visits <= 3 && avGrows ? "supports" : (flat && avGrows ? "partly" : "refutes")
            let why = String(format: "rule: anon-vma-chain's visits per page at %d children at most 1.5× those at %d and at most 3 (measured %.2f, %.2fx), while anon_vma's grow at least a quarter as fast as N (%.1fx for %.0fx more children): all three supports, flat but above 3 partly, else refutes", hi, lo, c1.visits, c1.visits / c0.visits, a1.visits / a0.visits, growth)
            rows.append(ClaimRow(
                who: "Rik van Riel (anon_vma_chain, 2010)",
                claim: "With one anon_vma per family, AIM7's 1,000 children make every walk scan O(N) VMAs; anon_vma_chain brings the average scan to about 2.",
                figure: "AIM7 with \(lo) and \(hi) children, each writing \(o.aim7.first?.cowPages ?? 0) of \(o.aim7.first?.pages ?? 0) inherited pages: " + figs
                    + ". Field: 1,000 children x 1,000 pages, about 2 per page with AVC; 75% of cycles on the anon_vma lock before it",
                workload: "AIM7 benchmark (one thread; visits averaged over every mapped page of the family, weighted by page count)",
                verdict: verdict, why: why))
        }
        return rows + judgeRest(o)
    }

    /// The claims that do not need the AIM7 points.
    static func judgeRest(_ o: SchemeComparison) -> [ClaimRow] {
        var rows: [ClaimRow] = []
        // Khlebnikov (3.19) and the CVE-2022-42703 fix: reuse bounds the chain.
        let chains = o.forkChain.filter { $0.scheme == avc }
        if let on = chains.first(where: { $0.reuse }), let off = chains.first(where: { !$0.reuse }),
           let onLast = on.samples.last, let offLast = off.samples.last {
            let gens = on.generations
            let bounded = onLast.metadata.maxChain <= 8 && onLast.metadata.contexts <= 8
            let grows = offLast.metadata.maxChain >= gens / 2
            rows.append(ClaimRow(
                who: "Konstantin Khlebnikov (Linux 3.19) and the 2022 fix",
                claim: "Without reuse a fork chain grows the anon_vma hierarchy without bound; reusing an anon_vma with no active VMAs and at most one child bounds it.",
                figure: "after \(gens) generations: with reuse \(onLast.metadata.contexts) anon_vmas, longest chain \(onLast.metadata.maxChain), \(onLast.metadata.bytes) B; without \(offLast.metadata.contexts) anon_vmas, longest chain \(offLast.metadata.maxChain), \(offLast.metadata.bytes) B"
                    + o.forkChain.filter { $0.scheme != avc }.compactMap { r in r.samples.last.map { "; \(r.scheme) \($0.metadata.contexts) contexts" } }.joined(),
                workload: "fork chain benchmark: each process forks the next, which writes one page, and exits",
                verdict: bounded && grows ? "supports" : (grows || bounded ? "partly" : "refutes"),
                why: "rule: with reuse at most 8 anon_vmas and a chain of at most 8 (measured \(onLast.metadata.contexts), \(onLast.metadata.maxChain)), without reuse a chain of at least half the generations (measured \(offLast.metadata.maxChain) of \(gens)): both supports, one partly, neither refutes"))
        }
        // Android: AVC's slab cost on a zygote system.
        if let za = o.zygote.first(where: { $0.scheme == av }), let zc = o.zygote.first(where: { $0.scheme == avc }) {
            let ratio = zc.bytesPerChild / za.bytesPerChild
            rows.append(ClaimRow(
                who: "Android (2026)",
                claim: "On a zygote system the anon_vma and anon_vma_chain slabs are a large cost (about 20 + 19 MB after boot, 33 + 32 MB after 24 apps).",
                figure: o.zygote.map { String(format: "%@ %.0f B per child (%d contexts, %d links for %d children x %d VMAs)", $0.scheme, $0.bytesPerChild, $0.metadata.contexts, $0.metadata.links, $0.children, $0.vmas) }.joined(separator: "; "),
                workload: "zygote benchmark: the parent's VMAs all written, children that stay and write one page per VMA",
                verdict: ratio >= 2 ? "supports" : (ratio > 1 ? "partly" : "refutes"),
                why: String(format: "rule: anon_vma_chain's metadata per child against anon_vma's (measured %.2fx): at least 2x supports, more than 1x partly, else refutes; the field's figure is a whole phone's slab, ours one family", ratio)))
        }
        // Linux 3.8: the rwsem cost AIM7's fork test.
        let fh = o.forkHeavy
        if let th = fh.map(\.threads).max() {
            var figs: [String] = [], ratios: [Double] = []
            for s in Set(fh.map(\.scheme)).sorted() {
                if let rw = fh.first(where: { $0.scheme == s && $0.sync == ListSync.rwlock.rawValue && $0.threads == th }),
                   let mx = fh.first(where: { $0.scheme == s && $0.sync == ListSync.mutex.rawValue && $0.threads == th }) {
                    let r = rw.opsPerS.median / mx.opsPerS.median
                    ratios.append(r)
                    figs.append(String(format: "%@ rwlock/mutex %.2fx", s, r))
                }
            }
            if !ratios.isEmpty {
                let worst = ratios.min()!
                rows.append(ClaimRow(
                    who: "Linux 3.8 (anon_vma lock as an rwsem)",
                    claim: "Turning the anon_vma lock into a read-write lock cost AIM7's fork test 50% until writer lock stealing; exim stayed 8% slower than with the mutex.",
                    figure: "fork-heavy mix (\(o.forkHeavyRuns.first?.result.settings.mix ?? "")) at \(th) thread\(th == 1 ? "" : "s"): " + figs.joined(separator: "; "),
                    workload: "fork-heavy throughput runs, median over repeats; glibc's rwlock, which prefers readers, stands for the rwsem",
                    verdict: worst <= 0.75 ? "supports" : (worst < 0.95 ? "partly" : "refutes"),
                    why: String(format: "rule: the worst rwlock/mutex ratio (%.2f) at most 0.75 supports, below 0.95 partly, else refutes; with 2 cores the writers rarely wait, so a loss needs many more threads than this machine has", worst)))
            }
        }
        return rows
    }
}
