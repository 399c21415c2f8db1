import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `stress bench`: single-thread microbenchmarks of the model's hot paths.
public struct BenchOptions: Sendable {
    public var repeats = 5
    /// The rmap design of every benchmark machine.
    public var scheme: SchemeKind = .anongroup
    /// Pages of the mm in the fork+exit and mremap benchmarks.
    public var pages = 64
    /// mms in the group of the walk benchmarks.
    public var groupSize = 8
    /// Scales every iteration count (tests use a small one).
    public var work: Double = 1
    public var checks: CheckLevel = .off
    public var seed: UInt64 = 1
    public init() {}

    public static let repeatsRange = 1...1000
    public static let groupRange = 1...4096
    /// Scale of the iteration counts: 0.0001 (tests) to 100 (long, steady
    /// figures). Targets are only judged at 1 or more: a figure from a few
    /// iterations says nothing about a target.
    public static let workRange = 0.0001...100.0

    public func validate() -> String? {
        if !BenchOptions.repeatsRange.contains(repeats) { return "repeat must be 1...1000 (got \(repeats))" }
        if pages < 1 || pages > 512 || 512 % pages != 0 { return "pages must be a divisor of 512: 1, 2, 4, ... 512 (got \(pages))" }
        if !BenchOptions.groupRange.contains(groupSize) { return "group must be 1...4096 (got \(groupSize))" }
        if !work.isFinite || !BenchOptions.workRange.contains(work) { return "work must be 0.0001...100 (got \(work))" }
        return nil
    }

    /// Whether targets are judged at this work scale.
    public var judgesTargets: Bool { work >= 1 }
}

public struct BenchRow: Codable, Sendable {
    public var name: String
    public var nsPerOp: Spread
    /// Per-repeat ns/op.
    public var samples: [Double]
    public var target: String?
    /// nil when this row has no target.
    public var met: Bool?
    public var note: String?
}

public struct BenchReport: Codable, Sendable {
    public var tool = "concurrent-rmap-stress bench"
    public var version = StressVersion.version
    public var gitCommit = StressVersion.gitCommit
    public var buildConfiguration = HostInfo.buildConfiguration
    public var cpuModel = HostInfo.cpuModel
    public var cpuCount = HostInfo.cpuCount
    public var repeats: Int
    public var scheme: String
    public var pages: Int
    public var groupSize: Int
    public var checks: String
    public var rows: [BenchRow]
    /// Speedup of 2 spinning threads over 1 (see HostInfo.measuredParallelism).
    public var measuredParallelism: Double?
    /// Violations or leaks any benchmark machine reported (must be empty).
    public var problems: [String]

    public func row(_ name: String) -> BenchRow? { rows.first { $0.name == name } }

    public func table() -> String {
        func r(_ s: String, _ w: Int) -> String { s.count >= w ? " " + s : String(repeating: " ", count: w - s.count) + s }
        func l(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
        func ns(_ v: Double) -> String { v >= 1e4 ? String(format: "%.1fus", v / 1e3) : String(format: v < 10 ? "%.2f" : "%.1f", v) }
        var out = "stress bench \(version) (\(gitCommit)), \(buildConfiguration) build, \(cpuModel), \(cpuCount) CPUs\n"
        out += "median ns/op over \(repeats) repeats; checks=\(checks); pages=\(pages) group=\(groupSize)\n"
        if let p = measuredParallelism {
            out += String(format: "measured parallelism: %.2fx for 2 spinning threads (2.00 = two free cores)", p)
                + (p < 1.6 ? " -- the 2-thread rows below do not get two cores" : "") + "\n"
        }
        out += "\n"
        out += l("benchmark", 40) + r("ns/op", 11) + r("min", 11) + r("max", 11) + "  target\n"
        for row in rows {
            let t = row.target.map { "\($0): \(row.met.map { $0 ? "met" : "NOT MET" } ?? "not judged (--work below 1)")" } ?? ""
            out += l(row.name, 40) + r(ns(row.nsPerOp.median), 11) + r(ns(row.nsPerOp.min), 11) + r(ns(row.nsPerOp.max), 11) + "  " + t + "\n"
            if let n = row.note { out += "    " + n + "\n" }
        }
        if buildConfiguration != "release" { out += "\nWARNING: debug build; build with -c release for meaningful numbers\n" }
        for p in problems { out += "PROBLEM: \(p)\n" }
        return out
    }
}

public enum BenchSuite {
    public static func run(_ o: BenchOptions, progress: ((String) -> Void)? = nil) throws -> BenchReport {
        if let p = o.validate() { throw Machine.ConfigError.invalid(p) }
        guard RCU.select(.memb) else { throw Machine.ConfigError.invalid("cannot switch RCU flavor while threads are registered") }
        var rows: [BenchRow] = []
        var problems: [String] = []
        func it(_ n: Double) -> Int { max(1, Int(n * o.work)) }

        /// Runs `body` (returning (ns, ops)) `repeats` times on a fresh machine.
        func machineBench(_ name: String, _ config: MachineConfig, target: String? = nil, limit: Double? = nil, note: String? = nil,
                          _ body: (Machine, CPU) -> (UInt64, Int)) throws {
            progress?(name)
            let m = try Machine(config: config)
            var samples: [Double] = []
            RCU.withRegisteredThread {
                let cpu = m.makeCPU(id: 0, seed: o.seed)
                _ = body(m, cpu)  // warm-up
                for _ in 0..<o.repeats {
                    let (ns, n) = body(m, cpu)
                    samples.append(Double(ns) / Double(max(n, 1)))
                }
                m.releaseCPU(cpu)
                let closer = m.makeCPU(id: 1, seed: o.seed)
                let leaks = m.teardown(cpu: closer)
                m.releaseCPU(closer)
                for v in m.violations.prefix(3) { problems.append("\(name): \(v.kind.rawValue): \(v.detail)") }
                if !leaks.isEmpty { problems.append("\(name): \(leaks.count) leaks") }
            }
            let sp = Spread(samples)
            rows.append(BenchRow(name: name, nsPerOp: sp, samples: samples, target: target,
                                 met: o.judgesTargets ? limit.map { sp.median <= $0 } : nil, note: note))
        }

        var big = MachineConfig()
        big.scheme = o.scheme
        big.frames = 65_536
        big.swapSlots = 1024
        big.maxProcesses = 64
        big.vmaPages = 512
        big.vmasPerProcess = 8
        big.checks = o.checks
        try machineBench("first-touch fault", big, target: "<= 40 ns", limit: 40) { m, cpu in
            let r = m.benchFirstTouch(faults: it(300_000), cpu: cpu); return (r.ns, r.count)
        }
        var cow = big
        cow.vmasPerProcess = 4
        try machineBench("COW fault", cow) { m, cpu in
            let r = m.benchCOW(faults: it(150_000), cpu: cpu); return (r.ns, r.count)
        }

        var small = MachineConfig()
        small.scheme = o.scheme
        small.frames = 16_384
        small.swapSlots = 1024
        small.maxProcesses = 1024
        small.vmaPages = o.pages
        small.vmasPerProcess = 1
        small.checks = o.checks
        try machineBench("fork+exit, \(o.pages)-page mm", small,
                         note: "the real kernel on the development machine: stress-ng --fork, 5,820 fork+exit/s, about 172 us each") { m, cpu in
            let r = m.benchForkExit(iterations: it(4000), cpu: cpu); return (r.ns, r.count)
        }
        try machineBench("mremap of \(o.pages) pages", small, note: "per call; \(o.pages) exclusive pages re-indexed") { m, cpu in
            let r = m.benchMremap(iterations: it(5000), cpu: cpu); return (r.ns, r.count)
        }

        let g = o.groupSize
        let grp = MachineConfig.anongroupBench(groupSize: g, checks: o.checks, scheme: o.scheme)
        let walkIters = it(Double(max(2_000_000 / g, 500)))
        var group: BenchGroup?
        try machineBench("rmap walk over \(g) mms", grp, target: g == 8 ? "<= 200 ns" : nil, limit: g == 8 ? 200 : nil,
                         note: "page locked; per mm: ptl lock, PTE lookup, unlock") { m, cpu in
            if group == nil { group = m.benchGroup(size: g, pages: 4, cpu: cpu) }
            guard let gr = group else { return (0, 0) }
            let r = m.benchWalk(gr, page: 0, iterations: walkIters, mode: .rmapWalk, cpu: cpu)
            return (r.ns, walkIters)
        }
        group = nil
        try machineBench("migration of a page in \(g) mms", grp, note: "two walks + \(g) PTEs rewritten") { m, cpu in
            if group == nil { group = m.benchGroup(size: g, pages: 4, cpu: cpu) }
            guard let gr = group else { return (0, 0) }
            let n = it(Double(max(200_000 / g, 100)))
            return (m.benchMigrate(gr, page: 1, iterations: n, cpu: cpu), n)
        }
        group = nil

        // Primitives: an RCU read-side section per flavor whose read side
        // does something (memb, the default, and qsbr, whose read side is
        // nearly free). The flavor switches while no thread is registered.
        for flavor in [RCUFlavor.memb, .qsbr] {
            progress?("RCU read-side section (\(flavor.rawValue))")
            guard RCU.select(flavor) else { throw Machine.ConfigError.invalid("cannot switch RCU flavor while threads are registered") }
            let rcuIters = it(20_000_000)
            var rcuSamples: [Double] = []
            RCU.withRegisteredThread {
                _ = Machine.benchRCUReadSection(iterations: rcuIters / 10)
                for _ in 0..<o.repeats { rcuSamples.append(Double(Machine.benchRCUReadSection(iterations: rcuIters)) / Double(rcuIters)) }
            }
            let rcuSp = Spread(rcuSamples)
            rows.append(BenchRow(name: "RCU read section, \(flavor.rawValue) (lock+unlock)", nsPerOp: rcuSp, samples: rcuSamples,
                                 target: "<= 1.5 ns", met: o.judgesTargets ? rcuSp.median <= 1.5 : nil,
                                 note: "liburcu \(flavor.rawValue), static inline fast path"))
        }
        guard RCU.select(.memb) else { throw Machine.ConfigError.invalid("cannot switch RCU flavor while threads are registered") }
        progress?("rwlock read lock")
        let rwIters = it(10_000_000)
        var rwSamples: [Double] = []
        _ = Machine.benchRWLockRead(iterations: rwIters / 10)
        for _ in 0..<o.repeats { rwSamples.append(Double(Machine.benchRWLockRead(iterations: rwIters)) / Double(rwIters)) }
        rows.append(BenchRow(name: "pthread rwlock read lock+unlock", nsPerOp: Spread(rwSamples), samples: rwSamples,
                             target: nil, met: nil, note: nil))

        // RCU vs rwlock list walks, 1 and 2 threads.
        var listNs: [String: Spread] = [:]
        for threads in [1, 2] {
            for sync in [ListSync.rcu, .rwlock] {
                let name = "group-list walk \(sync.rawValue), \(threads) thread\(threads == 1 ? "" : "s")"
                progress?(name)
                var c = grp
                c.sync = sync
                let m = try Machine(config: c)
                let iters = it(Double(max(4_000_000 / g, 2000)))
                var samples: [Double] = []
                RCU.withRegisteredThread {
                    let cpu = m.makeCPU(id: 0, seed: o.seed)
                    if let gr = m.benchGroup(size: g, pages: 4, cpu: cpu) {
                        _ = parallelListWalk(m, gr, threads: threads, iterations: iters / 10, seed: o.seed)
                        for _ in 0..<o.repeats {
                            samples.append(parallelListWalk(m, gr, threads: threads, iterations: iters, seed: o.seed))
                        }
                    } else {
                        problems.append("\(name): could not build the group")
                    }
                    m.releaseCPU(cpu)
                    let closer = m.makeCPU(id: 1, seed: o.seed)
                    let leaks = m.teardown(cpu: closer)
                    m.releaseCPU(closer)
                    if !leaks.isEmpty || m.violationCount > 0 { problems.append("\(name): \(leaks.count) leaks, \(m.violationCount) violations") }
                }
                let sp = Spread(samples)
                listNs[name] = sp
                rows.append(BenchRow(name: name, nsPerOp: sp, samples: samples, target: nil, met: nil,
                                     note: threads == 1 ? nil : "aggregate: wall time / walks of both threads (each walks its own page of the same group)"))
            }
            let rcuName = "group-list walk rcu, \(threads) thread\(threads == 1 ? "" : "s")"
            let rwName = "group-list walk rwlock, \(threads) thread\(threads == 1 ? "" : "s")"
            if let a = listNs[rcuName], let b = listNs[rwName], let i = rows.firstIndex(where: { $0.name == rcuName }) {
                if threads == 1 {
                    rows[i].target = "RCU >= rwlock speed (ratio \(String(format: "%.2f", b.median / a.median))x)"
                    rows[i].met = o.judgesTargets ? a.median <= b.median : nil
                } else {
                    rows[i].target = "RCU faster than rwlock (ratio \(String(format: "%.2f", b.median / a.median))x)"
                    rows[i].met = o.judgesTargets ? a.median < b.median : nil
                }
            }
        }
        var report = BenchReport(repeats: o.repeats, scheme: o.scheme.rawValue, pages: o.pages, groupSize: o.groupSize, checks: o.checks.rawValue,
                                 rows: rows, problems: problems)
        report.measuredParallelism = HostInfo.measuredParallelism(spins: max(100_000, Int(40_000_000 * min(o.work, 1))))
        return report
    }

    /// `threads` threads (each registered with RCU, own CPU) walk the group's
    /// list, each on its own shared page, `iterations` times; returns the
    /// aggregate ns per walk (wall time / all walks).
    static func parallelListWalk(_ m: Machine, _ g: BenchGroup, threads: Int, iterations: Int, seed: UInt64) -> Double {
        // The walkers meet at a spin barrier among themselves and time their
        // own walks; the calling thread only joins (it must not take a core
        // from them on a small machine).
        let box = SharedBox(threads: threads)
        var tids: [pthread_t] = []
        for t in 0..<threads {
            let page = t % g.vpns.count
            tids.append(startThread {
                RCU.registerThread()
                let cpu = m.makeCPU(id: 10 + t, seed: seed)
                box.ready.wrappingAdd(1, ordering: .acquiringAndReleasing)
                while box.ready.load(ordering: .acquiring) < threads {}
                let t0 = monotonicNanos()
                _ = m.benchWalk(g, page: page, iterations: iterations, mode: .listOnly, cpu: cpu)
                let t1 = monotonicNanos()
                box.start[t] = t0
                box.end[t] = t1
                m.releaseCPU(cpu)
                RCU.unregisterThread()
            })
        }
        RCU.threadOffline()  // joining is a blocking wait
        for t in tids { joinThread(t) }
        RCU.threadOnline()
        var first = UInt64.max, last: UInt64 = 0
        for i in 0..<box.count { first = min(first, box.start[i]); last = max(last, box.end[i]) }
        let wall = last - first
        return Double(wall) / Double(iterations * threads)
    }

    final class SharedBox: @unchecked Sendable {
        let ready = Atomic<Int>(0)
        /// Element i written by thread i only, read after the join.
        let start: UnsafeMutablePointer<UInt64>
        let end: UnsafeMutablePointer<UInt64>
        let count: Int
        init(threads: Int) {
            count = threads
            start = .allocate(capacity: threads); start.initialize(repeating: 0, count: threads)
            end = .allocate(capacity: threads); end.initialize(repeating: 0, count: threads)
        }
        deinit { start.deallocate(); end.deallocate() }
    }
}

extension MachineConfig {
    /// The machine the walk benchmarks build one anongroup of `g` mms in
    /// (`stress bench` and the walk-cost sweep of `stress scale`).
    static func anongroupBench(groupSize g: Int, checks: CheckLevel, sync: ListSync = .rcu,
                               scheme: SchemeKind = .anongroup) -> MachineConfig {
        var c = MachineConfig()
        c.scheme = scheme
        c.frames = 4096
        c.swapSlots = 256
        c.maxProcesses = g + 4
        c.vmaPages = 64
        c.vmasPerProcess = 1
        c.checks = checks
        c.sync = sync
        return c
    }
}
