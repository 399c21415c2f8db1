/// The rmap design a machine runs.
public enum SchemeKind: String, CaseIterable, Sendable {
    /// The seed's anon memory groups (Linus Torvalds, 13 March 2004; Hugh
    /// Dickins' anonmm): page.mapping = the group of mms related by fork,
    /// page.index = the virtual page.
    case anongroup
    /// Andrea Arcangeli's anon_vma (Linux 2.6.7 to 2.6.33): page.mapping =
    /// the anon_vma listing every VMA that may map the page, page.index = the
    /// linear page offset.
    case anonVma = "anon-vma"
    /// Rik van Riel's anon_vma_chain (Linux 2.6.34 to today): page.mapping =
    /// the faulting VMA's own anon_vma, whose set of anon_vma_chain objects
    /// names every VMA that may map the page; each VMA chains to every
    /// anon_vma of its ancestry.
    case anonVMAChain = "anon-vma-chain"
    /// Rik van Riel's rmap of Linux 2.5 to 2.6.5: every anonymous page
    /// keeps the list of PTEs mapping it (a direct entry while mapped once,
    /// chains of 7-entry blocks beyond), updated on every PTE install and
    /// clear; the walk visits exactly the mappings.
    case pteChains = "pte-chains"
    /// Lorenzo Stoakes' COW context (LSF/MM/BPF 2026): page.mapping = the
    /// first mapper's per-mm context, page.index = the virtual page; the
    /// contexts of a fork tree form a tree, walked from the page's context
    /// down.
    case cowContext = "cow-context"

    /// The schemes whose walk takes a lock or stays under RCU alone
    /// (`--anon-vma-walk`, `MachineConfig.anonVmaWalk`): the anon_vma
    /// schemes' anon_vma (root) lock, cow-context's tree lock.
    public var hasAnonVMAWalk: Bool {
        switch self {
        case .anonVma, .anonVMAChain, .cowContext: true
        case .anongroup, .pteChains: false
        }
    }

    /// What the scheme's walk visits, as reports name it.
    public var walkObjects: String {
        switch self {
        case .anongroup: "mms"
        case .anonVma, .anonVMAChain: "VMAs"
        case .pteChains: "PTEs"
        case .cowContext: "contexts"
        }
    }
}

/// How the rmap's lists (an anongroup's mms, an anon_vma's VMAs) are
/// protected from concurrent walkers. `.rcu` is the design under test; the
/// lock modes are scalability baselines.
public enum ListSync: String, CaseIterable, Sendable {
    /// Walkers in an RCU read-side section; writers under the list's mutex.
    case rcu
    /// Walkers take the group's rwlock for reading; writers for writing.
    case rwlock
    /// Walkers and writers alike take the group's mutex.
    case mutex
}

/// How the anon_vma scheme's rmap walk protects the anon_vma's VMA list
/// under `--sync rcu`.
public enum AnonVMAWalk: String, CaseIterable, Sendable {
    /// The kernel's: RCU only to reach the anon_vma from `page.mapping`
    /// (SLAB_DESTROY_BY_RCU semantics), then its lock for the re-check and
    /// the list walk (page_lock_anon_vma; 2.6.7's page_referenced_anon took
    /// the same lock).
    case locked
    /// A what-if no kernel ran: the whole list walk under RCU alone, the
    /// anon_vma's lock taken by writers only.
    case rcuOnly = "rcu-only"
}

/// The structure of an inode's i_mmap (the VMAs mapping it).
public enum IMmapKind: String, CaseIterable, Sendable {
    /// A doubly linked list, as Linux 2.6.0 had: every walk visits every
    /// VMA of the file.
    case list
    /// An interval tree keyed by each VMA's file range, augmented by the
    /// largest range end below each node (the role of prio_tree in 2.6.7
    /// and vma_interval_tree since 3.7): a walk visits only the subtrees
    /// that may hold a VMA covering its page.
    case tree
}

/// When retired slots (mms, groups, anon_vmas, VMAs) are freed and reused.
/// Both free only after a grace period; they differ in how long after.
public enum Recycling: String, CaseIterable, Sendable {
    /// The race hunter's: a few slots per batch, queued after a few
    /// operations and freed after the next grace period; a freed slot goes
    /// on top of its CPU's cache (a stack) and is the next one that CPU
    /// allocates, so a reader that should have been waited for lands in a
    /// slot that already holds another object (the reverse of KASAN's
    /// quarantine). `stress run`, `selftest` and the controlled runs use it.
    case hunt
    /// The throughput runs': large batches that wait thousands of
    /// operations, so one grace period frees many slots (`scale`, `bench`,
    /// `schemes`).
    case throughput
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
    public var scheme: SchemeKind = .anongroup
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
    /// anon_vma only: the walk's protection under `--sync rcu` (the lock
    /// modes always walk under the anon_vma's lock).
    public var anonVmaWalk: AnonVMAWalk = .locked
    /// anon_vma only: find_mergeable_anon_vma, anon_vma_prepare reusing an
    /// adjacent compatible VMA's anon_vma instead of allocating one.
    public var anonVmaMerge = true
    public var checks: CheckLevel = .full
    /// A planted bug, for proving the checks work (`.none` in real runs).
    public var injection: Injection = .none
    /// Random short delays at race windows (seeded per CPU).
    public var perturb = false
    /// Worker threads expected to run at once: sizes the per-CPU caches so
    /// that all of them together hold at most an eighth of the frames.
    public var expectedCPUs = 4
    /// Whose threads run the model: the OS's (pthread and liburcu), or a
    /// `ControlledScheduler`'s, one at a time (`stress explore`, `replay`).
    /// A controlled machine may only be built, used and freed while
    /// `ControlledScheduler.active` is set.
    public var controlled = false
    /// How long a CPU's queued retire batches may wait for their grace
    /// period when it is too slow to reach `RetireBatch.maxWait`
    /// operations soon (real platform).
    public var retireMaxWaitNs: UInt64 = 20_000_000
    /// How soon retired slots are freed and reused: throughput unless asked
    /// (benchmarks build machines directly); `stress run` asks for hunt.
    /// Controlled runs always hunt.
    public var recycling: Recycling = .throughput
    /// anon-vma-chain: fork may reuse an anon_vma of the child's chain that
    /// no VMA uses as its own and that has at most one child (the rule
    /// since CVE-2022-42703's fix), instead of always allocating one. Off:
    /// every fork adds a generation to the hierarchy (2.6.34-3.18).
    public var anonVmaReuse = true
    /// Inodes (files) the machine has; each holds up to `vmaPages` pages.
    /// Enough that the page cache alone could fill half the default
    /// memory: reclaim then meets cache pages, clean and dirty, as a real
    /// machine's does.
    public var inodes = 32
    /// Shared libraries every process image maps (text and data as one
    /// private file mapping each): inodes 1...libraries, which truncate
    /// leaves alone and random file mappings do not pick. 0 for the bare
    /// machine; `stress run` maps one.
    public var libraries = 0
    /// Shmem inodes (the internal tmpfs files behind shared anonymous
    /// mappings): a pool beside the file inodes, allocated by mmap and
    /// evicted when their last mapping goes. An mmap that finds the pool
    /// empty fails (`shmemAllocFailed`).
    public var shmemInodes = 64
    public static let shmemInodesRange = 0...4096
    /// The structure of each inode's i_mmap.
    public var iMmap: IMmapKind = .list

    public init() {}

    public static let librariesRange = 0...4
    public static let inodesRange = 0...65_536

    /// The most VMAs one mm holds (splits make more than a process starts with).
    public static let maxVMAs = 16
    /// Virtual pages per mm: 512 leaves of 512 PTEs.
    public static let vpnLimit = 512 * 512
    public static let ptesPerLeaf = 512

    public static let framesRange = 64...(1 << 24)
    public static let swapSlotsRange = 1...(1 << 26)
    public static let processesRange = 1...(1 << 16)

    /// Per-CPU caches that can exist at once (CPU slots): the workers plus
    /// room for the boot, teardown and test CPUs.
    var maxCPUs: Int { max(expectedCPUs, 1) + 64 }
    /// Shares of the process table (slot modulo this), one per expected CPU:
    /// process counts are kept per share.
    public var shares: Int { max(1, min(expectedCPUs, maxProcesses)) }
    /// Memory nodes: one per share of the table (so one per worker), each
    /// of at least 64 frames. CPU i allocates from node i mod nodes first.
    public var nodes: Int { max(1, min(shares, frames / 64)) }
    /// Frames one CPU may cache: a batch of free frames moves between a
    /// CPU and the pool at half of it. All CPUs together cache at most an
    /// eighth of memory, so parked frames never starve it (Linux sizes its
    /// per-cpu lists by zone size too); large memories get large batches,
    /// so the pool's lock is taken rarely.
    var frameCacheSize: Int { min(512, max(4, frames / (max(expectedCPUs, 1) * 8))) & ~1 }

    /// `betweenOperations` calls from a CPU's oldest queued retire batch to
    /// the grace period that frees it (see `RetireBatch.maxWait`).
    var retireCountdown: Int { hunting ? RetireBatch.huntWait : RetireBatch.maxWait }
    /// Operations of a CPU after which its open retire batch is queued even
    /// if not full.
    var retireMaxAge: UInt64 { hunting ? RetireBatch.huntAge : RetireBatch.maxAge }
    /// Controlled runs hunt whatever was asked: the same free path as a
    /// real race-hunting run, only the waiting modelled.
    var hunting: Bool { controlled || recycling == .hunt }

    /// Slots a CPU gathers before queueing them for one grace period: at
    /// most an eighth of the mm slots over all CPUs, since gathered slots
    /// cannot be reused yet.
    /// A hunting run keeps batches short (`RetireBatch.huntBatch`).
    var retireBatchSize: Int {
        min(hunting ? RetireBatch.huntBatch : 64, max(1, mmSlots / (8 * max(expectedCPUs, 1))))
    }

    /// mm slots: live processes plus mms pinned, dying or waiting for a
    /// grace period (a CPU frees its retired slots some milliseconds late,
    /// and tens of thousands of exits a second pass through).
    ///
    /// The fixed slack of each pool is for objects waiting for a grace
    /// period, which a real run's CPUs may keep queued for a while; a
    /// controlled run (a few thousand steps, each slot freed right after
    /// the operation that retired it) needs little, and its machine is
    /// rebuilt for every schedule, so it gets a small slack (set-up cost
    /// dominated otherwise).
    var mmSlots: Int { maxProcesses * 4 + (controlled ? 64 : 1024) }
    /// Page-table leaves: a live mm uses at most one per VMA (VMAs are
    /// aligned and no larger than a leaf) plus one during an mremap; dying
    /// mms give theirs back before their slot waits for a grace period.
    var leafCount: Int { maxProcesses * (MachineConfig.maxVMAs + 4) + (controlled ? 32 : 512) }
    /// VMA objects: every VMA of every mm slot, plus the copies mremap makes
    /// and those waiting for a grace period.
    var vmaCount: Int { mmSlots * MachineConfig.maxVMAs / 2 + (controlled ? 256 : 4096) }

    /// Returns a one-line reason when the sizes cannot work together.
    public func validate() -> String? {
        func outside(_ name: String, _ v: Int, _ r: ClosedRange<Int>) -> String? {
            r.contains(v) ? nil : "\(name) must be \(r.lowerBound)...\(r.upperBound) (got \(v))"
        }
        if let p = outside("frames", frames, MachineConfig.framesRange) { return p }
        if let p = outside("swap slots", swapSlots, MachineConfig.swapSlotsRange) { return p }
        if let p = outside("processes", maxProcesses, MachineConfig.processesRange) { return p }
        if expectedCPUs < 1 || expectedCPUs > 65_536 { return "expected CPUs must be 1...65536 (got \(expectedCPUs))" }
        if vmaPages < 1 || vmaPages > MachineConfig.ptesPerLeaf || MachineConfig.ptesPerLeaf % vmaPages != 0 {
            return "VMA pages must be a divisor of \(MachineConfig.ptesPerLeaf): 1, 2, 4, ... 512 (got \(vmaPages))"
        }
        if vmasPerProcess < 1 || vmasPerProcess > MachineConfig.maxVMAs / 2 {
            return "VMAs per process must be 1...\(MachineConfig.maxVMAs / 2) (got \(vmasPerProcess))"
        }
        if frames < vmaPages * 2 { return "frames (\(frames)) must hold at least two VMAs of \(vmaPages) pages" }
        if anonVmaWalk == .rcuOnly && !scheme.hasAnonVMAWalk {
            return "anon_vma walk rcu-only is an option of the anon-vma, anon-vma-chain and cow-context schemes, not of \(scheme.rawValue)"
        }
        if anonVmaWalk == .rcuOnly && sync != .rcu {
            return "anon_vma walk rcu-only needs sync rcu (got sync \(sync.rawValue))"
        }
        if !anonVmaReuse && scheme != .anonVMAChain {
            return "anon_vma reuse can be turned off only for the anon-vma-chain scheme (got \(scheme.rawValue))"
        }
        if let p = outside("inodes", inodes, MachineConfig.inodesRange) { return p }
        if let p = outside("libraries", libraries, MachineConfig.librariesRange) { return p }
        if let p = outside("shmem inodes", shmemInodes, MachineConfig.shmemInodesRange) { return p }
        if libraries > inodes { return "libraries (\(libraries)) must not outnumber inodes (\(inodes))" }
        if injection.iMmap == .tree && iMmap != .tree {
            return "injection \(injection.rawValue) is a bug of i_mmap tree, not of \(iMmap.rawValue)"
        }
        if let only = injection.scheme, only != scheme {
            return "injection \(injection.rawValue) is a bug of the \(only.rawValue) scheme, not of \(scheme.rawValue)"
        }
        return nil
    }
}
