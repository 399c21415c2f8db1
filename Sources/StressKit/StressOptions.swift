import ConcurrentRmap

/// Everything that defines one stress run. A run is reproduced (operation
/// streams, not the interleaving) by the same options and `seed`.
public struct StressOptions: Sendable {
    public var threads = 4
    public var duration: Double = 10
    public var seed: UInt64 = 1
    public var mix = OperationMix.default
    public var machine = MachineConfig()
    public var rcu: RCUFlavor = .memb
    /// Seconds between full audits; 0 turns periodic audits off.
    public var auditInterval: Double = 2
    /// Count violations instead of stopping at the first.
    public var keepGoing = false
    /// Seconds without progress (a worker, or a grace period) that make a stall.
    public var stallTimeout: Double = 10
    /// Status lines: none, or one per `statusInterval` seconds.
    public var quiet = false
    public var statusInterval: Double = 1

    public init() {}

    /// A one-line reason when the options cannot work together.
    public func validate() -> String? {
        if threads < 1 || threads > 4096 { return "threads must be 1...4096 (got \(threads))" }
        if !(duration > 0) || !duration.isFinite { return "duration must be a positive number of seconds" }
        if duration > 7 * 86_400 { return "duration must be at most a week" }
        if !(auditInterval >= 0) || !auditInterval.isFinite { return "audit interval must be 0 (off) or a positive number of seconds" }
        if !(stallTimeout > 0) || !stallTimeout.isFinite { return "stall timeout must be a positive number of seconds" }
        if let m = machine.validate() { return m }
        return nil
    }
}
