import ConcurrentRmap

/// The allowed range of every numeric setting of a run. The command line's
/// checks, its `--help` text and `RunSettings.validate` all read them from
/// here, so a limit is stated once.
public enum Limits {
    public static let threads = 1...4096
    /// Seconds: 0.1 s up to a week.
    public static let duration = 0.1...604_800.0
    public static let ops: ClosedRange<UInt64> = 1...1_000_000_000_000
    public static let warmup = 0.0...3600.0
    /// Seconds between audits; 0 (final audit only) is allowed besides.
    public static let auditInterval = 0.1...3600.0
    /// Below a second, scheduling noise on a loaded machine reads as a stall.
    public static let stallTimeout = 1.0...3600.0
    /// Seconds between grace-period probes; 0 (no probe) is allowed besides.
    public static let gpProbeInterval = 0.001...60.0
    /// Time one operation in K (0: none, 1: every operation).
    public static let latencySample = 0...1_000_000
    /// Most mms related by fork without exec (0: no limit).
    public static let familySize = 0...65_536
    /// Percent of process operations a worker spends on its own share of
    /// the process table.
    public static let locality = 0...100
    public static let sampleInterval = 0.1...60.0
    public static let frames = MachineConfig.framesRange
    public static let swapSlots = MachineConfig.swapSlotsRange
    public static let processes = MachineConfig.processesRange
    public static let vmasPerProcess = 1...(MachineConfig.maxVMAs / 2)
    /// Workers that keep latency histograms (each holds one per operation
    /// kind); the others count but do not time, which keeps a 4096-thread
    /// run's memory bounded.
    public static let timedWorkers = 256
}

/// Every setting of one stress run: what `--json` records under
/// `settings`, and what `stress run --options-from FILE` reads back, so a
/// run can be rebuilt from its own result file. Keys are snake_case
/// (`duration_s`); a key missing from an older file takes its default.
public struct RunSettings: Codable, Sendable, Equatable {
    public var threads = 4
    /// The rmap design under test.
    public var scheme: SchemeKind = .anongroup
    /// Seconds of measurement after the warm-up. With `ops` set it is only
    /// an upper bound (default: a day).
    public var durationS: Double = 10
    /// End after this many completed operations (all workers together);
    /// the time they take is then the measurement.
    public var ops: UInt64?
    /// Seconds run before measuring starts (not counted).
    public var warmupS: Double = 0
    public var seed: UInt64 = 1
    public var mix = OperationMix.default.description
    public var rcu: RCUFlavor = .memb
    public var sync: ListSync = .rcu
    /// anon_vma only: the walk under `sync` rcu, the kernel's locked one or
    /// the RCU-only what-if (`MachineConfig.anonVmaWalk`).
    public var anonVmaWalk: AnonVMAWalk = .locked
    /// anon_vma only: find_mergeable_anon_vma reuse (`MachineConfig.anonVmaMerge`).
    public var anonVmaMerge = true
    public var checks: CheckLevel = .full
    public var frames = MachineConfig().frames
    public var swapSlots = MachineConfig().swapSlots
    /// Process-table entries: the most processes alive at once.
    public var processes = MachineConfig().maxProcesses
    /// Processes started before the workers and held by the workload
    /// (fork and exit keep the count near it); 0 means half the table.
    public var population = 0
    /// Most mms of one fork family (related by fork without exec): a fork
    /// that would grow a family past it is followed by exec in the child.
    /// 0: families grow without limit.
    public var familySize = 16
    /// Percent of process operations (and migrations) a worker spends on
    /// its own share of the process table, as a scheduler keeps a task on
    /// its CPU; the rest go to any process. 0 (the default of `run`, which
    /// hunts races): every operation picks any process, so workers meet in
    /// the same mms as often as possible. `scale` measures at 100.
    public var locality = 0
    public var vmaPages = MachineConfig().vmaPages
    public var vmasPerProcess = MachineConfig().vmasPerProcess
    public var auditIntervalS: Double = 2
    public var stallTimeoutS: Double = 10
    /// Seconds between the watchdog's synchronize_rcu probes; 0: none.
    public var gpProbeIntervalS: Double = 0.1
    /// Time one operation in this many (0: none).
    public var latencySample = 8
    /// Seconds between the samples of the steady-state record.
    public var sampleIntervalS: Double = 1
    /// Bind worker i to usable CPU (pinFirst + i) mod (usable CPUs).
    public var pin = false
    /// With `pin`, the usable-CPU slot of worker 0: `scale` gives each of
    /// its independent ceiling processes its own, so that they do not all
    /// bind to the first CPU.
    public var pinFirst = 0
    public var keepGoing = false
    public var inject: Injection = .none
    /// Race hunting by default: random delays at race windows, and retired
    /// slots freed as early as RCU allows (`Recycling.hunt`). Measuring
    /// commands (scale, schemes, bench) turn both off.
    public var perturb = true
    public var recycling: Recycling = .hunt
    /// The named workload (`WorkloadShape`): the random mix, or a script.
    public var workload: WorkloadShape = .mix
    /// anon-vma-chain only: fork may reuse an anon_vma (`--avc-reuse`,
    /// `MachineConfig.anonVmaReuse`); other schemes refuse false.
    public var anonVmaReuse = true
    /// Shared libraries every process image maps (`MachineConfig.libraries`).
    /// A result file without the key ran before libraries existed: 0.
    public var libraries = 1
    /// The i_mmap structure (`MachineConfig.iMmap`).
    public var iMmap: IMmapKind = .list
    /// File inodes and the shmem inode pool (`MachineConfig.inodes`,
    /// `.shmemInodes`).
    public var inodes = MachineConfig().inodes
    public var shmemInodes = MachineConfig().shmemInodes

    public init() {}

    /// Processes the workload starts up front and holds.
    public var effectivePopulation: Int { population > 0 ? min(population, processes) : max(1, processes / 2) }

    public var machineConfig: MachineConfig {
        var c = MachineConfig()
        c.scheme = scheme
        c.frames = frames
        c.swapSlots = swapSlots
        c.maxProcesses = processes
        c.vmaPages = vmaPages
        c.vmasPerProcess = vmasPerProcess
        c.sync = sync
        c.anonVmaWalk = anonVmaWalk
        c.anonVmaMerge = anonVmaMerge
        c.checks = checks
        c.injection = inject
        c.perturb = perturb
        c.recycling = recycling
        c.anonVmaReuse = anonVmaReuse
        c.libraries = libraries
        c.iMmap = iMmap
        c.inodes = inodes
        c.shmemInodes = shmemInodes
        return c
    }

    public func operationMix() throws -> OperationMix { try OperationMix(parsing: mix) }

    /// The `stress run` flags that rebuild exactly these settings (every
    /// setting spelled out, so a default changed later does not change the
    /// run): the reproduce line of a failure, and how `scale` and `selftest`
    /// start their children.
    public var arguments: [String] {
        var a = ["--scheme", scheme.rawValue, "--threads", "\(threads)", "--duration", "\(durationS)"]
        if let ops { a += ["--ops", "\(ops)"] }
        a += ["--warmup", "\(warmupS)", "--seed", "\(seed)", "--mix", mix, "--rcu", rcu.rawValue, "--sync", sync.rawValue,
              "--checks", checks.rawValue, "--frames", "\(frames)", "--swap-slots", "\(swapSlots)",
              "--processes", "\(processes)", "--population", "\(population)", "--family-size", "\(familySize)",
              "--locality", "\(locality)",
              "--vma-pages", "\(vmaPages)", "--vmas-per-process", "\(vmasPerProcess)",
              "--audit-interval", "\(auditIntervalS)", "--stall-timeout", "\(stallTimeoutS)",
              "--gp-probe-interval", "\(gpProbeIntervalS)", "--latency-sample", "\(latencySample)",
              "--sample-interval", "\(sampleIntervalS)", "--inject", inject.rawValue]
        // Options of the anon_vma schemes only (refused for the others).
        if scheme.hasAnonVMAWalk { a += ["--anon-vma-walk", anonVmaWalk.rawValue] }
        if scheme == .anonVma { a += ["--anon-vma-merge", anonVmaMerge ? "on" : "off"] }
        if pin { a.append("--pin") }
        if pin && pinFirst != 0 { a += ["--pin-first", "\(pinFirst)"] }
        if keepGoing { a.append("--keep-going") }
        a.append(perturb ? "--perturb" : "--no-perturb")
        a += ["--recycling", recycling.rawValue]
        if scheme == .anonVMAChain { a += ["--avc-reuse", anonVmaReuse ? "on" : "off"] }
        a += ["--libraries", "\(libraries)", "--i-mmap", iMmap.rawValue, "--inodes", "\(inodes)", "--shmem-inodes", "\(shmemInodes)"]
        return a
    }

    /// A one-line reason when the settings are out of range or cannot work
    /// together, naming the allowed range.
    public func validate() -> String? {
        func outside<T: Comparable & CustomStringConvertible>(_ name: String, _ v: T, _ r: ClosedRange<T>, _ unit: String = "") -> String? {
            r.contains(v) ? nil : "\(name) must be \(r.lowerBound)...\(r.upperBound)\(unit) (got \(v))"
        }
        if let p = outside("threads", threads, Limits.threads) { return p }
        if !durationS.isFinite || !Limits.duration.contains(durationS) {
            return "duration must be \(Limits.duration.lowerBound)...\(Int(Limits.duration.upperBound)) seconds (got \(durationS))"
        }
        if let ops, let p = outside("ops", ops, Limits.ops) { return p }
        if !warmupS.isFinite || !Limits.warmup.contains(warmupS) {
            return "warmup must be 0...\(Int(Limits.warmup.upperBound)) seconds (got \(warmupS))"
        }
        do { _ = try operationMix() } catch { return "\(error)" }
        if !auditIntervalS.isFinite || !(auditIntervalS == 0 || Limits.auditInterval.contains(auditIntervalS)) {
            return "audit interval must be 0 (final audit only) or \(Limits.auditInterval.lowerBound)...\(Int(Limits.auditInterval.upperBound)) seconds (got \(auditIntervalS))"
        }
        if !stallTimeoutS.isFinite || !Limits.stallTimeout.contains(stallTimeoutS) {
            return "stall timeout must be \(Int(Limits.stallTimeout.lowerBound))...\(Int(Limits.stallTimeout.upperBound)) seconds (got \(stallTimeoutS))"
        }
        if !gpProbeIntervalS.isFinite || !(gpProbeIntervalS == 0 || Limits.gpProbeInterval.contains(gpProbeIntervalS)) {
            return "grace-period probe interval must be 0 (off) or \(Limits.gpProbeInterval.lowerBound)...\(Int(Limits.gpProbeInterval.upperBound)) seconds (got \(gpProbeIntervalS))"
        }
        if let p = outside("latency sample", latencySample, Limits.latencySample) { return p }
        if let p = outside("family size", familySize, Limits.familySize) { return p }
        if let p = outside("locality", locality, Limits.locality, "%") { return p }
        if !sampleIntervalS.isFinite || !Limits.sampleInterval.contains(sampleIntervalS) {
            return "sample interval must be \(Limits.sampleInterval.lowerBound)...\(Int(Limits.sampleInterval.upperBound)) seconds (got \(sampleIntervalS))"
        }
        if pinFirst < 0 || pinFirst > Limits.threads.upperBound {
            return "pin-first must be 0...\(Limits.threads.upperBound) (got \(pinFirst))"
        }
        if population < 0 || population > processes {
            return "population must be 0 (half the process table) or 1...\(processes) (got \(population))"
        }
        if let m = machineConfig.validate() { return m }
        return nil
    }

    enum CodingKeys: String, CodingKey {
        case scheme, threads, durationS, ops, warmupS, seed, mix, rcu, sync, checks, frames, swapSlots, processes, population
        case familySize, locality, vmaPages, vmasPerProcess, auditIntervalS, stallTimeoutS, gpProbeIntervalS, latencySample
        case sampleIntervalS, pin, pinFirst, keepGoing, inject, perturb, recycling, workload
        case anonVmaWalk, anonVmaMerge, anonVmaReuse
        case libraries, iMmap, inodes, shmemInodes
    }

    /// Missing keys keep their defaults, so older result files still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func v<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = RunSettings()
        scheme = try v(.scheme, d.scheme)
        threads = try v(.threads, d.threads)
        durationS = try v(.durationS, d.durationS)
        ops = try c.decodeIfPresent(UInt64.self, forKey: .ops)
        warmupS = try v(.warmupS, d.warmupS)
        seed = try v(.seed, d.seed)
        mix = try v(.mix, d.mix)
        rcu = try v(.rcu, d.rcu)
        sync = try v(.sync, d.sync)
        checks = try v(.checks, d.checks)
        frames = try v(.frames, d.frames)
        swapSlots = try v(.swapSlots, d.swapSlots)
        processes = try v(.processes, d.processes)
        population = try v(.population, d.population)
        familySize = try v(.familySize, d.familySize)
        locality = try v(.locality, d.locality)
        vmaPages = try v(.vmaPages, d.vmaPages)
        vmasPerProcess = try v(.vmasPerProcess, d.vmasPerProcess)
        auditIntervalS = try v(.auditIntervalS, d.auditIntervalS)
        stallTimeoutS = try v(.stallTimeoutS, d.stallTimeoutS)
        gpProbeIntervalS = try v(.gpProbeIntervalS, d.gpProbeIntervalS)
        latencySample = try v(.latencySample, d.latencySample)
        sampleIntervalS = try v(.sampleIntervalS, d.sampleIntervalS)
        pin = try v(.pin, d.pin)
        pinFirst = try v(.pinFirst, d.pinFirst)
        keepGoing = try v(.keepGoing, d.keepGoing)
        inject = try v(.inject, d.inject)
        // Files written before these were settings ran without
        // perturbation and with throughput recycling.
        perturb = try v(.perturb, false)
        recycling = try v(.recycling, .throughput)
        workload = try v(.workload, d.workload)
        // Files written before these were settings walked anon_vmas under
        // RCU alone (--sync rcu) and never reused one.
        let old = scheme == .anonVma && sync == .rcu
        anonVmaWalk = try v(.anonVmaWalk, old ? .rcuOnly : d.anonVmaWalk)
        anonVmaMerge = try v(.anonVmaMerge, scheme == .anonVma ? false : d.anonVmaMerge)
        anonVmaReuse = try v(.anonVmaReuse, d.anonVmaReuse)
        libraries = try v(.libraries, 0)
        iMmap = try v(.iMmap, .list)
        inodes = try v(.inodes, d.inodes)
        shmemInodes = try v(.shmemInodes, d.shmemInodes)
    }
}

extension SchemeKind: Codable {}
extension RCUFlavor: Codable {}
extension ListSync: Codable {}
extension AnonVMAWalk: Codable {}
extension CheckLevel: Codable {}
extension Injection: Codable {}
extension Recycling: Codable {}
extension IMmapKind: Codable {}
