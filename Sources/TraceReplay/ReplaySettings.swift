import ConcurrentRmap

/// How a trace is replayed on the model: the machine's sizes and checks, the
/// page touches the replay generates (a trace has none), and how address
/// ranges are scaled down to the model's pages. Every default is stated here,
/// in `stress trace run --help` and in docs/trace-replay.md.
public struct ReplaySettings: Sendable {
    public var scheme: SchemeKind = .anongroup
    /// Worker threads replaying mms (1...256).
    public var threads = 2
    /// Seeds the CPUs' random streams (migration's choice of pages).
    public var seed: UInt64 = 1
    /// Percent of each private anonymous writable mapping's model pages
    /// written when it is mapped (0...100). The heap grown by brk is faulted
    /// fully whatever this says.
    public var faultPercent = 50
    /// Percent of the pages a child inherits that it writes (breaking COW)
    /// right after its fork (0...100).
    public var cowPercent = 25
    /// Trace pages (4 KiB) per model page (1...2^20): a mapping of B bytes
    /// gets clamp(ceil(B / 4096 / scale), 1, vmaPages) model pages.
    public var scale = 16
    /// The model's largest VMA in pages (a divisor of 512).
    public var vmaPages = 64
    /// Page frames: small, so that reclaim runs and walks happen.
    public var frames = 512
    public var swapSlots = 65_536
    /// Process-table entries: the most mms of the trace alive at once.
    public var processes = 1024
    public var checks: CheckLevel = .full
    public var sync: ListSync = .rcu
    /// anon-vma only: the walk under `sync` rcu and anon_vma reuse
    /// (`MachineConfig.anonVmaWalk`, `anonVmaMerge`).
    public var anonVmaWalk: AnonVMAWalk = .locked
    public var anonVmaMerge = true
    public var injection: Injection = .none
    public var perturb = false
    /// A thread beside the replay that reclaims (when free frames fall
    /// below a quarter of memory) and migrates a random page, about every
    /// `backgroundPauseUs` microseconds.
    public var background = true
    public var backgroundPauseUs = 50
    /// Seconds between stop-the-world audits (0: the final audit only).
    public var auditIntervalS: Double = 2
    /// Seconds a worker may spend in one batch of operations without
    /// progress before the run is a STALL.
    public var stallTimeoutS: Double = 10
    /// How far apart in the trace (in steps, about events) the workers may
    /// be: no worker runs a step more than this past the earliest step
    /// another one is at. Small: the trace's order (1: exactly); large: more
    /// overlap and reordering between unrelated mms.
    public var window = 16
    /// What a new mapping does when its mm's model VMA table (16 entries)
    /// is full: take the place of the least recently used modelled mapping
    /// (`evict`, which is unmapped in the model and counted), or stay out of
    /// the model (`skip`, counted as not modelled).
    public var evictWhenFull = true
    /// Every this many steps of a process, the worker running it migrates
    /// one random page of it (NUMA balancing's way): an rmap walk over that
    /// page's group on the replay's own threads. 0: never.
    public var migrateEvery = 4
    /// Count violations instead of stopping at the first.
    public var keepGoing = false
    /// The machine's inodes: the trace's file k is inode k (the same path
    /// is the same inode in every process) while k <= `namedInodes`; files
    /// beyond stay out of the model ("without an inode"). 0: no file
    /// mapping is modelled.
    public var inodes = 256

    public init() {}

    public static let threadsRange = 1...256
    public static let percentRange = 0...100
    public static let scaleRange = 1...(1 << 20)
    public static let backgroundPauseRange = 0...1_000_000
    public static let migrateEveryRange = 0...1_000_000
    public static let windowRange = 1...(1 << 30)
    public static let auditIntervalRange = 0.1...3600.0
    public static let stallTimeoutRange = 1.0...3600.0
    public static let inodesRange = 0...65_536

    /// The last inodes, kept for mappings whose file the log did not name
    /// (`file:?`): an eighth of them, 1...16.
    public var spareInodes: Int { inodes == 0 ? 0 : max(1, min(16, inodes / 8)) }
    /// Inodes the trace's named files get: 1...namedInodes.
    public var namedInodes: Int { inodes - spareInodes }

    /// The inode of a file mapping: its trace file id's (`file` > 0), or
    /// for an unknown file (`file` 0) spare number `unknown` mod spares;
    /// 0 when it has none.
    func inode(file: UInt64, unknown: UInt32) -> UInt32 {
        if file > 0 { return file <= UInt64(namedInodes) ? UInt32(file) : 0 }
        guard spareInodes > 0, unknown > 0 else { return 0 }
        return UInt32(namedInodes + 1 + Int(unknown - 1) % spareInodes)
    }

    /// The machine these settings describe: one VMA (the stack) per new image.
    public var machineConfig: MachineConfig {
        var c = MachineConfig()
        c.scheme = scheme
        c.frames = frames
        c.swapSlots = swapSlots
        c.maxProcesses = processes
        c.vmaPages = vmaPages
        c.vmasPerProcess = 1
        c.sync = sync
        c.anonVmaWalk = anonVmaWalk
        c.anonVmaMerge = anonVmaMerge
        c.checks = checks
        c.injection = injection
        c.perturb = perturb
        c.inodes = inodes
        // The workers, the background thread and the closer.
        c.expectedCPUs = threads + 1
        return c
    }

    /// A one-line reason when a value is out of range or the values cannot
    /// work together.
    public func validate() -> String? {
        func outside(_ name: String, _ v: Int, _ r: ClosedRange<Int>, _ unit: String = "") -> String? {
            r.contains(v) ? nil : "\(name) must be \(r.lowerBound)...\(r.upperBound)\(unit) (got \(v))"
        }
        if let p = outside("threads", threads, ReplaySettings.threadsRange) { return p }
        if let p = outside("fault percent", faultPercent, ReplaySettings.percentRange, "%") { return p }
        if let p = outside("cow percent", cowPercent, ReplaySettings.percentRange, "%") { return p }
        if let p = outside("scale", scale, ReplaySettings.scaleRange, " trace pages per model page") { return p }
        if let p = outside("window", window, ReplaySettings.windowRange, " steps") { return p }
        if let p = outside("migrate every", migrateEvery, ReplaySettings.migrateEveryRange, " steps") { return p }
        if let p = outside("inodes", inodes, ReplaySettings.inodesRange) { return p }
        if let p = outside("background pause", backgroundPauseUs, ReplaySettings.backgroundPauseRange, " microseconds") { return p }
        if !auditIntervalS.isFinite || !(auditIntervalS == 0 || ReplaySettings.auditIntervalRange.contains(auditIntervalS)) {
            return "audit interval must be 0 (final audit only) or 0.1...3600 seconds (got \(auditIntervalS))"
        }
        if !stallTimeoutS.isFinite || !ReplaySettings.stallTimeoutRange.contains(stallTimeoutS) {
            return "stall timeout must be 1...3600 seconds (got \(stallTimeoutS))"
        }
        return machineConfig.validate()
    }
}
