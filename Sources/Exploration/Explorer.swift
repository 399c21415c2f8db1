import ConcurrentRmap
import RunEngine
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// `stress explore`: many short controlled executions, each with its own
/// operation seed and schedule seed, until one violates an invariant.
public enum Explorer {
    public struct Found: Sendable {
        public var spec: ControlledSpec
        public var outcome: ControlledOutcome
        /// 1-based: the schedule that failed.
        public var schedules: Int
    }

    public struct Summary: Sendable {
        public var found: Found?
        public var schedules: Int
        public var seconds: Double
        public var steps: Int
    }

    /// The spec of schedule `i` of an exploration: its own operation seed
    /// and schedule seed, derived from the base seed.
    public static func spec(base: RunSettings, strategy: ScheduleStrategy, steps: Int, index i: Int) -> ControlledSpec {
        var s = base
        s.seed = base.seed &+ UInt64(i)
        return ControlledSpec(settings: s, strategy: strategy, scheduleSeed: mix(base.seed ^ 0x5ced, UInt64(i)), steps: steps)
    }

    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 { SplitMix64.finalize(a &+ b &* SplitMix64.gamma) }

    /// Runs up to `schedules` executions; stops at the first violation.
    /// `progress` is called every so often with (done, seconds).
    public static func explore(base: RunSettings, strategy: ScheduleStrategy, steps: Int, schedules: Int,
                               interrupted: () -> Bool = { false },
                               progress: ((Int, Double) -> Void)? = nil) throws -> Summary {
        let t0 = monotonicNanos()
        var totalSteps = 0
        var lastProgress = t0
        for i in 0..<schedules {
            let spec = spec(base: base, strategy: strategy, steps: steps, index: i)
            let out = try ControlledRun.execute(spec)
            totalSteps += out.steps
            if out.violation != nil {
                return Summary(found: Found(spec: spec, outcome: out, schedules: i + 1), schedules: i + 1,
                               seconds: Double(monotonicNanos() - t0) / 1e9, steps: totalSteps)
            }
            let now = monotonicNanos()
            if let progress, now - lastProgress > 2_000_000_000 {
                lastProgress = now
                progress(i + 1, Double(now - t0) / 1e9)
            }
            if interrupted() {
                return Summary(found: nil, schedules: i + 1, seconds: Double(now - t0) / 1e9, steps: totalSteps)
            }
        }
        return Summary(found: nil, schedules: schedules, seconds: Double(monotonicNanos() - t0) / 1e9, steps: totalSteps)
    }
}

/// Shrinks a failing schedule: fewer threads, fewer steps (so fewer
/// operations), fewer switches (preemptions), keeping the violation kind.
/// Each candidate is replayed leniently (a switch naming a thread that
/// cannot run is skipped); an accepted candidate is replaced by the
/// decisions it really made, so the result replays strictly.
public enum Shrinker {
    public struct Result: Sendable {
        public var spec: ControlledSpec
        public var outcome: ControlledOutcome
        public var attempts: Int
    }

    public static func shrink(_ spec: ControlledSpec, _ outcome: ControlledOutcome, maxAttempts: Int = 400) throws -> Result {
        guard let kind = outcome.violation?.kind else { return Result(spec: spec, outcome: outcome, attempts: 0) }
        var best = spec
        best.strategy = .replay
        best.switches = outcome.switches
        var bestOut = outcome
        var attempts = 0

        func attempt(_ c: ControlledSpec) throws -> Bool {
            guard attempts < maxAttempts else { return false }
            attempts += 1
            let o = try ControlledRun.execute(c)
            guard o.violation?.kind == kind else { return false }
            // Smaller in every measure we keep: never trade one for another.
            guard o.switches.count <= bestOut.switches.count || c.settings.threads < best.settings.threads else { return false }
            best = c
            best.switches = o.switches
            best.steps = min(c.steps, o.step + 1)
            bestOut = o
            return true
        }

        // Fewer threads: the smallest count that still fails.
        if best.settings.threads > 1 {
            for t in 1..<best.settings.threads {
                var c = best
                c.settings.threads = t
                c.switches = best.switches.filter { $0.thread < t }
                if try attempt(c) { break }
            }
        }
        // Fewer steps: stop starting operations right after the violation,
        // then halve while it still fails.
        var c = best
        c.steps = max(ControlledLimits.steps.lowerBound, bestOut.step + 1)
        if c.steps < best.steps { _ = try attempt(c) }
        while best.steps / 2 >= ControlledLimits.steps.lowerBound {
            var h = best
            h.steps = best.steps / 2
            h.switches = best.switches.filter { $0.step < h.steps }
            if !(try attempt(h)) { break }
        }
        // Fewer switches: delta debugging over the list.
        var chunk = max(1, best.switches.count / 2)
        while chunk >= 1 && !best.switches.isEmpty && attempts < maxAttempts {
            var i = 0
            var removed = false
            while i < best.switches.count && attempts < maxAttempts {
                var h = best
                h.switches.removeSubrange(i..<min(best.switches.count, i + chunk))
                if try attempt(h) { removed = true } else { i += chunk }
            }
            if !removed || chunk > 1 { chunk /= 2 } else { break }
        }
        // best.strategy is .replay and its switches are the decisions it
        // really made, so it replays strictly to the same end.
        return Result(spec: best, outcome: bestOut, attempts: attempts)
    }
}
