import ArgumentParser
import ConcurrentRmap
import Exploration
import Foundation
import RunEngine
import StressSupport

/// The options of `explore`: the machine is the default test size
/// (ControlledSpec.testSettings), the knobs are the ones that change which
/// interleavings exist.
struct ControlledOptions: ParsableArguments {
    enum Defaults: CommandDefaults {
        static var settings: RunSettings { ControlledSpec.testSettings() }
        static var threadRange: ClosedRange<Int> { ControlledLimits.threads }
        static func help(_ option: String, _ standard: String) -> String {
            switch option {
            case "seed": "Base seed, 0...\(UInt64.max) (default \(settings.seed)): execution i uses operation seed SEED+i and a schedule seed derived from both."
            case "mix": "Operation weights NAME=WEIGHT,... (default: the test mix with mmap-file, truncate and mmap-shmem: every operation)."
            case "inject": "Plant this bug (see stress run --list-injections)."
            default: standard
            }
        }
    }

    @OptionGroup var scheme: SchemeOption<Defaults>
    @OptionGroup var avcReuse: AVCReuseOption<Defaults>
    @OptionGroup var threads: ThreadsOption<Defaults>
    @OptionGroup var schedule: ScheduleOptions<Defaults>
    @OptionGroup var seed: SeedOption<Defaults>
    @OptionGroup var sync: SyncOption<Defaults>
    @OptionGroup var mix: MixOption<Defaults>
    @OptionGroup var anonVma: AnonVMAOptions<Defaults>
    @OptionGroup var file: FileOptions<Defaults>

    func base(inject: Injection = .none) throws -> (RunSettings, ScheduleStrategy, Int) {
        let d = Defaults.settings
        let scheme = try self.scheme.value() ?? d.scheme
        var s = ControlledSpec.testSettings(scheme: scheme, threads: try threads.value() ?? Defaults.threads,
                                            seed: try seed.value() ?? d.seed, inject: inject)
        if let v = try sync.value() { s.sync = v }
        if let r = try avcReuse.reuseValue(for: scheme) { s.anonVmaReuse = r }
        if let m = try mix.value() { s.mix = m } else if !inject.needsFileOperations { s.mix += "," + ControlledSpec.fileOperations }
        try anonVma.apply(to: &s)
        try file.apply(to: &s)
        if let own = inject.scheme, own != scheme {
            throw ValidationError("--inject \(inject.rawValue) is a bug of the \(own.rawValue) scheme, not of \(scheme.rawValue)")
        }
        if let problem = s.machineConfig.validate() { throw ValidationError(problem) }
        return (s, try schedule.strategyValue(), try schedule.stepsValue())
    }
}

struct Explore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run many short controlled executions (one thread at a time, every lock, RCU call and race window a scheduling point) until one violates an invariant; write its schedule.",
        discussion: """
            The machine is the default test size (64 frames, 256 swap slots, 12 processes of 2 VMAs of 8 pages, 8 started). A failing schedule is \
            shrunk (fewer threads, steps and switches; --no-shrink to skip) and written to --out; `stress replay FILE` \
            runs it again to the same violation at the same step. Exit status: 0 no violation in the schedules run, \
            1 a violation (schedule written), 2 bad usage, 128+N interrupted by signal N.
            """)

    @OptionGroup var options: ControlledOptions
    @OptionGroup var inject: InjectOption<ControlledOptions.Defaults>
    @Option(help: "Where to write the failing schedule (default schedule.json).")
    var out: String?
    @Flag(name: .customLong("no-shrink"), help: "Write the schedule as found, without shrinking it.")
    var noShrink = false
    @Flag(help: "No progress lines.")
    var quiet = false

    func run() throws {
        let inject = try self.inject.value() ?? .none
        let (base, strategy, steps) = try options.base(inject: inject)
        let schedules = try options.schedule.schedulesValue()
        let out = self.out ?? "schedule.json"
        do { try AtomicFile.checkWritable(out) } catch { throw ValidationError("cannot write schedule file: \(error)") }
        print("explore: scheme=\(base.scheme.rawValue) threads=\(base.threads) strategy=\(ScheduleFile.strategyName(strategy)) steps=\(steps) schedules<=\(schedules) seed=\(base.seed) inject=\(inject.rawValue) sync=\(base.sync.rawValue)\(base.scheme.hasAnonVMAWalk ? " anon-vma-walk=\(base.anonVmaWalk.rawValue)" : "")")
        let summary = try Explorer.explore(base: base, strategy: strategy, steps: steps, schedules: schedules,
                                           interrupted: { Signals.pending != 0 },
                                           progress: quiet ? nil : { n, t in
                                               FileHandle.standardError.write(Data(String(format: "  %d schedules, %.1f s\n", n, t).utf8))
                                           })
        let rate = Double(summary.steps) / max(summary.seconds, 1e-9)
        guard let found = summary.found else {
            let sig = Signals.pending
            print(String(format: "%@: %d schedules, no violation (%.1f s, %.0f steps/s)",
                         sig != 0 ? "INTERRUPTED" : "CLEAN", summary.schedules, summary.seconds, rate))
            throw ExitRequest(status: sig != 0 ? 128 + sig : ExitStatus.success)
        }
        let v = found.outcome.violation!
        print(String(format: "FOUND after %d schedules (%.1f s, %.0f steps/s): %@ at step %d",
                     found.schedules, summary.seconds, rate, v.description, found.outcome.step))
        var spec = found.spec
        var outcome = found.outcome
        var shrunkFrom: ScheduleFile.Size?
        let original = ScheduleFile.Size(threads: spec.settings.threads, operations: outcome.operations,
                                         steps: outcome.steps, switches: outcome.switches.count)
        if !noShrink {
            let r = try Shrinker.shrink(spec, outcome)
            spec = r.spec
            outcome = r.outcome
            shrunkFrom = original
            print(ShrinkReport.line(original, ScheduleFile.Size(threads: spec.settings.threads, operations: outcome.operations,
                                                               steps: outcome.steps, switches: outcome.switches.count), attempts: r.attempts))
        }
        let file = ScheduleFile(spec: spec, strategy: strategy, outcome: outcome, explored: found.schedules, shrunkFrom: shrunkFrom)
        try file.write(to: out)
        print("schedule written to \(out); reproduce with: stress replay \(out)")
        throw ExitRequest(status: ExitStatus.violation)
    }
}

enum ShrinkReport {
    static func line(_ a: ScheduleFile.Size, _ b: ScheduleFile.Size, attempts: Int) -> String {
        "shrunk in \(attempts) replays: threads \(a.threads) -> \(b.threads), operations \(a.operations) -> \(b.operations), "
            + "steps \(a.steps) -> \(b.steps), switches \(a.switches) -> \(b.switches)"
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a schedule file again and show the interleaving around its violation.",
        discussion: """
            The file must come from this build (same commit, same binary): another build's scheduling points differ. \
            Exit status: 1 the run ended in a violation (REPRODUCED when it is the recorded one at the recorded step), \
            4 NOT REPRODUCED (it ran clean: never 0, since the file promised a violation), 2 bad usage or a file that is \
            unreadable, edited, truncated or from another build.
            """)

    @Argument(help: "A schedule file written by stress explore or stress shrink.")
    var file: String
    @Option(help: "Trace events to print before the end, 0...\(ControlledScheduler.traceLength) (default 40).")
    var trace: String?

    func run() throws {
        let count = try trace.map { try Parse.whole($0, "--trace", 0...ControlledScheduler.traceLength) } ?? 40
        let f: ScheduleFile
        do { f = try ScheduleFile.load(file) } catch let e as ScheduleFileError { throw ValidationError(e.description) }
        let spec = try f.spec
        let o = try ControlledRun.execute(spec, strict: true, keepTrace: true)
        print("replay: scheme=\(f.settings.scheme.rawValue) threads=\(f.settings.threads) steps=\(f.steps) switches=\(spec.switches.count) seed=\(f.settings.seed) inject=\(f.settings.inject.rawValue)")
        if count > 0 {
            print("last \(min(count, o.trace.count)) scheduling events (w = worker):")
            for line in o.trace.suffix(count) { print("  " + line) }
        }
        if let d = o.divergence { print("warning: \(d)") }
        guard let v = o.violation else {
            // Never 0: the file promised a violation and the replay did not
            // confirm it, which is a failure of the reproducer.
            print("NOT REPRODUCED: the schedule ran clean (\(o.steps) steps); the file expected \(f.violation.kind) at step \(f.violation.step)")
            throw ExitRequest(status: ExitStatus.notReproduced)
        }
        let same = v.kind.rawValue == f.violation.kind && o.step == f.violation.step && v.description == f.violation.detail
        print("\(same ? "REPRODUCED" : "DIFFERENT"): \(v.description) at step \(o.step)"
              + (same ? "" : " (the file recorded \(f.violation.kind) at step \(f.violation.step))"))
        throw ExitRequest(status: ExitStatus.violation)
    }
}

struct Shrink: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Shrink a schedule file: fewer threads, steps and switches, keeping the violation kind.",
        discussion: "Exit status: 1 a shrunk schedule was written (it still fails), 2 bad usage or bad file.")

    @Argument(help: "A schedule file written by stress explore.")
    var file: String
    @Option(help: "Where to write the shrunk schedule (default: FILE with .shrunk before .json).")
    var out: String?
    @Option(name: .customLong("max-replays"), help: "Replays to try at most, 1...100000 (default 400).")
    var maxReplays: String?

    func run() throws {
        let limit = try maxReplays.map { try Parse.whole($0, "--max-replays", 1...100_000) } ?? 400
        let f: ScheduleFile
        do { f = try ScheduleFile.load(file) } catch let e as ScheduleFileError { throw ValidationError(e.description) }
        let out = self.out ?? (file.hasSuffix(".json") ? String(file.dropLast(5)) + ".shrunk.json" : file + ".shrunk")
        do { try AtomicFile.checkWritable(out) } catch { throw ValidationError("cannot write schedule file: \(error)") }
        let spec = try f.spec
        let first = try ControlledRun.execute(spec)
        guard first.violation != nil else {
            throw ValidationError("\(file) does not fail when replayed; nothing to shrink")
        }
        let r = try Shrinker.shrink(spec, first, maxAttempts: limit)
        let before = ScheduleFile.Size(threads: spec.settings.threads, operations: first.operations, steps: first.steps, switches: first.switches.count)
        let after = ScheduleFile.Size(threads: r.spec.settings.threads, operations: r.outcome.operations, steps: r.outcome.steps, switches: r.outcome.switches.count)
        print(ShrinkReport.line(before, after, attempts: r.attempts))
        var g = ScheduleFile(spec: r.spec, strategy: .replay, outcome: r.outcome, explored: f.schedulesExplored, shrunkFrom: f.shrunkFrom ?? before)
        g.strategy = f.strategy
        try g.write(to: out)
        print("\(r.outcome.violation!.description) at step \(r.outcome.step)")
        print("schedule written to \(out); reproduce with: stress replay \(out)")
        throw ExitRequest(status: ExitStatus.violation)
    }
}
