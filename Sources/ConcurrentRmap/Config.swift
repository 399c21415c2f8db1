/// How the anongroup member lists are protected from concurrent walkers.
/// `.rcu` is the design under test; the lock modes are scalability baselines.
public enum ListSync: String, CaseIterable, Sendable {
    /// Walkers in an RCU read-side section; writers under the group mutex.
    case rcu
    /// Walkers take the group's rwlock for reading; writers for writing.
    case rwlock
    /// Walkers and writers alike take the group's mutex.
    case mutex
}

/// Which always-on checks run on each access (audits and the leak check
/// always run).
public enum CheckLevel: String, CaseIterable, Sendable {
    /// Location, counts and content on every access.
    case full
    /// Location and counts only.
    case fast
    /// None: to measure what the checks cost.
    case off
}

/// Sizes and policies of one simulated machine.
public struct MachineConfig: Sendable {
    /// Page frames. Smaller than demand by default so reclaim must run: the
    /// default mix keeps about 3,000-5,000 pages resident at any time with
    /// 256 processes, so background reclaim holds memory at its watermark.
    public var frames = 4096
    /// Swap slots.
    public var swapSlots = 65_536
    /// Process-table entries: the most processes alive at once.
    public var maxProcesses = 256
    /// Pages per VMA (a VMA is the unit mremap and munmap move or drop).
    public var vmaPages = 64
    /// VMAs each new process starts with (at most `maxVMAs`).
    public var vmasPerProcess = 4
    public var sync: ListSync = .rcu
    public var checks: CheckLevel = .full
    /// A planted bug, for proving the checks work (`.none` in real runs).
    public var injection: Injection = .none
    /// Random short delays at race windows (seeded per CPU).
    public var perturb = false

    public init() {}

    /// The most VMAs one mm holds.
    public static let maxVMAs = 8
    /// Virtual pages per mm: 512 leaves of 512 PTEs.
    public static let vpnLimit = 512 * 512
    public static let ptesPerLeaf = 512

    /// mm slots: live processes plus mms pinned, dying or waiting for a
    /// grace period (call_rcu runs callbacks in batches some milliseconds
    /// late, and tens of thousands of exits a second pass through).
    var mmSlots: Int { maxProcesses * 4 + 1024 }
    /// Page-table leaves: a live mm uses at most one per VMA (VMAs are
    /// aligned and no larger than a leaf) plus one during an mremap; dying
    /// mms give theirs back before their slot waits for a grace period.
    var leafCount: Int { maxProcesses * (MachineConfig.maxVMAs + 4) + 512 }

    /// Returns a one-line reason when the sizes cannot work together.
    public func validate() -> String? {
        if frames < 64 { return "frames must be at least 64 (got \(frames))" }
        if frames > 1 << 24 { return "frames must be at most \(1 << 24) (got \(frames))" }
        if swapSlots < 1 { return "swap slots must be at least 1 (got \(swapSlots))" }
        if swapSlots > 1 << 26 { return "swap slots must be at most \(1 << 26) (got \(swapSlots))" }
        if maxProcesses < 1 { return "processes must be at least 1 (got \(maxProcesses))" }
        if maxProcesses > 1 << 16 { return "processes must be at most \(1 << 16) (got \(maxProcesses))" }
        if vmaPages < 1 || vmaPages > MachineConfig.ptesPerLeaf || MachineConfig.ptesPerLeaf % vmaPages != 0 {
            return "VMA pages must divide \(MachineConfig.ptesPerLeaf) (got \(vmaPages))"
        }
        if vmasPerProcess < 1 || vmasPerProcess > MachineConfig.maxVMAs {
            return "VMAs per process must be 1...\(MachineConfig.maxVMAs) (got \(vmasPerProcess))"
        }
        if frames < vmaPages * 2 { return "frames (\(frames)) must hold at least two VMAs of \(vmaPages) pages" }
        return nil
    }
}
