import ArgumentParser
import ConcurrentRmap
import StressKit

extension RCUFlavor: ExpressibleByArgument {}
extension ListSync: ExpressibleByArgument {}
extension CheckLevel: ExpressibleByArgument {}
extension Injection: ExpressibleByArgument {}

/// Machine sizes and check settings, shared by `run` and `scale`.
struct MachineOptions: ParsableArguments {
    @Option(help: "Page frames (smaller than demand, so reclaim runs).")
    var frames: Int = MachineConfig().frames
    @Option(name: .customLong("swap-slots"), help: "Swap slots.")
    var swapSlots: Int = MachineConfig().swapSlots
    @Option(help: "Most processes alive at once.")
    var processes: Int = MachineConfig().maxProcesses
    @Option(name: .customLong("vma-pages"), help: "Pages per VMA (divides 512).")
    var vmaPages: Int = MachineConfig().vmaPages
    @Option(help: "Always-on checks: full, fast or off (audits and the leak check always run).")
    var checks: CheckLevel = .full
    @Option(name: .customLong("audit-interval"), help: "Seconds between stop-the-world audits (0: only the final one).")
    var auditInterval: Double = 2

    func apply(to o: inout StressOptions) {
        o.machine.frames = frames
        o.machine.swapSlots = swapSlots
        o.machine.maxProcesses = processes
        o.machine.vmaPages = vmaPages
        o.machine.checks = checks
        o.auditInterval = auditInterval
    }
}

/// Options of one stress run.
struct RunOptions: ParsableArguments {
    @Option(help: "Worker threads (each registered with RCU).")
    var threads: Int = 4
    @Option(help: "Seconds to run.")
    var duration: Double = 10
    @Option(help: "Seed for every worker's operation stream (random when omitted; always printed).")
    var seed: UInt64?
    @Option(help: "Operation weights, NAME=WEIGHT,... over fault, fork, exit, exec, mremap, munmap, reclaim, migrate.")
    var mix: String = OperationMix.default.description
    @OptionGroup var machine: MachineOptions
    @Option(help: "liburcu flavor: memb, qsbr, mb or bp.")
    var rcu: RCUFlavor = .memb
    @Option(help: "Group-list protection: rcu, or rwlock/mutex baselines.")
    var sync: ListSync = .rcu
    @Option(name: .customLong("stall-timeout"), help: "Seconds without progress that count as a stall.")
    var stallTimeout: Double = 10
    @Option(help: "Plant one known bug (see --list-injections).")
    var inject: Injection = .none
    @Flag(help: "Random short delays at race windows (seeded).")
    var perturb = false
    @Flag(name: .customLong("keep-going"), help: "Count violations instead of stopping at the first.")
    var keepGoing = false

    func stressOptions() throws -> StressOptions {
        var o = StressOptions()
        o.threads = threads
        o.duration = duration
        o.seed = seed ?? freshSeed()
        do { o.mix = try OperationMix(parsing: mix) } catch { throw ValidationError("\(error)") }
        machine.apply(to: &o)
        o.machine.sync = sync
        o.machine.injection = inject
        o.machine.perturb = perturb
        o.rcu = rcu
        o.stallTimeout = stallTimeout
        o.keepGoing = keepGoing
        if let problem = o.validate() { throw ValidationError(problem) }
        return o
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
