import Synchronization

/// Events counted per CPU. Raw values index `CPUState.events`.
public enum Event: Int, CaseIterable, Sendable {
    case firstTouch, cowCopy, cowReuse, swapIn, faultOOM, badAddress, migrationWait
    /// Swap-ins that mapped the swap cache's page (sharing kept), that had
    /// to copy it (the scheme's rule), and cached pages reclaim freed.
    case swapCacheHit, swapCacheCopy, swapCacheFreed
    /// rmap walks; objects they visited (mms or VMAs), and visits that found
    /// no mapping of the page (wasted); ptl trylocks that failed.
    case rmapWalk, walkVisited, walkWasted, walkTrylockFail
    /// mremap: shared pages copied, pages re-indexed, pages whose PTE just
    /// moved (anon_vma keeps the index), swap entries moved.
    case mremapCopy, mremapMove, mremapKeep, mremapSwapMove
    /// VMAs split in two, VMAs shrunk by unmapping their tail, VMAs merged
    /// into a neighbour (vma_merge), and anon_vmas a first fault took over
    /// from a neighbour instead of allocating (find_mergeable_anon_vma).
    case vmaSplit, vmaShrink, vmaMerge, anonVmaReused
    case reclaimScanned, reclaimReferenced, swapOut, swapFull
    case migrated, migrateSkipped
    case forkFailed, processLimit, pagesFreed, directReclaim, forkExec
    /// Grace periods a worker waited for itself, expiries that found
    /// batches whose grace period another thread's had already covered, and
    /// the retired batches freed either way (see `Kernel.gracePeriodDue`).
    case gracePeriodWait, gracePeriodShared, retireBatchFreed
    /// File mappings made; faults that mapped a page cache page; private
    /// write faults that copied one; dirty pages written back; cache pages
    /// reclaim dropped; truncates; faults beyond EOF (SIGBUS).
    case mmapFile, fileFault, fileCow, fileWriteback, fileDropped, truncate, fileSigbus
    /// Shared libraries a new process image mapped, and those it found no
    /// VMA slot for.
    case mapLibrary, mapLibraryFailed
    /// cow-context: mremaps that found their context's remap records full
    /// and fell back to copying shared pages.
    case remapRecordFull
    /// Shared anonymous mappings made (each allocates a shmem inode), those
    /// that found the pool empty, shmem inodes evicted (their last mapping
    /// went), and dirty shmem pages reclaim wrote to their backing (the
    /// model's stand-in for swap).
    case mmapShmem, shmemAllocFailed, shmemEvict, shmemWriteback

    /// snake_case, as in results files: `first_touch`, `fault_oom`.
    public var name: String {
        let chars = Array(String(describing: self))
        var out = ""
        for (i, c) in chars.enumerated() {
            // A word starts at a capital after a lower-case letter (faultOom),
            // or at the last capital of a run before lower case (OOMKill).
            let startsWord = c.isUppercase && i > 0
                && (!chars[i - 1].isUppercase || (i + 1 < chars.count && chars[i + 1].isLowercase))
            if startsWord { out += "_" }
            out += c.lowercased()
        }
        return out
    }
}

/// Per-thread state of one worker: the model's `struct cpu`/`current`.
///
/// Ownership: created and destroyed by whoever runs the worker thread (the
/// stress engine, or a test). Only the owning thread writes it while it runs;
/// counters are atomics written with relaxed load+store (no locked RMW) so
/// that the status line and the failure dump may read them concurrently.
/// The CPU's caches of free frames, leaves and slots live in the machine
/// (`CPUCaches`, block `cacheSlot`), where other CPUs can drain them.
public struct CPUState: ~Copyable {
    public let id: Int
    var rng: UInt64
    /// A second stream, used only to choose the next operation, so that the
    /// sequence of operation kinds of each worker follows from the seed
    /// alone, however many random numbers the operations themselves drew.
    var opRng: UInt64
    /// This CPU's block in the machine's per-CPU caches (0: none; a CPU
    /// made outside a machine cannot allocate).
    public let cacheSlot: Int
    /// The memory node this CPU allocates from and reclaims first.
    public let node: Int
    let events: UnsafeMutablePointer<Atomic<UInt64>>
    /// Recent operations: (op << 56 | mm << 32 | arg), newest at ring[(pos-1) % size].
    let ring: UnsafeMutablePointer<Atomic<UInt64>>
    let ringPos = Atomic<Int>(0)
    var currentOp: OpKind = .fault
    /// Incremented after every finished operation; the watchdog watches it.
    public let progress = Atomic<UInt64>(0)
    /// Sequence number for values written by this CPU (content words).
    var writeSeq: UInt64 = 0
    /// Sink for the walkers' plain reads of slot generations.
    var lastGeneration: UInt64 = 0
    /// The rcu-unlock-forgotten injection forgets once per CPU.
    var forgotUnlock = false
    /// Slots this CPU retired that wait to be queued for a grace period
    /// together (see `RetireBatch`). Owner only.
    var retireBatch: UnsafeMutablePointer<RetireBatch>?
    /// Queued batches that wait for a grace period, newest first, and the
    /// `betweenOperations` calls left before their expiry.
    var awaitingGracePeriod: UnsafeMutablePointer<RetireBatch>?
    var gracePeriodCountdown = 0
    /// Set when the CPU ran out of slots: its next expiry waits for a grace
    /// period of its own rather than settle for a shared one.
    var gracePeriodExpedited = false
    /// `P.now()` when the countdown started (`MachineConfig.retireMaxWaitNs`).
    var gracePeriodQueuedAt: UInt64 = 0
    /// True while the CPU waits in synchronize_rcu for its queued batches:
    /// a stall report names such a CPU as a waiter, not as the culprit.
    public let waitingForGracePeriod = Atomic<Bool>(false)
    /// RCU read-side nesting depth, and the value of `progress` when the
    /// outermost section was entered: the watchdog reads both to name a CPU
    /// that holds a grace period up.
    public let rcuDepth = Atomic<Int>(0)
    public let rcuEnteredAt = Atomic<UInt64>(0)

    static let ringSize = 32

    public init(id: Int, seed: UInt64, cacheSlot: Int = 0, node: Int = 0) {
        self.id = id
        self.cacheSlot = cacheSlot
        self.node = node
        // splitmix64 of (seed, id): every CPU's stream follows from the seed.
        rng = SplitMix64.finalize(seed &+ UInt64(id + 1) &* SplitMix64.gamma) | 1
        opRng = (rng &* 0xD1B5_4A32_D192_ED03) | 1
        events = CacheLine.allocate(Atomic<UInt64>.self, count: Event.allCases.count)
        for i in 0..<Event.allCases.count { (events + i).initialize(to: Atomic(0)) }
        ring = CacheLine.allocate(Atomic<UInt64>.self, count: CPUState.ringSize)
        for i in 0..<CPUState.ringSize { (ring + i).initialize(to: Atomic(0)) }
    }

    deinit {
        events.deinitialize(count: Event.allCases.count)
        events.deallocate()
        ring.deinitialize(count: CPUState.ringSize)
        ring.deallocate()
    }

    /// xorshift64*: fast, and each CPU's sequence follows from the seed.
    @inline(__always) public mutating func random() -> UInt64 { CPUState.xorshift(&rng) }

    @inline(__always) static func xorshift(_ s: inout UInt64) -> UInt64 {
        s ^= s >> 12
        s ^= s << 25
        s ^= s >> 27
        return s &* 0x2545_F491_4F6C_DD1D
    }

    /// The next number of the operation-choice stream (see `opRng`).
    @inline(__always) public mutating func randomOperation() -> UInt64 { CPUState.xorshift(&opRng) }

    @inline(__always) public mutating func random(below n: Int) -> Int {
        Int(truncatingIfNeeded: (random() >> 11) % UInt64(max(n, 1)))
    }

    @inline(__always) func count(_ e: Event, _ n: UInt64 = 1) {
        let c = events + e.rawValue
        c.pointee.store(c.pointee.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    public func eventCount(_ e: Event) -> UInt64 { events[e.rawValue].load(ordering: .relaxed) }

    /// Notes the operation about to run in the ring of recent operations.
    @inline(__always) public mutating func note(_ op: OpKind, mm: UInt32, arg: UInt32) {
        currentOp = op
        let pos = ringPos.load(ordering: .relaxed)
        ring[pos & (CPUState.ringSize - 1)].store(
            UInt64(op.rawValue) << 56 | UInt64(mm & 0xFF_FFFF) << 32 | UInt64(arg), ordering: .relaxed)
        ringPos.store(pos &+ 1, ordering: .relaxed)
    }

    @inline(__always) func enterReadSide() {
        let d = rcuDepth.load(ordering: .relaxed)
        if d == 0 { rcuEnteredAt.store(progress.load(ordering: .relaxed), ordering: .relaxed) }
        rcuDepth.store(d + 1, ordering: .relaxed)
    }

    @inline(__always) func exitReadSide() {
        rcuDepth.store(rcuDepth.load(ordering: .relaxed) - 1, ordering: .relaxed)
    }

    @inline(__always) public func finished() {
        progress.store(progress.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// What the CPU is doing, for a stall report: its last operation, or
    /// the grace period it waits for after it.
    public func currentActivity() -> String {
        let last = recentOperations().last ?? "none"
        return waitingForGracePeriod.load(ordering: .relaxed) ? "synchronize_rcu after \(last)" : last
    }

    /// The last operations, oldest first, as "op(mm=…, arg=…)" strings.
    public func recentOperations() -> [String] {
        var out: [String] = []
        let pos = ringPos.load(ordering: .relaxed)
        let n = min(pos, CPUState.ringSize)
        for k in 0..<n {
            let w = ring[(pos - n + k) & (CPUState.ringSize - 1)].load(ordering: .relaxed)
            let op = OpKind(rawValue: Int(w >> 56)).map(\.name) ?? "?"
            out.append("\(op)(mm=\((w >> 32) & 0xFF_FFFF), arg=0x\(String(w & 0xFFFF_FFFF, radix: 16)))")
        }
        return out
    }
}

/// Operations take the CPU they run on by pointer: no ARC, no copies.
public typealias CPU = UnsafeMutablePointer<CPUState>
