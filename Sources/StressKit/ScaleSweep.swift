import ConcurrentRmap
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
    /// More workers than online CPUs.
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
        mix = config.base.mix.description
        repeats = config.repeats
        durationS = config.base.duration
        groupSizes = config.groupSizes
        frames = config.base.machine.frames
        swapSlots = config.base.machine.swapSlots
        maxProcesses = config.base.machine.maxProcesses
        vmaPages = config.base.machine.vmaPages
        checks = config.base.machine.checks.rawValue
        buildConfiguration = HostInfo.buildConfiguration
    }
}

public enum HostInfo {
    public static var cpuCount: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    public static var cpuModel: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return String(ScaleLists.strip(line[line.index(after: colon)...]))
            }
        }
        return "unknown"
    }

    public static var kernel: String {
        var u = utsname()
        guard uname(&u) == 0 else { return "unknown" }
        func s<T>(_ v: T) -> String {
            withUnsafeBytes(of: v) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(s(u.sysname)) \(s(u.release)) \(s(u.version)) \(s(u.machine))"
    }

    /// How many cores this process really gets: the speedup of `threads`
    /// threads spinning at once over one thread alone (ideal: `threads`).
    /// On a shared machine it is often far lower than the CPU count, and
    /// every multi-thread figure should be read against it.
    public static func measuredParallelism(threads n: Int = 2, spins: Int = 40_000_000) -> Double {
        final class Sink: @unchecked Sendable { var v = [UInt64](repeating: 0, count: 64) }
        let sink = Sink()
        @inline(never) func spin(_ seed: UInt64) -> UInt64 {
            var x = seed
            for i in 0..<spins { x = (x &+ UInt64(truncatingIfNeeded: i)) ^ (x >> 3) }
            return x
        }
        func wall(_ k: Int) -> UInt64 {
            let t0 = monotonicNanos()
            var tids: [pthread_t] = []
            for i in 0..<k {
                tids.append(startThread { let r = spin(UInt64(i)); if r == 42 { sink.v[i] = r } })
            }
            for t in tids { joinThread(t) }
            return monotonicNanos() - t0
        }
        let one = min(wall(1), wall(1))
        let many = min(wall(n), wall(n))
        return Double(n) * Double(one) / Double(max(many, 1))
    }

    public static var buildConfiguration: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }
}

// MARK: The sweep

/// What `stress scale` sweeps.
public struct ScaleConfig: Sendable {
    public var threads: [Int] = [1, 2, 4]
    public var syncs: [ListSync] = [.rcu, .rwlock, .mutex]
    public var rcus: [RCUFlavor] = [.memb]
    public var repeats = 3
    public var seed: UInt64 = 1
    /// Machine sizes, mix, duration, checks: everything but threads, sync, rcu, seed.
    public var base = StressOptions()
    /// Walk-cost sweep group sizes (empty: none).
    public var groupSizes: [Int] = []
    /// Scales the walk-cost sweep's iteration counts (tests use a small one).
    public var walkWork: Double = 1

    public init() {}

    public var cpuCount: Int { HostInfo.cpuCount }

    /// Every run of the sweep, repetition outermost so that the variants
    /// alternate in time and slow drift of a shared machine hits them alike.
    public func points() -> [(sync: ListSync, rcu: RCUFlavor, threads: Int, repeatIndex: Int)] {
        var out: [(sync: ListSync, rcu: RCUFlavor, threads: Int, repeatIndex: Int)] = []
        for r in 0..<repeats {
            for rcu in rcus {
                for s in syncs {
                    for t in threads { out.append((sync: s, rcu: rcu, threads: t, repeatIndex: r)) }
                }
            }
        }
        return out
    }

    public func validate() -> String? {
        if threads.isEmpty || syncs.isEmpty || rcus.isEmpty { return "threads, sync and rcu lists must not be empty" }
        if repeats < 1 || repeats > 1000 { return "repeat must be 1...1000 (got \(repeats))" }
        var o = base
        o.threads = threads.max() ?? 1
        if let p = o.validate() { return p }
        for g in groupSizes where g < 1 || g > 4096 { return "group sizes must be 1...4096 (got \(g))" }
        return nil
    }
}

public enum ScaleSweep {
    /// Runs every point of the sweep, sequentially and quietly.
    public static func run(_ c: ScaleConfig, progress: ((Int, Int, ScaleRun) -> Void)? = nil) throws -> [ScaleRun] {
        let pts = c.points()
        var runs: [ScaleRun] = []
        for (n, p) in pts.enumerated() {
            var o = c.base
            o.threads = p.threads
            o.machine.sync = p.sync
            o.rcu = p.rcu
            o.seed = c.seed &+ UInt64(p.repeatIndex)
            o.quiet = true
            let r = try StressEngine.run(o, status: nil)
            let run = ScaleRun(sync: p.sync.rawValue, rcu: p.rcu.rawValue, threads: p.threads, repeatIndex: p.repeatIndex,
                               oversubscribed: p.threads > c.cpuCount, result: r)
            runs.append(run)
            progress?(n + 1, pts.count, run)
            if r.verdict == "STALL" { break }  // stuck threads are still running: stop here
        }
        return runs
    }

    /// The walk-cost sweep: for each sync choice and group size, a fresh
    /// machine with a group of G mms sharing 4 pages, walked and migrated on
    /// this thread.
    public static func walkCost(_ c: ScaleConfig, progress: ((WalkCostRun) -> Void)? = nil) throws -> [WalkCostRun] {
        var out: [WalkCostRun] = []
        for r in 0..<c.repeats {
            for s in c.syncs {
                for g in c.groupSizes {
                    let run = try walkCostPoint(sync: s, groupSize: g, repeatIndex: r, work: c.walkWork, seed: c.seed)
                    out.append(run)
                    progress?(run)
                }
            }
        }
        return out
    }

    public static func walkCostPoint(sync: ListSync, groupSize g: Int, repeatIndex: Int, work: Double, seed: UInt64) throws -> WalkCostRun {
        guard RCU.select(.memb) else { throw Machine.ConfigError.invalid("cannot switch RCU flavor while threads are registered") }
        let mc = MachineConfig.anongroupBench(groupSize: g, checks: .full, sync: sync)
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
    public static func encoder() -> JSONEncoder {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return enc
    }

    public static func decoder() -> JSONDecoder {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return dec
    }

    /// Writes runs.csv, runs.json, meta.json, report.html (and walkcost.csv /
    /// walkcost.json when the walk-cost sweep ran) into `dir`.
    public static func write(dir: String, runs: [ScaleRun], walkCost: [WalkCostRun], meta: ScaleMeta) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let url = URL(fileURLWithPath: dir)
        let enc = encoder()
        try Data(ScaleReport.csv(runs).utf8).write(to: url.appendingPathComponent("runs.csv"))
        try enc.encode(runs).write(to: url.appendingPathComponent("runs.json"))
        try enc.encode(meta).write(to: url.appendingPathComponent("meta.json"))
        if !walkCost.isEmpty {
            try Data(ScaleReport.walkCostCSV(walkCost).utf8).write(to: url.appendingPathComponent("walkcost.csv"))
            try enc.encode(walkCost).write(to: url.appendingPathComponent("walkcost.json"))
        }
        let html = ScaleReport.html(runs: runs, walkCost: walkCost, meta: meta)
        try Data(html.utf8).write(to: url.appendingPathComponent("report.html"))
    }
}
