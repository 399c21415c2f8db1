import StressShim
import StressSupport

/// The cost of moving one cache line between CPUs 0 and 1 and back,
/// measured just before the workers start and just after they stop, and
/// recorded with the run, within a time budget proportional to the run.
///
/// Why: a run whose threads share data slows down with that cost, and on a
/// virtual machine it is not fixed. The hypervisor moves the virtual CPUs
/// between cores that share a cache (about 50 ns here) and cores that do
/// not (about 320 ns), while independent processes, the ceiling `scale`
/// measures, do not notice. Two-thread runs of one build and seed then come
/// out in two groups, up to 2x apart; this figure tells which group a run
/// belongs to.
enum CrossCoreProbe {
    /// At most this many trips: about 5 ms where the line moves fast.
    static let trips = 100_000

    /// The probe's time budget for a run of `runS` seconds: 2% of it,
    /// between 2 and 30 ms. Without a budget the 100,000 trips took 0.2-0.8
    /// s (twice per run) on a busy 2-core VM, where either thread is often
    /// descheduled and a trip waits for it, and up to 20 s on a busier one:
    /// far longer than a 0.3 s run, and deaf to Ctrl-C meanwhile.
    static func budgetNanos(runS: Double) -> Int {
        Int(min(0.030, max(0.002, 0.02 * runS)) * 1e9)
    }

    /// Nanoseconds per round trip, or nil on a one-CPU machine, where
    /// threads cannot be pinned to the first two usable CPUs, or where not
    /// one batch of 64 trips fit in the budget (a thread was descheduled
    /// throughout). The figure is the fastest batch's mean trip.
    static func roundTripNanos(runS: Double) -> Double? {
        guard HostInfo.cpuCount >= 2 else { return nil }
        let ns = crm_cross_core_round_trip_ns(HostInfo.pinnedCPU(slot: 0), HostInfo.pinnedCPU(slot: 1), trips,
                                              budgetNanos(runS: runS))
        return ns > 0 ? ns : nil
    }
}
