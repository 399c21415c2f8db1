import ConcurrentRmap
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import RunEngine
import StressSupport

// MARK: List options

/// A bad `--threads 1,2,4`-style list: one line, for a usage error.
public struct ListParseError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
}

public enum ScaleLists {
    /// Parses "1,2,4" into distinct whole numbers in `range`, in the given order.
    public static func ints(_ text: String, option: String, range: ClosedRange<Int>) throws -> [Int] {
        var out: [Int] = []
        for part in try items(text, option: option) {
            guard let v = Int(part), range.contains(v) else {
                throw ListParseError(message: "bad value '\(part)' in --\(option): expected whole numbers \(range.lowerBound)...\(range.upperBound)")
            }
            guard !out.contains(v) else { throw ListParseError(message: "value \(v) appears twice in --\(option)") }
            out.append(v)
        }
        return out
    }

    /// Parses "rcu,rwlock" into distinct cases of `T`.
    public static func names<T: RawRepresentable & CaseIterable>(_ text: String, option: String, as: T.Type) throws -> [T]
    where T.RawValue == String {
        var out: [T] = []
        for part in try items(text, option: option) {
            guard let v = T(rawValue: part) else {
                let known = T.allCases.map { $0.rawValue }.joined(separator: ", ")
                throw ListParseError(message: "unknown value '\(part)' in --\(option) (known: \(known))")
            }
            guard !out.contains(where: { $0.rawValue == v.rawValue }) else {
                throw ListParseError(message: "value '\(part)' appears twice in --\(option)")
            }
            out.append(v)
        }
        return out
    }

    private static func items(_ text: String, option: String) throws -> [String] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { String(strip($0)) }
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else {
            throw ListParseError(message: "--\(option) needs a comma-separated list without empty items (got '\(text)')")
        }
        return parts
    }

    static func strip(_ s: Substring) -> Substring {
        var s = s
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

// MARK: Records

/// One stress run of a sweep: its sweep coordinates and the full result.
public struct ScaleRun: Codable, Sendable {
    public var sync: String
    public var rcu: String
    public var threads: Int
    /// 0-based repetition of this point.
    public var repeatIndex: Int
    /// More workers than usable CPUs.
    public var oversubscribed: Bool
    public var result: StressResult

    public init(sync: String, rcu: String, threads: Int, repeatIndex: Int, oversubscribed: Bool, result: StressResult) {
        self.sync = sync; self.rcu = rcu; self.threads = threads; self.repeatIndex = repeatIndex
        self.oversubscribed = oversubscribed; self.result = result
    }
}

/// One measurement of the walk-cost sweep: a group of `groupSize` mms
/// sharing a few pages, walked single-threaded.
public struct WalkCostRun: Codable, Sendable, Equatable {
    public var sync: String
    public var groupSize: Int
    public var repeatIndex: Int
    /// ns per rmap walk (page locked, blocking ptl per mm, PTE looked up).
    public var walkNs: Double
    /// ns per reclaim aging walk (trylock ptl, clear young bit).
    public var agingWalkNs: Double
    /// ns per migration of a page mapped by every member (two walks).
    public var migrateNs: Double
    public var mmsVisited: Int
    public var walkIterations: Int
    public var migrateIterations: Int
    /// "SUCCESS" when the machine reported no violation and no leak.
    public var verdict: String

    public var walksPerS: Double { walkNs > 0 ? 1e9 / walkNs : 0 }
    public var agingWalksPerS: Double { agingWalkNs > 0 ? 1e9 / agingWalkNs : 0 }
    public var migrationsPerS: Double { migrateNs > 0 ? 1e9 / migrateNs : 0 }
    public var nsPerMM: Double { groupSize > 0 ? walkNs / Double(groupSize) : 0 }
}

/// Where and how a sweep ran (meta.json).
public struct ScaleMeta: Codable, Sendable {
    public var tool = "concurrent-rmap-stress"
    public var version = StressVersion.version
    public var gitCommit = StressVersion.gitCommit
    public var arguments: [String]
    public var seed: UInt64
    public var cpuModel: String
    public var cpuCount: Int
    public var kernel: String
    public var date: String
    public var threads: [Int]
    public var sync: [String]
    public var rcu: [String]
    public var mix: String
    public var repeats: Int
    public var durationS: Double
    public var groupSizes: [Int]
    public var frames: Int
    public var swapSlots: Int
    public var maxProcesses: Int
    public var vmaPages: Int
    public var checks: String
    public var buildConfiguration: String
    /// Speedup of 2 spinning threads over 1, measured before the sweep
    /// (2.0: two free cores; about 1.0: the machine is busy elsewhere).
    public var measuredParallelism: Double?
    /// Every setting of the runs but the swept ones (threads, sync, rcu, seed).
    public var settings: RunSettings?
    /// Sizes are per thread (weak scaling); absent in older files: false.
    public var perThreadSize: Bool?
    /// Tracked files had uncommitted changes when the binary was built.
    public var gitDirty: Bool? = StressVersion.gitDirty
    /// Runs the sweep planned (the report says how many of them it holds).
    public var plannedRuns: Int?
    /// The signal that interrupted the sweep, absent when it ran to the end.
    public var interruptedBy: Int32?
    /// Runs whose child process crashed or hung, as "point: how it ended".
    public var lostRuns: [String]?

    public init(arguments: [String], config: ScaleConfig) {
        self.arguments = arguments
        seed = config.seed
        cpuModel = HostInfo.cpuModel
        cpuCount = HostInfo.cpuCount
        kernel = HostInfo.kernel
        date = ISO8601DateFormatter().string(from: Date())
        threads = config.threads
        sync = config.syncs.map { $0.rawValue }
        rcu = config.rcus.map { $0.rawValue }
        mix = config.base.mix
        repeats = config.repeats
        durationS = config.base.durationS
        groupSizes = config.groupSizes
        frames = config.base.frames
        swapSlots = config.base.swapSlots
        maxProcesses = config.base.processes
        vmaPages = config.base.vmaPages
        checks = config.base.checks.rawValue
        settings = config.base
        perThreadSize = config.perThreadSize
        plannedRuns = config.points().count
        buildConfiguration = HostInfo.buildConfiguration
    }
}

// MARK: The sweep

/// The machine's own ceiling at one thread count: `threads` independent
/// 1-thread `stress run` processes at once, sharing nothing but the
/// hardware. A multi-thread figure of the model is read against it: the
/// model cannot scale better than the machine lets two processes scale.
public struct CeilingRun: Codable, Sendable, Equatable {
    public var threads: Int
    public var repeatIndex: Int
    /// Sum of the processes' completed operations per second.
    public var opsPerS: Double
    /// Each process's completed operations per second.
    public var perProcess: [Double]
    public var verdict: String
}

/// What `stress scale` sweeps.
public struct ScaleConfig: Sendable {
    public var threads: [Int] = [1, 2, 4]
    public var syncs: [ListSync] = [.rcu, .rwlock, .mutex]
    public var rcus: [RCUFlavor] = [.memb]
    public var repeats = 3
    public var seed: UInt64 = 1
    /// Every setting but threads, sync, rcu and seed.
    public var base: RunSettings = ScaleConfig.defaultBase
    /// Measure the machine's ceiling (independent processes) at each
    /// thread count above 1, in every repeat.
    public var ceiling = true
    /// Weak scaling: the base's frames, swap slots, processes and population
    /// are per thread, and a point of N threads gets N times as many, as
    /// will-it-scale gives each task its own work. With one table for every
    /// thread count (strong scaling), the 1-thread run works over the whole
    /// table while each of N threads works over 1/N of it (locality 100), so
    /// more threads also means a smaller working set per core and the curve
    /// can rise above N: measured on 16 cores, docs/scale-16.
    public var perThreadSize = false
    /// Walk-cost sweep group sizes (empty: none).
    public var groupSizes: [Int] = []
    /// Scales the walk-cost sweep's iteration counts (tests use a small one).
    public var walkWork: Double = 1

    public init() {}

    /// Measuring, not hunting: each worker keeps to its own processes and
    /// memory node (locality 100, as a scheduler keeps tasks on their CPU;
    /// otherwise two workers measure the traffic of each other's page
    /// tables between their cores), the grace-period probe every second,
    /// not every 100 ms (its membarrier IPIs disturb the workers), one
    /// operation in 16 timed, and a second of warm-up.
    public static var defaultBase: RunSettings {
        var b = RunSettings()
        b.perturb = false
        b.recycling = .throughput
        b.durationS = 5
        b.warmupS = 1
        b.locality = 100
        b.gpProbeIntervalS = 1
        b.latencySample = 16
        return b
    }

    public var cpuCount: Int { HostInfo.cpuCount }

    public struct Point: Sendable, Equatable {
        public var sync: ListSync
        public var rcu: RCUFlavor
        public var threads: Int
        public var repeatIndex: Int
    }

    /// Every run of the sweep. Repetition is outermost and each repeat
    /// starts one point further along the list, so that the variants
    /// alternate in time and slow drift of a shared machine hits them alike.
    public func points() -> [Point] {
        var one: [(ListSync, RCUFlavor, Int)] = []
        for rcu in rcus { for s in syncs { for t in threads { one.append((s, rcu, t)) } } }
        var out: [Point] = []
        for r in 0..<repeats {
            for k in 0..<one.count {
                let (s, rcu, t) = one[(k + r) % one.count]
                out.append(Point(sync: s, rcu: rcu, threads: t, repeatIndex: r))
            }
        }
        return out
    }

    /// The base with its sizes for `threads` threads: itself, or under
    /// `perThreadSize` every size times `threads`.
    public func sized(threads t: Int) -> RunSettings {
        var o = base
        if perThreadSize {
            o.frames = base.frames * t
            o.swapSlots = base.swapSlots * t
            o.processes = base.processes * t
            o.population = base.population * t
        }
        return o
    }

    /// The `threads` independent 1-thread processes of the machine's ceiling
    /// in repeat `r`: the first protection and flavor, each process its own
    /// seed and, under `--pin`, its own CPU (process i where worker i of a
    /// `threads`-thread run would be).
    public func ceilingProcesses(threads t: Int, repeat r: Int) -> [RunSettings] {
        (0..<t).map { i in
            var x = base
            x.threads = 1
            x.sync = syncs[0]
            x.rcu = rcus[0]
            x.seed = seed &+ UInt64(r) &* 1000 &+ UInt64(i)
            x.pinFirst = i
            return x
        }
    }

    /// The settings of one point.
    public func settings(_ p: Point) -> RunSettings {
        var o = sized(threads: p.threads)
        o.threads = p.threads
        o.sync = p.sync
        o.rcu = p.rcu
        o.seed = seed &+ UInt64(p.repeatIndex)
        return o
    }

    public func validate() -> String? {
        if threads.isEmpty || syncs.isEmpty || rcus.isEmpty { return "threads, sync and rcu lists must not be empty" }
        if repeats < 1 || repeats > 100 { return "repeat must be 1...100 (got \(repeats))" }
        let most = threads.max() ?? 1
        var o = sized(threads: most)
        o.threads = most
        if let p = o.validate() {
            return perThreadSize ? "with --per-thread-size at \(most) threads: \(p)" : p
        }
        // Every swept sync mode must suit the other settings (rcu-only walks
        // need sync rcu): refused here, not run by run in the children.
        for s in syncs where s != o.sync {
            var other = o
            other.sync = s
            if let p = other.validate() { return "with sync \(s.rawValue): \(p)" }
        }
        for g in groupSizes where g < 1 || g > 4096 { return "group sizes must be 1...4096 (got \(g))" }
        return nil
    }
}

public enum ScaleSweep {
    /// What a sweep produced, as far as it got.
    public struct Outcome: Sendable {
        public var runs: [ScaleRun] = []
        public var ceiling: [CeilingRun] = []
        /// Runs whose child process crashed or hung: (point, how it ended).
        public var lost: [String] = []
        /// The signal that stopped the sweep, 0 if none.
        public var interrupted: Int32 = 0
    }

    /// Runs every point of the sweep, each as a `stress run` child process,
    /// sequentially, with the ceiling measurements of each repeat after its
    /// points. Stops at a stall (stuck threads poison the machine's figures)
    /// or a signal (passed on to the running child), keeping what it has.
    public static func run(_ c: ScaleConfig, executable: URL = ChildProcess.selfExecutable,
                           progress: ((String) -> Void)? = nil) -> Outcome {
        var out = Outcome()
        let pts = c.points()
        var lastRepeat = -1
        func ceilingFor(repeat r: Int) {
            guard c.ceiling else { return }
            for t in c.threads where t > 1 {
                let procs = c.ceilingProcesses(threads: t, repeat: r)
                let outcomes = ChildRun.runAll(procs.map(\.arguments), deadline: deadline(procs[0]), tag: "ceiling-\(t)-\(r)",
                                               executable: executable)
                if let sig = outcomes.first(where: { $0.interrupted != 0 })?.interrupted { out.interrupted = sig; return }
                let rates = outcomes.map { $0.result?.opsPerS ?? 0 }
                let ok = outcomes.allSatisfy { $0.result?.verdict == Verdict.success }
                let cr = CeilingRun(threads: t, repeatIndex: r, opsPerS: rates.reduce(0, +), perProcess: rates,
                                    verdict: ok ? Verdict.success : Verdict.failure)
                out.ceiling.append(cr)
                progress?(String(format: "ceiling  threads=%-3d repeat=%d %12.0f ops/s  (%d independent 1-thread processes)  %@",
                                 t, r, cr.opsPerS, t, cr.verdict))
            }
        }
        for (n, p) in pts.enumerated() {
            if p.repeatIndex != lastRepeat {
                if lastRepeat >= 0 { ceilingFor(repeat: lastRepeat) }
                if out.interrupted != 0 { return out }
                lastRepeat = p.repeatIndex
            }
            let o = c.settings(p)
            let child = ChildRun.run(o.arguments, deadline: deadline(o), tag: "scale-\(n)", executable: executable)
            if let r = child.result, r.verdict != Verdict.running {
                let run = ScaleRun(sync: p.sync.rawValue, rcu: p.rcu.rawValue, threads: p.threads, repeatIndex: p.repeatIndex,
                                   oversubscribed: p.threads > c.cpuCount, result: r)
                out.runs.append(run)
                progress?(String(format: "[%3d/%d] sync=%-6@ rcu=%@ threads=%-3d repeat=%d %12.0f ops/s  %@%@",
                                 n + 1, pts.count, p.sync.rawValue, p.rcu.rawValue, p.threads, p.repeatIndex, r.opsPerS, r.verdict,
                                 run.oversubscribed ? "  (oversubscribed)" : ""))
                if r.verdict == Verdict.stall { return out }
            } else {
                let why = "sync=\(p.sync.rawValue) rcu=\(p.rcu.rawValue) threads=\(p.threads) repeat=\(p.repeatIndex): \(child.ending.description)"
                out.lost.append(why)
                progress?("[\(n + 1)/\(pts.count)] " + why)
            }
            if child.interrupted != 0 { out.interrupted = child.interrupted; return out }
        }
        if lastRepeat >= 0 { ceilingFor(repeat: lastRepeat) }
        return out
    }

    /// How long a child may take: its warm-up and duration, the stall
    /// timeout twice over (stop and teardown), and start-up slack.
    static func deadline(_ o: RunSettings) -> Double {
        o.warmupS + o.durationS + 2 * o.stallTimeoutS + 30
    }

    /// The walk-cost sweep: for each sync choice and group size, a fresh
    /// machine with a group of G mms sharing 4 pages, walked and migrated on
    /// this thread.
    public static func walkCost(_ c: ScaleConfig, progress: ((WalkCostRun) -> Void)? = nil) throws -> [WalkCostRun] {
        var out: [WalkCostRun] = []
        for r in 0..<c.repeats {
            for s in c.syncs {
                for g in c.groupSizes {
                    let run = try walkCostPoint(sync: s, groupSize: g, repeatIndex: r, work: c.walkWork, seed: c.seed, scheme: c.base.scheme)
                    out.append(run)
                    progress?(run)
                }
            }
        }
        return out
    }

    public static func walkCostPoint(sync: ListSync, groupSize g: Int, repeatIndex: Int, work: Double, seed: UInt64,
                                     scheme: SchemeKind = .anongroup) throws -> WalkCostRun {
        guard RCU.select(.memb) else { throw Machine.ConfigError.invalid("cannot switch RCU flavor while threads are registered") }
        let mc = MachineConfig.anongroupBench(groupSize: g, checks: .full, sync: sync, scheme: scheme)
        let m = try Machine(config: mc)
        let walkIters = max(50, Int(Double(max(400_000 / g, 200)) * work))
        let migIters = max(10, Int(Double(max(40_000 / g, 40)) * work))
        return RCU.withRegisteredThread {
            let cpu = m.makeCPU(id: 0, seed: seed)
            var run = WalkCostRun(sync: sync.rawValue, groupSize: g, repeatIndex: repeatIndex, walkNs: .nan, agingWalkNs: .nan,
                                  migrateNs: .nan, mmsVisited: 0, walkIterations: walkIters, migrateIterations: migIters,
                                  verdict: "FAILURE")
            if let grp = m.benchGroup(size: g, pages: 4, cpu: cpu) {
                _ = m.benchWalk(grp, page: 0, iterations: min(walkIters, 100), mode: .rmapWalk, cpu: cpu)  // warm up
                let w = m.benchWalk(grp, page: 0, iterations: walkIters, mode: .rmapWalk, cpu: cpu)
                let a = m.benchWalk(grp, page: 1, iterations: walkIters, mode: .reclaimAging, cpu: cpu)
                let mg = m.benchMigrate(grp, page: 2, iterations: migIters, cpu: cpu)
                run.walkNs = Double(w.ns) / Double(walkIters)
                run.agingWalkNs = Double(a.ns) / Double(walkIters)
                run.migrateNs = Double(mg) / Double(migIters)
                run.mmsVisited = w.visited
            }
            m.releaseCPU(cpu)
            let closer = m.makeCPU(id: 1, seed: seed)
            let leaks = m.teardown(cpu: closer)
            m.releaseCPU(closer)
            if leaks.isEmpty && m.violationCount == 0 && run.mmsVisited == g { run.verdict = "SUCCESS" }
            return run
        }
    }
}

// MARK: Files

public enum ScaleFiles {
    public static func encoder() -> JSONEncoder { ResultFile.encoder() }
    public static func decoder() -> JSONDecoder { ResultFile.decoder() }

    /// Writes runs.csv, runs.json, meta.json, report.html (and walkcost.csv /
    /// walkcost.json when the walk-cost sweep ran) into `dir`.
    public static func write(dir: String, runs: [ScaleRun], ceiling: [CeilingRun] = [], walkCost: [WalkCostRun],
                             meta: ScaleMeta) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A rerun into the same folder must not leave an earlier sweep's
        // files beside this one's: remove those of our own names this
        // sweep does not write (nothing else in the folder is touched).
        var stale: [String] = []
        if ceiling.isEmpty { stale.append("ceiling.json") }
        if walkCost.isEmpty { stale += ["walkcost.csv", "walkcost.json"] }
        for f in stale where FileManager.default.fileExists(atPath: dir + "/" + f) {
            try FileManager.default.removeItem(atPath: dir + "/" + f)
        }
        try AtomicFile.write(Data(ScaleReport.csv(runs).utf8), to: dir + "/runs.csv")
        try ResultFile.write(runs, to: dir + "/runs.json")
        try ResultFile.write(meta, to: dir + "/meta.json")
        if !ceiling.isEmpty { try ResultFile.write(ceiling, to: dir + "/ceiling.json") }
        if !walkCost.isEmpty {
            try AtomicFile.write(Data(ScaleReport.walkCostCSV(walkCost).utf8), to: dir + "/walkcost.csv")
            try ResultFile.write(walkCost, to: dir + "/walkcost.json")
        }
        let html = ScaleReport.html(runs: runs, ceiling: ceiling, walkCost: walkCost, meta: meta)
        try AtomicFile.write(Data(html.utf8), to: dir + "/report.html")
    }
}
