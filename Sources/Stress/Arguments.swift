import ArgumentParser
import ConcurrentRmap
import Foundation
import RunEngine

/// The settings of one stress run, as options. Every option is optional:
/// what is not given comes from `--options-from FILE` (a result file of an
/// earlier run) or from the defaults, so a run can be rebuilt from its own
/// record and then varied.
struct RunOptions: ParsableArguments {
    @Option(help: "rmap design: \(SchemeKind.allCases.map(\.rawValue).joined(separator: " or ")) (default anongroup).")
    var scheme: String?
    @Option(help: "Worker threads, \(Ranges.r(Limits.threads)) (default 4).")
    var threads: String?
    @Option(help: "Seconds measured after the warm-up, \(Ranges.s(Limits.duration)) (default 10; with --ops, an upper bound, default a day).")
    var duration: String?
    @Option(help: "End after this many completed operations, \(Ranges.r(Limits.ops)); the time they take is the measurement.")
    var ops: String?
    @Option(help: "Seconds of warm-up before measuring, \(Ranges.s(Limits.warmup)) (default 0).")
    var warmup: String?
    @Option(help: "Seed for every worker's operation stream, 0...\(UInt64.max) (random when omitted; always printed).")
    var seed: String?
    @Option(help: "Operation weights NAME=WEIGHT,... over \(OpKind.allCases.map(\.name).joined(separator: ", ")); weights 0...1000000.")
    var mix: String?
    @Option(help: "liburcu flavor: memb, qsbr, mb or bp (default memb).")
    var rcu: String?
    @Option(help: "rmap list protection (an anongroup's mms, an anon_vma's VMAs): rcu, or the rwlock/mutex baselines (default rcu).")
    var sync: String?
    @Option(help: "Always-on checks: full, fast or off (audits and the leak check always run; default full).")
    var checks: String?
    @Option(help: "Page frames, \(Ranges.r(Limits.frames)) (default 4096; smaller than demand, so reclaim runs).")
    var frames: String?
    @Option(name: .customLong("swap-slots"), help: "Swap slots, \(Ranges.r(Limits.swapSlots)) (default 65536).")
    var swapSlots: String?
    @Option(help: "Process-table entries, the most processes alive at once, \(Ranges.r(Limits.processes)) (default 256).")
    var processes: String?
    @Option(help: "Processes started up front and held by the workload, 0 (half the table) or 1...--processes (default 0).")
    var population: String?
    @Option(name: .customLong("family-size"), help: "Most mms related by fork without exec; a fork beyond it execs the child. 0 (no limit) or 1...65536 (default 16).")
    var familySize: String?
    @Option(help: "Percent of process operations a worker spends on its own share of the process table and memory node, 0...100 (default 0: any process every time, so workers meet in the same mms; scale measures at 100).")
    var locality: String?
    @Option(name: .customLong("vma-pages"), help: "Pages per VMA, a divisor of 512 (default 64).")
    var vmaPages: String?
    @Option(name: .customLong("vmas-per-process"), help: "VMAs of a new process, \(Ranges.r(Limits.vmasPerProcess)) (default 4).")
    var vmasPerProcess: String?
    @Option(name: .customLong("audit-interval"), help: "Seconds between stop-the-world audits: 0 (the final audit only) or \(Ranges.s(Limits.auditInterval)) (default 2).")
    var auditInterval: String?
    @Option(name: .customLong("stall-timeout"), help: "Seconds without progress that make a stall, \(Ranges.s(Limits.stallTimeout)) (default 10).")
    var stallTimeout: String?
    @Option(name: .customLong("gp-probe-interval"), help: "Seconds between the watchdog's synchronize_rcu probes: 0 (none) or \(Ranges.s(Limits.gpProbeInterval)) (default 0.1).")
    var gpProbeInterval: String?
    @Option(name: .customLong("latency-sample"), help: "Time one operation in K: 0 (none) or 1...1000000 (default 8).")
    var latencySample: String?
    @Option(name: .customLong("sample-interval"), help: "Seconds between the steady-state samples, \(Ranges.s(Limits.sampleInterval)) (default 1).")
    var sampleInterval: String?
    @Option(help: "Plant one known bug (none, or a name of --list-injections).")
    var inject: String?
    @Flag(help: "Random short delays at race windows (seeded).")
    var perturb = false
    @Flag(name: .customLong("keep-going"), help: "Count violations instead of stopping at the first.")
    var keepGoing = false
    @Flag(help: "Bind worker i to the i-th CPU this process may use (round robin).")
    var pin = false
    @Option(name: .customLong("pin-first"), help: "With --pin, the CPU slot of worker 0 (default 0): worker i takes slot (N + i) mod CPUs.")
    var pinFirst: String?
    @Option(name: .customLong("options-from"), help: "Start from the settings recorded in a result file (--json of an earlier run); options given here override them.")
    var optionsFrom: String?

    /// The settings these options describe.
    func settings() throws -> RunSettings { try input.settings() }

    var input: SettingsInput {
        SettingsInput(scheme: scheme, threads: threads, duration: duration, ops: ops, warmup: warmup, seed: seed, mix: mix, rcu: rcu,
                      sync: sync, checks: checks, frames: frames, swapSlots: swapSlots, processes: processes,
                      population: population, familySize: familySize, locality: locality, vmaPages: vmaPages,
                      vmasPerProcess: vmasPerProcess,
                      auditInterval: auditInterval, stallTimeout: stallTimeout, gpProbeInterval: gpProbeInterval,
                      latencySample: latencySample, sampleInterval: sampleInterval, inject: inject, perturb: perturb,
                      keepGoing: keepGoing, pin: pin, pinFirst: pinFirst, optionsFrom: optionsFrom)
    }
}

/// Option values as given (nil: not given), turned into checked settings.
/// Plain values, so that `scale` can fill in its own defaults.
struct SettingsInput {
    var scheme, threads, duration, ops, warmup, seed, mix, rcu, sync, checks, frames, swapSlots, processes: String?
    var population, familySize, locality, vmaPages, vmasPerProcess, auditInterval, stallTimeout, gpProbeInterval: String?
    var latencySample, sampleInterval, inject: String?
    var perturb = false, keepGoing = false, pin = false
    var pinFirst: String? = nil
    var optionsFrom: String?

    func settings() throws -> RunSettings {
        var s = RunSettings()
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
        if perturb { s.perturb = true }
        if keepGoing { s.keepGoing = true }
        if pin { s.pin = true }
        if let v = pinFirst {
            guard s.pin else { throw ValidationError("--pin-first needs --pin") }
            s.pinFirst = try Parse.whole(v, "--pin-first", 0...Limits.threads.upperBound)
        }
        if let problem = s.validate() { throw ValidationError(problem) }
        return s
    }

    /// The settings recorded in a result file (or a bare settings object).
    static func load(_ path: String) throws -> RunSettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--options-from: cannot read '\(path)'")
        }
        let dec = ResultFile.decoder()
        if let r = try? dec.decode(StressResult.self, from: data) { return r.settings }
        struct Wrapped: Decodable { var settings: RunSettings }
        if let w = try? dec.decode(Wrapped.self, from: data) { return w.settings }
        throw ValidationError("--options-from: '\(path)' is not a stress result file (no settings in it)")
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
