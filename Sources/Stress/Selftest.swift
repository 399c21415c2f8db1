import ArgumentParser
import ConcurrentRmap
import Exploration
import Foundation
import RunEngine
import StressSupport

/// `stress selftest`: proof that the checks work. Runs the correct model,
/// then every planted bug, each in its own child process (a planted bug may
/// wedge threads or corrupt the allocator; a child keeps that contained and
/// lets a stall be killed), and tabulates what was caught and how fast.
struct Selftest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the correct model, then every --inject bug; exit 0 only if the first is clean and all are caught.",
        discussion: """
            Each run is a child `stress run`. A child that dies by a signal is reported as "crashed (signal N)", one \
            that outlives its deadline as "hung": both fail the selftest (a bug must end in a verdict, not a crash). \
            Exit status: 0 passed, 1 failed, 2 bad usage, 128+N interrupted by signal N (the signal is passed on to \
            the running child; the rows done so far are printed).
            """)

    enum Defaults: CommandDefaults {
        static var settings: RunSettings {
            var s = RunSettings()
            s.perturb = true
            return s
        }
        static var steps: Int { 20_000 }
        static func help(_ option: String, _ standard: String) -> String {
            switch option {
            case "threads": "Worker threads per run, \(Ranges.r(threadRange)) (default \(threads))."
            case "scheme": "rmap design under test: \(SchemeKind.allCases.map(\.rawValue).joined(separator: " or ")) (default \(settings.scheme.rawValue)); its own planted bugs and the shared ones run."
            case "seed": "Base seed, 0...\(UInt64.max) (random when omitted; printed; every run uses it)."
            case "perturb": "Perturb schedules at race windows."
            case "schedules": "With --explore: schedules each bug may take, \(Ranges.r(ControlledLimits.schedules)) (default \(schedules))."
            case "steps": "With --explore: scheduling points per schedule, \(Ranges.r(ControlledLimits.steps)) (default \(steps))."
            case "strategy": "With --explore: random, or pct:D (default random)."
            default: standard
            }
        }
    }

    @Option(name: .customLong("time-per-injection"), help: "Seconds each injection may run before it counts as missed, \(Ranges.s(Selftest.timeRange)) (default 20).")
    var timePerInjection: String?
    @Option(name: .customLong("clean-duration"), help: "Seconds the correct run lasts, \(Ranges.s(Selftest.timeRange)) (default 20).")
    var cleanDuration: String?
    @OptionGroup var threads: ThreadsOption<Defaults>
    @OptionGroup var scheme: SchemeOption<Defaults>
    @Option(help: "Comma-separated injections to run (default: every one of the scheme; see stress run --list-injections).")
    var only: String?
    @OptionGroup var seed: SeedOption<Defaults>
    @OptionGroup var perturb: PerturbOption<Defaults>
    @Flag(help: "Use controlled schedules instead of child runs: each bug is explored (as stress explore) until found, its schedule shrunk; the correct model runs --clean-schedules schedules.")
    var explore = false
    @OptionGroup var schedule: ScheduleOptions<Defaults>
    @Option(name: .customLong("clean-schedules"), help: "With --explore: schedules the correct model must run clean, \(Ranges.r(ControlledLimits.schedules)) (default 1000).")
    var cleanSchedules: String?

    static let timeRange = 1.0...3600.0

    func run() throws {
        let perInjection = try timePerInjection.map { try Parse.seconds($0, "--time-per-injection", Selftest.timeRange) } ?? 20
        let clean = try cleanDuration.map { try Parse.seconds($0, "--clean-duration", Selftest.timeRange) } ?? 20
        let threads = try self.threads.value() ?? Defaults.threads
        let scheme = try self.scheme.value() ?? Defaults.settings.scheme
        var list = Injection.catalogue(for: scheme)
        if let only {
            let names = only.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !names.isEmpty, !names.contains(where: \.isEmpty) else {
                throw ValidationError("--only needs a comma-separated list of injections without empty items (got '\(only)')")
            }
            list = try names.map { name in
                let i: Injection = try Parse.choice(name, "--only", "injection")
                guard i != .none else { throw ValidationError("--only lists planted bugs; 'none' (the correct model) always runs") }
                if let own = i.scheme, own != scheme {
                    throw ValidationError("--only: \(i.rawValue) is a bug of the \(own.rawValue) scheme, not of \(scheme.rawValue) (use --scheme \(own.rawValue))")
                }
                return i
            }
            if Set(list).count != list.count { throw ValidationError("--only names an injection twice") }
        }
        if !explore && (schedule.given || cleanSchedules != nil) {
            throw ValidationError("--schedules, --clean-schedules, --steps and --strategy need --explore")
        }
        if explore {
            if timePerInjection != nil || cleanDuration != nil {
                throw ValidationError("--time-per-injection and --clean-duration are for child runs, not --explore")
            }
            // Controlled runs: the explore command's thread range and defaults.
            let seed = try self.seed.value() ?? ControlledOptions.Defaults.settings.seed
            try exploreAll(scheme: scheme, list: list,
                           threads: try self.threads.value(in: ControlledOptions.Defaults.threadRange) ?? ControlledOptions.Defaults.threads,
                           seed: seed)
        }
        let seed = try self.seed.value() ?? freshSeed()
        let perturb = self.perturb.perturb
        print("selftest: scheme=\(scheme.rawValue) threads=\(threads) seed=\(seed) perturb=\(perturb) clean=\(fmt(clean))s per-injection=\(fmt(perInjection))s")
        fflush(nil)

        var cleanOK = false
        var caught = 0
        var imprecise = 0
        var failures: [String] = []
        for inj in [Injection.none] + list {
            if inj.needsControlledRun {
                // Only a controlled run checks the lock order (see
                // Injection.needsControlledRun): explore it in-process.
                var base = ControlledSpec.testSettings(scheme: scheme, threads: 3, seed: seed, inject: inj)
                if scheme.hasAnonVMAWalk { base.anonVmaWalk = inj.selftestAnonVmaWalk }
                base.iMmap = inj.iMmap
                let sum = try Explorer.explore(base: base, strategy: .random, steps: 3000,
                                               schedules: 2000, interrupted: { Signals.pending != 0 })
                if Signals.pending != 0 {
                    print("INTERRUPTED by signal \(Signals.pending) after \(caught) of \(list.count) injections")
                    throw ExitRequest(status: 128 + Signals.pending)
                }
                let v = sum.found?.outcome.violation
                let status = v.map { SelftestScore.matches(inj, kind: $0.kind.rawValue) ? SelftestScore.detected : SelftestScore.otherClass } ?? "MISSED"
                let what = v.map { "explore, schedule \(sum.found!.schedules): \($0)" } ?? "explore: \(sum.schedules) schedules clean"
                print(pad(inj.rawValue, 26) + pad(status, 11) + pad("-", 9) + what)
                fflush(nil)
                if status == SelftestScore.detected { caught += 1 } else {
                    if status == SelftestScore.otherClass { imprecise += 1 }
                    failures.append("\(inj.rawValue): \(status)")
                }
                continue
            }
            var s = RunSettings()
            s.scheme = scheme
            s.threads = threads
            s.durationS = inj == .none ? clean : perInjection
            s.seed = seed
            s.inject = inj
            // A grace-period bug needs the RCU-only walk to be seen on anon-vma.
            if scheme.hasAnonVMAWalk { s.anonVmaWalk = inj.selftestAnonVmaWalk }
            s.iMmap = inj.iMmap
            s.perturb = perturb
            s.stallTimeoutS = 5
            s.auditIntervalS = 1
            let deadline = s.durationS + 2 * s.stallTimeoutS + 30
            let out = ChildRun.run(s.arguments, deadline: deadline, tag: "selftest-\(inj.rawValue)")
            let (status, when, what) = SelftestScore.score(inj, out)
            print(pad(inj == .none ? "(none: correct model)" : inj.rawValue, 26) + pad(status, 11) + pad(when, 9) + what)
            fflush(nil)
            if inj == .none { cleanOK = status == "clean" } else if status == SelftestScore.detected { caught += 1 }
            if status == SelftestScore.otherClass { imprecise += 1 }
            if status != "clean" && status != SelftestScore.detected { failures.append("\(inj.rawValue): \(status)") }
            if out.interrupted != 0 {
                print("INTERRUPTED by signal \(out.interrupted) after \(caught) of \(list.count) injections")
                throw ExitRequest(status: 128 + out.interrupted)
            }
        }
        let ok = cleanOK && caught == list.count
        print(ok ? "SELFTEST PASSED: correct run clean, \(list.count)/\(list.count) injections detected with a declared class"
                 : "SELFTEST FAILED: \(cleanOK ? "" : "correct run not clean; ")\(list.count - caught) of \(list.count) injections not detected with a declared class, \(imprecise) of them caught by another class (\(failures.joined(separator: "; ")))")
        throw ExitRequest(status: ok ? ExitStatus.success : ExitStatus.violation)
    }

    /// `--explore`: every bug under controlled schedules, then the correct
    /// model for `--clean-schedules` schedules.
    func exploreAll(scheme: SchemeKind, list: [Injection], threads: Int, seed: UInt64) throws -> Never {
        let budget = try schedule.schedulesValue()
        let cleanBudget = try cleanSchedules.map { try Parse.whole($0, "--clean-schedules", ControlledLimits.schedules) } ?? 1000
        let steps = try schedule.stepsValue()
        let strategy = try schedule.strategyValue()
        print("selftest --explore: scheme=\(scheme.rawValue) threads=\(threads) seed=\(seed) strategy=\(ScheduleFile.strategyName(strategy)) steps=\(steps) schedules<=\(budget) clean=\(cleanBudget)")
        print(pad("injection", 30) + pad("schedules", 11) + pad("seconds", 9) + pad("shrunk to (threads/ops/switches)", 34) + "violation")
        fflush(nil)
        var found = 0
        var counts: [Int] = []
        for inj in list {
            var base = ControlledSpec.testSettings(scheme: scheme, threads: threads, seed: seed, inject: inj)
            if scheme.hasAnonVMAWalk { base.anonVmaWalk = inj.selftestAnonVmaWalk }
            base.iMmap = inj.iMmap
            let sum = try Explorer.explore(base: base, strategy: strategy, steps: steps, schedules: budget,
                                           interrupted: { Signals.pending != 0 })
            if Signals.pending != 0 {
                print("INTERRUPTED by signal \(Signals.pending)")
                throw ExitRequest(status: 128 + Signals.pending)
            }
            guard let f = sum.found else {
                print(pad(inj.rawValue, 30) + pad(">\(budget)", 11) + pad(fmt(sum.seconds), 9) + pad("-", 34) + "MISSED")
                fflush(nil)
                continue
            }
            let kind = f.outcome.violation?.kind.rawValue
            guard SelftestScore.matches(inj, kind: kind) else {
                print(pad(inj.rawValue, 30) + pad("\(f.schedules)", 11) + pad(fmt(sum.seconds), 9) + pad("-", 34)
                      + "other class: \(kind ?? "?"), expected one of \(SelftestScore.expected(inj))")
                fflush(nil)
                continue
            }
            found += 1
            counts.append(f.schedules)
            let r = try Shrinker.shrink(f.spec, f.outcome, maxAttempts: 200)
            let size = "\(r.spec.settings.threads)/\(r.outcome.operations)/\(r.outcome.switches.count)"
            print(pad(inj.rawValue, 30) + pad("\(f.schedules)", 11) + pad(fmt(sum.seconds), 9) + pad(size, 34)
                  + (r.outcome.violation?.description ?? f.outcome.violation!.description).prefix(110))
            fflush(nil)
        }
        // The correct model on every operation, the file branch's too.
        var cleanBase = ControlledSpec.testSettings(scheme: scheme, threads: threads, seed: seed)
        cleanBase.mix += "," + ControlledSpec.fileOperations
        let clean = try Explorer.explore(base: cleanBase, strategy: strategy, steps: steps, schedules: cleanBudget,
                                         interrupted: { Signals.pending != 0 })
        let cleanOK = clean.found == nil && clean.schedules == cleanBudget
        print(pad("(none: correct model)", 30) + pad("\(clean.schedules)", 11) + pad(fmt(clean.seconds), 9) + pad("-", 34)
              + (cleanOK ? "clean" : clean.found.map { "NOT CLEAN: \($0.outcome.violation!.description)" } ?? "INTERRUPTED"))
        let sorted = counts.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        let ok = cleanOK && found == list.count
        print((ok ? "SELFTEST PASSED" : "SELFTEST FAILED") + ": \(found)/\(list.count) found (median \(median) schedules, most \(sorted.last ?? 0)); correct model \(cleanOK ? "clean for \(cleanBudget) schedules" : "NOT clean")")
        throw ExitRequest(status: ok ? ExitStatus.success : ExitStatus.violation)
    }
}
