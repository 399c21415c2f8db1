import ArgumentParser
import ConcurrentRmap
import Exploration
import Foundation
import Measurement
import RunEngine

// One declaration per command-line option. An option that several
// commands take is declared here once, as a small ParsableArguments group
// generic over `CommandDefaults`: its name, its range and its parsing live
// in one place, while each command keeps its own default (and --help
// states it, from the same value the command uses).

/// What one command gives the options it shares: its defaults, and the
/// words that say what an option means there.
protocol CommandDefaults {
    /// A run's settings where an option is not given.
    static var settings: RunSettings { get }
    /// Worker threads where --threads is not given, and their range.
    static var threads: Int { get }
    static var threadRange: ClosedRange<Int> { get }
    /// Repeats where --repeat is not given, and their range.
    static var repeats: Int { get }
    static var repeatRange: ClosedRange<Int> { get }
    /// --work's range (the default is 1 everywhere).
    static var workRange: ClosedRange<Double> { get }
    /// Executions and scheduling points of controlled runs.
    static var schedules: Int { get }
    static var steps: Int { get }
    /// The help text of `option` (its long name) in this command, given
    /// the standard text.
    static func help(_ option: String, _ standard: String) -> String
}

extension CommandDefaults {
    static var settings: RunSettings { RunSettings() }
    static var threads: Int { settings.threads }
    static var threadRange: ClosedRange<Int> { Limits.threads }
    static var repeats: Int { 5 }
    static var repeatRange: ClosedRange<Int> { 1...100 }
    static var workRange: ClosedRange<Double> { BenchOptions.workRange }
    static var schedules: Int { 10_000 }
    static var steps: Int { 3000 }
    static func help(_ option: String, _ standard: String) -> String { standard }
}

private func help<D: CommandDefaults>(_ d: D.Type, _ option: String, _ standard: String) -> ArgumentHelp {
    ArgumentHelp(D.help(option, standard))
}

// MARK: Options of one run

/// --scheme.
struct SchemeOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "scheme", "rmap design: \(SchemeKind.allCases.map(\.rawValue).joined(separator: " or ")) (default \(D.settings.scheme.rawValue))."))
    var scheme: String?

    func value() throws -> SchemeKind? { try scheme.map { try Parse.choice($0, "--scheme", "rmap scheme") } }

}

/// --avc-reuse on|off (anon-vma-chain only).
struct AVCReuseOption<D: CommandDefaults>: ParsableArguments {
    @Option(name: .customLong("avc-reuse"), help: help(D.self, "avc-reuse", "anon-vma-chain only: fork reuses an anon_vma with no active VMA and at most one child (on, the rule since 6.2) or always allocates one (off) (default on)."))
    var avcReuse: String?

    /// --avc-reuse as a setting, refused for any scheme but anon-vma-chain.
    func reuseValue(for scheme: SchemeKind) throws -> Bool? {
        try AVCReuseOption.parseReuse(avcReuse, scheme: scheme)
    }

    static func parseReuse(_ text: String?, scheme: SchemeKind) throws -> Bool? {
        guard let text else { return nil }
        guard scheme == .anonVMAChain else {
            throw ValidationError("--avc-reuse applies only to --scheme anon-vma-chain (got \(scheme.rawValue))")
        }
        switch text {
        case "on": return true
        case "off": return false
        default: throw ValidationError("--avc-reuse must be on or off (got '\(text)')")
        }
    }
}

/// --threads N (one count; `scale` and `schemes` take a list: SweepOptions).
struct ThreadsOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "threads", "Worker threads, \(Ranges.r(D.threadRange)) (default \(D.threads))."))
    var threads: String?

    func value(in range: ClosedRange<Int> = D.threadRange) throws -> Int? {
        try threads.map { try Parse.whole($0, "--threads", range) }
    }
}

/// --seed.
struct SeedOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "seed", "Seed for every worker's operation stream, 0...\(UInt64.max) (random when omitted; always printed)."))
    var seed: String?

    func value() throws -> UInt64? { try seed.map { try Parse.whole($0, "--seed", 0...UInt64.max) } }
}

/// --sync (one protection; `scale` and `schemes` take a list: SweepOptions).
struct SyncOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "sync", "rmap list protection (an anongroup's mms, an anon_vma's VMAs): rcu, or the rwlock/mutex baselines (default \(D.settings.sync.rawValue))."))
    var sync: String?

    func value() throws -> ListSync? { try sync.map { try Parse.choice($0, "--sync", "list protection") } }
}

/// --anon-vma-walk (the anon_vma schemes) and --anon-vma-merge (anon-vma).
struct AnonVMAOptions<D: CommandDefaults>: ParsableArguments {
    @Option(name: .customLong("anon-vma-walk"), help: help(D.self, "anon-vma-walk", "anon-vma and anon-vma-chain, with --sync rcu: locked (the kernel's: RCU to reach the anon_vma, then its (root's) lock for the re-check and the walk) or rcu-only (a what-if: the walk under RCU alone) (default \(D.settings.anonVmaWalk.rawValue))."))
    var anonVmaWalk: String?
    @Option(name: .customLong("anon-vma-merge"), help: help(D.self, "anon-vma-merge", "anon-vma only: on (a VMA's first fault reuses an adjacent compatible VMA's anon_vma, find_mergeable_anon_vma) or off (default \(D.settings.anonVmaMerge ? "on" : "off"))."))
    var anonVmaMerge: String?

    /// Applies the options given to `s`, whose scheme and sync are final.
    func apply(to s: inout RunSettings) throws {
        try AnonVMAOptions.apply(walk: anonVmaWalk, merge: anonVmaMerge, to: &s)
    }

    static func apply(walk: String?, merge: String?, to s: inout RunSettings) throws {
        if walk != nil, !s.scheme.hasAnonVMAWalk {
            throw ValidationError("--anon-vma-walk is an option of the anon-vma and anon-vma-chain schemes (got --scheme \(s.scheme.rawValue))")
        }
        if merge != nil, s.scheme != .anonVma {
            throw ValidationError("--anon-vma-merge is an option of the anon-vma scheme (got --scheme \(s.scheme.rawValue))")
        }
        if let walk {
            s.anonVmaWalk = try Parse.choice(walk, "--anon-vma-walk", "anon_vma walk")
            if s.anonVmaWalk == .rcuOnly && s.sync != .rcu {
                throw ValidationError("--anon-vma-walk rcu-only needs --sync rcu (got --sync \(s.sync.rawValue))")
            }
        }
        if let merge {
            switch merge {
            case "on": s.anonVmaMerge = true
            case "off": s.anonVmaMerge = false
            default: throw ValidationError("--anon-vma-merge must be on or off (got '\(merge)')")
            }
        }
    }
}

/// --mix.
struct MixOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "mix", "Operation weights NAME=WEIGHT,... over \(OpKind.allCases.map(\.name).joined(separator: ", ")); weights 0...1000000; or a named mix: \(OperationMix.named.map(\.name).joined(separator: ", "))."))
    var mix: String?

    /// The mix as given, checked.
    func value() throws -> String? {
        guard let mix else { return nil }
        do { _ = try OperationMix(parsing: mix) } catch { throw ValidationError("--mix: \(error)") }
        return mix
    }
}

/// --checks.
struct ChecksOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "checks", "Always-on checks: full, fast or off (audits and the leak check always run; default \(D.settings.checks.rawValue))."))
    var checks: String?

    func value() throws -> CheckLevel? { try checks.map { try Parse.choice($0, "--checks", "check level") } }
}

/// --duration.
struct DurationOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "duration", "Seconds measured after the warm-up, \(Ranges.s(Limits.duration)) (default \(Parse.number(D.settings.durationS)); with --ops, an upper bound, default a day)."))
    var duration: String?

    func value() throws -> Double? { try duration.map { try Parse.seconds($0, "--duration", Limits.duration) } }
}

/// --warmup.
struct WarmupOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "warmup", "Seconds of warm-up before measuring, \(Ranges.s(Limits.warmup)) (default \(Parse.number(D.settings.warmupS)))."))
    var warmup: String?

    func value() throws -> Double? { try warmup.map { try Parse.seconds($0, "--warmup", Limits.warmup) } }
}

/// --inject.
struct InjectOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "inject", "Plant one known bug (none, or a name of --list-injections)."))
    var inject: String?

    func value() throws -> Injection? { try inject.map { try Parse.choice($0, "--inject", "injection") } }
}

/// --perturb / --no-perturb.
struct PerturbOption<D: CommandDefaults>: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: help(D.self, "perturb", "Random short delays at race windows (seeded; default \(D.settings.perturb ? "on" : "off"))."))
    var perturb: Bool = D.settings.perturb
}

/// --recycling.
struct RecyclingOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "recycling", "When retired mm, group, anon_vma and VMA slots are freed: hunt (a few operations and one grace period after their unlink, reused at once: finds use-after-free races) or throughput (large batches thousands of operations later) (default \(D.settings.recycling.rawValue))."))
    var recycling: String?

    func value() throws -> Recycling? { try recycling.map { try Parse.choice($0, "--recycling", "recycling mode") } }
}

/// --libraries, --i-mmap, --inodes and --shmem-inodes: the file side of a machine.
struct FileOptions<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "libraries", "Shared libraries every process image maps (text and data, one private file mapping each), \(Ranges.r(MachineConfig.librariesRange)), at most --inodes (default \(D.settings.libraries))."))
    var libraries: String?
    @Option(name: .customLong("i-mmap"), help: help(D.self, "i-mmap", "Each inode's i_mmap: \(IMmapKind.allCases.map(\.rawValue).joined(separator: " or ")) (tree: an interval tree keyed by file range, as vma_interval_tree) (default \(D.settings.iMmap.rawValue))."))
    var iMmap: String?
    @Option(help: help(D.self, "inodes", "File inodes the machine has, \(Ranges.r(MachineConfig.inodesRange)): fewer make truncate, faults and the i_mmap walks meet on one file more often (default \(D.settings.inodes))."))
    var inodes: String?
    @Option(name: .customLong("shmem-inodes"), help: help(D.self, "shmem-inodes", "Shmem inodes (the pool behind MAP_SHARED|MAP_ANONYMOUS mappings), \(Ranges.r(MachineConfig.shmemInodesRange)); an mmap-shmem that finds the pool empty fails (default \(D.settings.shmemInodes))."))
    var shmemInodes: String?

    /// The options as given.
    var values: FileOptionValues { FileOptionValues(libraries: libraries, iMmap: iMmap, inodes: inodes, shmemInodes: shmemInodes) }

    /// Applies the options given to `s`.
    func apply(to s: inout RunSettings) throws { try values.apply(to: &s) }
}

/// The file options as given (strings), parsed in one place for every
/// command that takes them.
struct FileOptionValues {
    var libraries: String? = nil, iMmap: String? = nil, inodes: String? = nil, shmemInodes: String? = nil

    func apply(to s: inout RunSettings) throws {
        if let v = libraries { s.libraries = try Parse.whole(v, "--libraries", MachineConfig.librariesRange) }
        if let v = iMmap { s.iMmap = try Parse.choice(v, "--i-mmap", "i_mmap structure") }
        if let v = inodes { s.inodes = try Parse.whole(v, "--inodes", MachineConfig.inodesRange) }
        if let v = shmemInodes { s.shmemInodes = try Parse.whole(v, "--shmem-inodes", MachineConfig.shmemInodesRange) }
    }
}

/// --processes.
struct ProcessesOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "processes", "Process-table entries, the most processes alive at once, \(Ranges.r(Limits.processes)) (default \(D.settings.processes))."))
    var processes: String?

    func value() throws -> Int? { try processes.map { try Parse.whole($0, "--processes", Limits.processes) } }
}

/// The settings of one stress run but its thread count, list protection
/// and RCU flavor (which `scale` sweeps), as options: `run` and `scale`
/// take them all. Every option is optional: what is not given comes from
/// `--options-from FILE` (a result file of an earlier run) or from the
/// command's defaults, so a run can be rebuilt from its own record and then
/// varied.
struct SettingsOptions<D: CommandDefaults>: ParsableArguments {
    @OptionGroup var scheme: SchemeOption<D>
    @OptionGroup var avcReuse: AVCReuseOption<D>
    @OptionGroup var duration: DurationOption<D>
    @Option(help: help(D.self, "ops", "End after this many completed operations, \(Ranges.r(Limits.ops)); the time they take is the measurement."))
    var ops: String?
    @OptionGroup var warmup: WarmupOption<D>
    @OptionGroup var seed: SeedOption<D>
    @OptionGroup var mix: MixOption<D>
    @Option(help: help(D.self, "workload", "Named workload: \(WorkloadShape.allCases.map(\.rawValue).joined(separator: ", ")) (default \(D.settings.workload.rawValue)). aim7: a parent per worker forks up to 1,000 children that each write 3/4 of its first VMA, then all exit; fork-chain: each process forks the next, which writes a page, and exits; zygote: a parent with every VMA written forks long-lived children that write one page per VMA and keep running; fork-heavy: a mix of fault=40,fork=25,exit=25. The scripts run one step per process operation the mix draws; reclaim and migration walk their pages."))
    var workload: String?
    @OptionGroup var checks: ChecksOption<D>
    @Option(help: help(D.self, "frames", "Page frames, \(Ranges.r(Limits.frames)) (default \(D.settings.frames); smaller than demand, so reclaim runs)."))
    var frames: String?
    @Option(name: .customLong("swap-slots"), help: help(D.self, "swap-slots", "Swap slots, \(Ranges.r(Limits.swapSlots)) (default \(D.settings.swapSlots))."))
    var swapSlots: String?
    @OptionGroup var processes: ProcessesOption<D>
    @Option(help: help(D.self, "population", "Processes started up front and held by the workload, 0 (half the table) or 1...--processes (default \(D.settings.population))."))
    var population: String?
    @Option(name: .customLong("family-size"), help: help(D.self, "family-size", "Most mms related by fork without exec; a fork beyond it execs the child. 0 (no limit) or 1...65536 (default \(D.settings.familySize))."))
    var familySize: String?
    @Option(help: help(D.self, "locality", "Percent of process operations a worker spends on its own share of the process table and memory node, 0...100 (default \(D.settings.locality)\(D.settings.locality == 0 ? ": any process every time, so workers meet in the same mms; scale measures at 100" : ""))."))
    var locality: String?
    @Option(name: .customLong("vma-pages"), help: help(D.self, "vma-pages", "Pages per VMA, a divisor of 512 (default \(D.settings.vmaPages))."))
    var vmaPages: String?
    @Option(name: .customLong("vmas-per-process"), help: help(D.self, "vmas-per-process", "VMAs of a new process, \(Ranges.r(Limits.vmasPerProcess)) (default \(D.settings.vmasPerProcess))."))
    var vmasPerProcess: String?
    @Option(name: .customLong("audit-interval"), help: help(D.self, "audit-interval", "Seconds between stop-the-world audits: 0 (the final audit only) or \(Ranges.s(Limits.auditInterval)) (default \(Parse.number(D.settings.auditIntervalS)))."))
    var auditInterval: String?
    @Option(name: .customLong("stall-timeout"), help: help(D.self, "stall-timeout", "Seconds without progress that make a stall, \(Ranges.s(Limits.stallTimeout)) (default \(Parse.number(D.settings.stallTimeoutS)))."))
    var stallTimeout: String?
    @Option(name: .customLong("gp-probe-interval"), help: help(D.self, "gp-probe-interval", "Seconds between the watchdog's synchronize_rcu probes: 0 (none) or \(Ranges.s(Limits.gpProbeInterval)) (default \(Parse.number(D.settings.gpProbeIntervalS)))."))
    var gpProbeInterval: String?
    @Option(name: .customLong("latency-sample"), help: help(D.self, "latency-sample", "Time one operation in K: 0 (none) or 1...1000000 (default \(D.settings.latencySample))."))
    var latencySample: String?
    @Option(name: .customLong("sample-interval"), help: help(D.self, "sample-interval", "Seconds between the steady-state samples, \(Ranges.s(Limits.sampleInterval)) (default \(Parse.number(D.settings.sampleIntervalS)))."))
    var sampleInterval: String?
    @OptionGroup var inject: InjectOption<D>
    @OptionGroup var anonVma: AnonVMAOptions<D>
    @OptionGroup var perturb: PerturbOption<D>
    @OptionGroup var recycling: RecyclingOption<D>
    @Flag(name: .customLong("keep-going"), help: help(D.self, "keep-going", "Count violations instead of stopping at the first."))
    var keepGoing = false
    @Flag(help: help(D.self, "pin", "Bind worker i to the i-th CPU this process may use (round robin)."))
    var pin = false
    @Option(name: .customLong("pin-first"), help: help(D.self, "pin-first", "With --pin, the CPU slot of worker 0 (default 0): worker i takes slot (N + i) mod CPUs."))
    var pinFirst: String?
    @OptionGroup var file: FileOptions<D>
    @Option(name: .customLong("options-from"), help: help(D.self, "options-from", "Start from the settings recorded in a result file (--json of an earlier run); options given here override them."))
    var optionsFrom: String?

    /// The options as given, over this command's defaults.
    var input: SettingsInput {
        var i = inputWithoutReuse
        i.avcReuse = avcReuse.avcReuse
        i.file = file.values
        return i
    }

    private var inputWithoutReuse: SettingsInput {
        SettingsInput(base: D.settings, scheme: scheme.scheme, threads: nil, duration: duration.duration, ops: ops,
                      warmup: warmup.warmup, seed: seed.seed, mix: mix.mix, workload: workload, rcu: nil, sync: nil, checks: checks.checks,
                      frames: frames, swapSlots: swapSlots, processes: processes.processes,
                      population: population, familySize: familySize, locality: locality, vmaPages: vmaPages,
                      vmasPerProcess: vmasPerProcess,
                      auditInterval: auditInterval, stallTimeout: stallTimeout, gpProbeInterval: gpProbeInterval,
                      latencySample: latencySample, sampleInterval: sampleInterval, inject: inject.inject,
                      anonVmaWalk: anonVma.anonVmaWalk, anonVmaMerge: anonVma.anonVmaMerge, perturb: perturb.perturb,
                      recycling: recycling.recycling, keepGoing: keepGoing, pin: pin, pinFirst: pinFirst, optionsFrom: optionsFrom)
    }

    /// The settings these options describe.
    func settings() throws -> RunSettings { try input.settings() }
}

/// `stress run`'s options: one run's settings, its thread count, list
/// protection and RCU flavor included.
struct RunOptions: ParsableArguments {
    enum Defaults: CommandDefaults {}

    @OptionGroup var threads: ThreadsOption<Defaults>
    @Option(help: "liburcu flavor: memb, qsbr, mb or bp (default \(Defaults.settings.rcu.rawValue)).")
    var rcu: String?
    @OptionGroup var sync: SyncOption<Defaults>
    @OptionGroup var common: SettingsOptions<Defaults>

    /// The settings these options describe.
    func settings() throws -> RunSettings {
        var input = common.input
        input.threads = threads.threads
        input.rcu = rcu
        input.sync = sync.sync
        return try input.settings()
    }
}

// MARK: Sweeps, benchmarks, controlled runs

/// --repeat.
struct RepeatOption<D: CommandDefaults>: ParsableArguments {
    @Option(name: .customLong("repeat"), help: help(D.self, "repeat", "Runs per point, \(Ranges.r(D.repeatRange)) (default \(D.repeats))."))
    var repeats: String?

    func value() throws -> Int { try repeats.map { try Parse.whole($0, "--repeat", D.repeatRange) } ?? D.repeats }
}

/// --work.
struct WorkOption<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "work", "Scale every iteration count by this factor, \(Ranges.s(D.workRange)) (default 1)."))
    var work: String?

    func value() throws -> Double? { try work.map { try Parse.decimal($0, "--work", D.workRange) } }
}

/// What a sweep (`scale`, `schemes`) varies: thread counts, list
/// protections, repeats.
protocol SweepDefaults: CommandDefaults {
    static var threadList: String { get }
}

struct SweepOptions<D: SweepDefaults>: ParsableArguments {
    @Option(name: .customLong("threads"), help: help(D.self, "threads", "Worker thread counts, e.g. \(D.threadList) (each \(Ranges.r(Limits.threads)))."))
    var threadList: String = D.threadList
    @Option(name: .customLong("sync"), help: help(D.self, "sync", "List protections to compare: rcu,rwlock,mutex."))
    var syncList: String = "rcu,rwlock,mutex"
    @OptionGroup var repeats: RepeatOption<D>

    func threads() throws -> [Int] { try ScaleLists.ints(threadList, option: "threads", range: Limits.threads) }
    func syncs() throws -> [ListSync] { try ScaleLists.names(syncList, option: "sync", as: ListSync.self) }
}

/// --schedules, --steps and --strategy: how controlled runs explore.
struct ScheduleOptions<D: CommandDefaults>: ParsableArguments {
    @Option(help: help(D.self, "schedules", "Executions to run at most, \(Ranges.r(ControlledLimits.schedules)) (default \(D.schedules))."))
    var schedules: String?
    @Option(help: help(D.self, "steps", "Scheduling points per execution before workers start no new operation, \(Ranges.r(ControlledLimits.steps)) (default \(D.steps))."))
    var steps: String?
    @Option(help: help(D.self, "strategy", "How the next thread is picked: random, or pct:D (PCT with D priority change points, D \(Ranges.r(ControlledLimits.pctDepth))) (default random)."))
    var strategy: String?

    /// True when any of them is given.
    var given: Bool { schedules != nil || steps != nil || strategy != nil }

    func schedulesValue() throws -> Int { try schedules.map { try Parse.whole($0, "--schedules", ControlledLimits.schedules) } ?? D.schedules }
    func stepsValue() throws -> Int { try steps.map { try Parse.whole($0, "--steps", ControlledLimits.steps) } ?? D.steps }

    func strategyValue() throws -> ScheduleStrategy {
        guard let text = strategy else { return .random }
        if text == "random" { return .random }
        if text.hasPrefix("pct:") {
            let d = try Parse.whole(String(text.dropFirst(4)), "--strategy pct:D", ControlledLimits.pctDepth)
            return .pct(depth: d)
        }
        throw ValidationError("--strategy must be random or pct:D with D \(Ranges.r(ControlledLimits.pctDepth)) (got '\(text)')")
    }
}

/// Option values as given (nil: not given), turned into checked settings.
/// Plain values, so that `scale` can fill in its own defaults.
struct SettingsInput {
    /// What is not given (and not in --options-from): the command's defaults.
    var base = RunSettings()
    var scheme, threads, duration, ops, warmup, seed, mix, workload, rcu, sync, checks, frames, swapSlots, processes: String?
    var population, familySize, locality, vmaPages, vmasPerProcess, auditInterval, stallTimeout, gpProbeInterval: String?
    var latencySample, sampleInterval, inject: String?
    var anonVmaWalk, anonVmaMerge: String?
    /// The --perturb flag's value (its default is the command's own).
    var perturb: Bool? = nil
    var recycling: String? = nil
    var keepGoing = false, pin = false
    var pinFirst: String? = nil
    var optionsFrom: String?
    var avcReuse: String? = nil
    var file = FileOptionValues()

    func settings() throws -> RunSettings {
        var s = base
        var seedGiven = false
        if let path = optionsFrom {
            s = try SettingsInput.load(path)
            seedGiven = true
        }
        if let v = scheme { s.scheme = try Parse.choice(v, "--scheme", "rmap scheme") }
        if let v = threads { s.threads = try Parse.whole(v, "--threads", Limits.threads) }
        if let v = ops {
            s.ops = try Parse.whole(v, "--ops", Limits.ops)
            if duration == nil && optionsFrom == nil { s.durationS = 86_400 }
        }
        if let v = duration { s.durationS = try Parse.seconds(v, "--duration", Limits.duration) }
        if let v = warmup { s.warmupS = try Parse.decimal(v, "--warmup", Limits.warmup, unit: "seconds") }
        if let v = seed { s.seed = try Parse.whole(v, "--seed", 0...UInt64.max); seedGiven = true }
        if !seedGiven { s.seed = freshSeed() }
        if let v = mix {
            do { _ = try OperationMix(parsing: v) } catch { throw ValidationError("--mix: \(error)") }
            s.mix = v
        }
        if let v = workload {
            s.workload = try Parse.choice(v, "--workload", "workload")
            if s.workload == .forkHeavy {
                guard mix == nil else { throw ValidationError("--workload fork-heavy is a mix of its own; give --mix or --workload, not both") }
                s.mix = WorkloadShape.forkHeavyMix
            }
            if s.workload.isScript {
                if population != nil { throw ValidationError("--population has no effect with --workload \(v): its script starts its own processes") }
                if familySize != nil { throw ValidationError("--family-size has no effect with --workload \(v): its script never execs") }
            }
        }
        if let v = rcu { s.rcu = try Parse.choice(v, "--rcu", "RCU flavor") }
        if let v = sync { s.sync = try Parse.choice(v, "--sync", "list protection") }
        if let v = checks { s.checks = try Parse.choice(v, "--checks", "check level") }
        if let v = frames { s.frames = try Parse.whole(v, "--frames", Limits.frames) }
        if let v = swapSlots { s.swapSlots = try Parse.whole(v, "--swap-slots", Limits.swapSlots) }
        if let v = processes { s.processes = try Parse.whole(v, "--processes", Limits.processes) }
        if let v = population { s.population = try Parse.whole(v, "--population", 0...Limits.processes.upperBound) }
        if let v = familySize { s.familySize = try Parse.whole(v, "--family-size", Limits.familySize) }
        if let v = locality { s.locality = try Parse.whole(v, "--locality", Limits.locality, "percent") }
        if let v = vmaPages { s.vmaPages = try Parse.whole(v, "--vma-pages", 1...512) }
        if let v = vmasPerProcess { s.vmasPerProcess = try Parse.whole(v, "--vmas-per-process", Limits.vmasPerProcess) }
        if let v = auditInterval {
            s.auditIntervalS = try Parse.seconds(v, "--audit-interval", Limits.auditInterval, zero: "the final audit only")
        }
        if let v = stallTimeout { s.stallTimeoutS = try Parse.seconds(v, "--stall-timeout", Limits.stallTimeout) }
        if let v = gpProbeInterval {
            s.gpProbeIntervalS = try Parse.seconds(v, "--gp-probe-interval", Limits.gpProbeInterval, zero: "no probe")
        }
        if let v = latencySample { s.latencySample = try Parse.whole(v, "--latency-sample", Limits.latencySample) }
        if let v = sampleInterval { s.sampleIntervalS = try Parse.seconds(v, "--sample-interval", Limits.sampleInterval) }
        if let v = inject { s.inject = try Parse.choice(v, "--inject", "injection") }
        try AnonVMAOptions<RunOptions.Defaults>.apply(walk: anonVmaWalk, merge: anonVmaMerge, to: &s)
        // A flag has no "not given": over --options-from, only a value other
        // than the command's default counts as given.
        if let perturb, optionsFrom == nil || perturb != base.perturb { s.perturb = perturb }
        if let v = recycling { s.recycling = try Parse.choice(v, "--recycling", "recycling mode") }
        if keepGoing { s.keepGoing = true }
        if pin { s.pin = true }
        if let v = pinFirst {
            guard s.pin else { throw ValidationError("--pin-first needs --pin") }
            s.pinFirst = try Parse.whole(v, "--pin-first", 0...Limits.threads.upperBound)
        }
        try file.apply(to: &s)
        if let r = try AVCReuseOption<RunOptions.Defaults>.parseReuse(avcReuse, scheme: s.scheme) { s.anonVmaReuse = r }
        if !s.anonVmaReuse && s.scheme != .anonVMAChain {
            throw ValidationError("--avc-reuse off applies only to --scheme anon-vma-chain (got \(s.scheme.rawValue))")
        }
        if let problem = s.validate() { throw ValidationError(problem) }
        return s
    }

    /// The settings recorded in a result file (or a bare settings object).
    static func load(_ path: String) throws -> RunSettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--options-from: cannot read '\(path)'")
        }
        // A result file (a verdict and its settings), or a bare settings
        // object; nothing else that happens to hold "settings" (a schedule
        // file, a campaign record), and no settings key this build does not
        // know (a misspelt one would silently fall back to a default).
        do { _ = try StrictJSON.parse(data) } catch {
            throw ValidationError("--options-from: '\(path)': \(error)")
        }
        guard let top = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationError("--options-from: '\(path)' is not a stress result file (not a JSON object)")
        }
        let isResult = top["verdict"] != nil && top["settings"] is [String: Any]
        guard let settings = isResult ? top["settings"] as? [String: Any] : (top["verdict"] == nil && top["format"] == nil ? top : nil) else {
            throw ValidationError("--options-from: '\(path)' is not a stress result file or a settings object")
        }
        let known = Set((try? JSONSerialization.jsonObject(with: ResultFile.encoder().encode(RunSettings())) as? [String: Any])?.keys.map { $0 } ?? []).union(["ops"])
        if let unknown = settings.keys.sorted().first(where: { !known.contains($0) }) {
            throw ValidationError("--options-from: '\(path)' has a settings key this build does not know: '\(unknown)'")
        }
        do {
            return try ResultFileCheck.decode(RunSettings.self, from: JSONSerialization.data(withJSONObject: settings))
        } catch {
            throw ValidationError("--options-from: '\(path)': its settings do not decode: \(error)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A seed for runs that were given none: wall-clock time and the pid.
func freshSeed() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_007 &+ UInt64(ts.tv_nsec) &+ UInt64(getpid())
}

/// ArgumentParser takes "-1" after `--threads` for another option and
/// answers "Missing value for '--threads'". A negative number right after
/// a long option is attached to it ("--threads=-1"), so the option's own
/// check answers with its range. Stops at "--".
enum NegativeValues {
    static func attached(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { out += args[i...]; break }
            if a.hasPrefix("--"), !a.contains("="), i + 1 < args.count, isNegativeNumber(args[i + 1]) {
                out.append(a + "=" + args[i + 1])
                i += 2
                continue
            }
            out.append(a)
            i += 1
        }
        return out
    }

    static func isNegativeNumber(_ s: String) -> Bool {
        guard s.count > 1, s.first == "-", let second = s.dropFirst().first else { return false }
        return second.isNumber || second == "."
    }
}
