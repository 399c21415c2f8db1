import StressShim
import StressSupport

/// The cost of moving one cache line between CPUs 0 and 1 and back,
/// measured just before the workers start and just after they stop, and
/// recorded with the run.
///
/// Why: a run whose threads share data slows down with that cost, and on a
/// virtual machine it is not fixed. The hypervisor moves the virtual CPUs
/// between cores that share a cache (about 50 ns here) and cores that do
/// not (about 320 ns), while independent processes, the ceiling `scale`
/// measures, do not notice. Two-thread runs of one build and seed then come
/// out in two groups, up to 2x apart; this figure tells which group a run
/// belongs to.
enum CrossCoreProbe {
    /// About 5 ms where the line moves fast, 30 ms where it does not.
    static let trips = 100_000

    /// Nanoseconds per round trip, or nil on a one-CPU machine or where
    /// threads cannot be pinned to the first two usable CPUs.
    static func roundTripNanos() -> Double? {
        guard HostInfo.cpuCount >= 2 else { return nil }
        let ns = crm_cross_core_round_trip_ns(HostInfo.pinnedCPU(slot: 0), HostInfo.pinnedCPU(slot: 1), trips)
        return ns > 0 ? ns : nil
    }
}
