import Synchronization
import URCUShim

/// Life-cycle states of slots that RCU readers reach (mms, VMAs, anongroups,
/// anon_vmas).
///
///     mm:       free --alloc--> live --last user--> dying --unlinked--> rcuPending
///     group:    free --alloc--> live --last reference------------------> rcuPending
///     anon_vma: free --alloc--> live --last VMA unlinked---------------> rcuPending
///     VMA:      free --alloc--> live --unmapped, unlinked--------------> rcuPending
///     all:      rcuPending --grace period (its CPU's batch)--> free
///
/// A walker that reaches a slot under RCU may see any state but `free`;
/// seeing `free` is a lifetime violation.
enum SlotState {
    static let free: UInt32 = 0
    static let live: UInt32 = 1
    static let dying: UInt32 = 2
    static let rcuPending: UInt32 = 3

    static func name(_ s: UInt32) -> String {
        switch s {
        case free: "free"
        case live: "live"
        case dying: "dying"
        case rcuPending: "waiting for a grace period"
        default: "corrupt (\(s))"
        }
    }
}

/// What freeing a slot after its grace period needs to return it to its pool.
struct SlotFreeTarget {
    let pool: NodePool
    let states: PaddedArray<Atomic<UInt32>>
    /// Bumped with a plain write when the slot is freed, and read with a
    /// plain read by every walker that visits the slot. The values mean
    /// nothing; the accesses are what matter: a free that does not wait for
    /// the walkers is a data race ThreadSanitizer reports, while the grace
    /// period's happens-before edges (URCUShim) make the correct free clean.
    /// It plays the part of KASAN's poisoning of freed memory.
    let generation: UnsafeMutablePointer<UInt64>
    unowned(unsafe) let log: ViolationLog
    let kind: CacheKind
}

/// A slot's free, short of returning it to the pool: generation bump, state
/// `free`, ownership released. False (reported) when it was not allocated.
@inline(__always)
private func markFreeAfterGracePeriod(_ target: UnsafeMutablePointer<SlotFreeTarget>, _ h: UInt32) -> Bool {
    target.pointee.generation[Int(h)] &+= 1
    target.pointee.states[Int(h)].pointee.store(SlotState.free, ordering: .releasing)
    guard target.pointee.pool.release(h) else {
        target.pointee.log.record(Violation(kind: .lifetime, detail: "\(target.pointee.kind.name) \(h) freed twice"))
        return false
    }
    return true
}

/// A slab of slots freed through RCU: the one type behind mms, VMAs,
/// anongroups and anon_vmas. Each slot has a state and a generation (see
/// `SlotFreeTarget`); retired slots are queued for a grace period in
/// per-CPU batches (`Kernel.retire`). The pool is FIFO with ownership
/// tracking: freed slots wait longest before reuse, and a double free is a
/// violation, not a corrupted pool.
///
/// Ownership: the owner of a live slot retires it exactly once; `retire`
/// enforces that with a compare-exchange on the state, because a slot
/// queued twice would be freed twice and handed to two owners.
struct RCUSlab: @unchecked Sendable {
    let kind: CacheKind
    let pool: NodePool
    /// Padded: walkers read a slot's state while another CPU allocates or
    /// retires its neighbour.
    let state: PaddedArray<Atomic<UInt32>>
    let generation: UnsafeMutablePointer<UInt64>
    private let target: UnsafeMutablePointer<SlotFreeTarget>
    var capacity: Int { pool.capacity }

    init(kind: CacheKind, capacity: Int, nodes: Int, log: ViolationLog) {
        self.kind = kind
        pool = NodePool(capacity: capacity, nodes: nodes, order: .fifo, trackOwnership: true)
        state = PaddedArray(count: capacity + 1)
        for i in 0...capacity { state[i].initialize(to: Atomic(SlotState.free)) }
        generation = .allocate(capacity: capacity + 1)
        generation.initialize(repeating: 0, count: capacity + 1)
        target = .allocate(capacity: 1)
        target.initialize(to: SlotFreeTarget(pool: pool, states: state, generation: generation, log: log, kind: kind))
    }

    func destroy() {
        pool.destroy()
        for i in 0...capacity { state[i].deinitialize(count: 1) }
        state.deallocate()
        generation.deallocate()
        target.deinitialize(count: 1); target.deallocate()
    }

    @inline(__always) func load(_ h: UInt32) -> UInt32 { state[Int(h)].pointee.load(ordering: .acquiring) }

    @inline(__always) func contains(_ h: UInt32) -> Bool { h >= 1 && Int(h) <= capacity }

    /// Publishes a freshly allocated slot as live (release: its fields were
    /// set first).
    @inline(__always) func publish(_ h: UInt32) { state[Int(h)].pointee.store(SlotState.live, ordering: .releasing) }

    /// Moves the slot from `from` to `to`; false (nothing changes) when it
    /// was not in `from`, which callers report.
    @inline(__always) func transition(_ h: UInt32, from: UInt32, to: UInt32) -> Bool {
        state[Int(h)].pointee.compareExchange(expected: from, desired: to, ordering: .acquiringAndReleasing).exchanged
    }

    /// Returns a slot that was never published (nobody can have seen it).
    func freeUnpublished(_ h: UInt32) {
        state[Int(h)].pointee.store(SlotState.free, ordering: .releasing)
        pool.free(h)
    }

    /// Frees the slot at once, without a grace period: the planted bugs
    /// that skip the grace period (mm-free-no-grace, anon-vma-free-no-grace,
    /// avc-free-no-grace), and anon_vma_chain's AVCs under the lock modes,
    /// which walkers reach only under the root lock the freer holds. False, with nothing freed, when the
    /// slot was not in `from`.
    func freeNow(_ h: UInt32, from: UInt32) -> Bool {
        guard transition(h, from: from, to: SlotState.rcuPending) else { return false }
        if markFreeAfterGracePeriod(target, h) && !pool.put(h) {
            target.pointee.log.record(Violation(kind: .lifetime, detail: "\(kind.name) pool overflow freeing \(h)"))
        }
        return true
    }
}

/// A CPU's slots waiting for a grace period together.
///
/// One grace period per freed mm or group would be tens of thousands a
/// second, each a membarrier that interrupts every CPU running the
/// process. Linux batches callbacks per CPU for a grace period of
/// milliseconds; so do we: a CPU gathers the slots it retires into a batch,
/// queues the batch on its own list when it is full or old (see
/// `Kernel.retire`), and frees the list between operations after a grace
/// period (`Kernel.betweenOperations`), or when the CPU is drained.
///
/// Ownership: the CPU, from the first slot until `freeRetireBatch` frees
/// every slot in it and then the batch.
struct RetireBatch {
    var count = 0
    /// The CPU's `progress` when the first slot went in.
    var openedAt: UInt64 = 0
    /// The next (older) batch waiting for a grace period on its CPU's list,
    /// and the grace-period snapshot taken when this one was queued
    /// (worker-run frees only; see `Kernel.flushRetired`).
    var next: UnsafeMutablePointer<RetireBatch>?
    var gracePeriodSnapshot: UInt64 = 0
    let items: UnsafeMutablePointer<(target: UnsafeMutableRawPointer, handle: UInt32)>

    static func make(capacity: Int) -> UnsafeMutablePointer<RetireBatch> {
        let b = UnsafeMutablePointer<RetireBatch>.allocate(capacity: 1)
        b.initialize(to: RetireBatch(items: .allocate(capacity: capacity)))
        return b
    }
}

/// Runs after a grace period, on the CPU that queued the batch
/// (`Kernel.freeBatches`): frees every slot of the batch, then the batch.
/// Each run of one slab's slots goes back to its pool with one
/// `put(batch:)` (a lock per node stretch, not per slot).
func freeRetireBatch(_ b: UnsafeMutablePointer<RetireBatch>) {
    let n = b.pointee.count
    withUnsafeTemporaryAllocation(of: UInt32.self, capacity: max(n, 1)) { run in
        var i = 0
        while i < n {
            let raw = b.pointee.items[i].target
            let target = raw.assumingMemoryBound(to: SlotFreeTarget.self)
            var k = 0
            while i < n && b.pointee.items[i].target == raw {
                let h = b.pointee.items[i].handle
                if markFreeAfterGracePeriod(target, h) { run[k] = h; k += 1 }
                i += 1
            }
            if k > 0 && !target.pointee.pool.put(batch: k, from: run.baseAddress!) {
                target.pointee.log.record(Violation(kind: .lifetime, detail: "\(target.pointee.kind.name) pool overflow freeing a batch"))
            }
        }
    }
    b.pointee.items.deallocate()
    b.deinitialize(count: 1)
    b.deallocate()
}

extension RCUSlab {
    /// The free target this slab's slots are returned through.
    var freeTarget: UnsafeMutableRawPointer { UnsafeMutableRawPointer(target) }
}

extension Kernel {
    /// Retires a slot of `slab` (from state `from`) into the CPU's batch;
    /// the batch is queued for a grace period when full or when the CPU
    /// has finished many operations since it opened. False, with nothing
    /// queued, when the slot was not in `from` (a second retire).
    func retire(_ slab: RCUSlab, _ h: UInt32, from: UInt32, _ cpu: CPU) -> Bool {
        if inject == .mmFreeNoGrace && slab.kind == .mms {
            return slab.freeNow(h, from: from)
        }
        guard slab.transition(h, from: from, to: SlotState.rcuPending) else { return false }
        let size = config.retireBatchSize
        if cpu.pointee.retireBatch == nil {
            cpu.pointee.retireBatch = RetireBatch.make(capacity: size)
            cpu.pointee.retireBatch!.pointee.openedAt = cpu.pointee.progress.load(ordering: .relaxed)
        }
        let b = cpu.pointee.retireBatch!
        b.pointee.items[b.pointee.count] = (slab.freeTarget, h)
        b.pointee.count += 1
        if b.pointee.count == size
            || cpu.pointee.progress.load(ordering: .relaxed) &- b.pointee.openedAt > config.retireMaxAge {
            flushRetired(cpu)
        }
        return true
    }

    /// Queues the CPU's open batch, if any, on the CPU's own list, with a
    /// grace-period snapshot taken after its slots were unlinked (the CPU
    /// frees it between operations, see `betweenOperations`).
    func flushRetired(_ cpu: CPU) {
        guard let b = cpu.pointee.retireBatch else { return }
        cpu.pointee.retireBatch = nil
        if cpu.pointee.awaitingGracePeriod == nil { startGracePeriodCountdown(cpu) }
        b.pointee.gracePeriodSnapshot = P.gracePeriodSnapshot()
        b.pointee.next = cpu.pointee.awaitingGracePeriod
        cpu.pointee.awaitingGracePeriod = b
    }
}

extension Kernel {
    /// The countdown to the expiry of the CPU's oldest queued batch, in
    /// calls and (for a slow CPU) in time.
    private func startGracePeriodCountdown(_ cpu: CPU) {
        cpu.pointee.gracePeriodCountdown = config.retireCountdown
        cpu.pointee.gracePeriodQueuedAt = P.now()
    }

    /// Called at the end of every `Machine` operation and unpin (so a
    /// worker's operation on a pinned process counts twice): counts down
    /// from the CPU's oldest queued batch (`config.retireCountdown` calls, or
    /// `MachineConfig.retireMaxWaitNs` on a slow CPU, checked every 256).
    @inline(__always) func betweenOperations(_ cpu: CPU) {
        // A hunting CPU does not let an open batch wait for its next
        // retire: past its age it is queued here.
        if s.pointee.hunting, let b = cpu.pointee.retireBatch,
           cpu.pointee.progress.load(ordering: .relaxed) &- b.pointee.openedAt > config.retireMaxAge {
            flushRetired(cpu)
        }
        guard cpu.pointee.awaitingGracePeriod != nil else { return }
        cpu.pointee.gracePeriodCountdown -= 1
        let left = cpu.pointee.gracePeriodCountdown
        if left <= 0 || (left & 255 == 0 && P.now() &- cpu.pointee.gracePeriodQueuedAt > config.retireMaxWaitNs) {
            gracePeriodDue(cpu)
        }
    }

    /// The countdown ran out. Batches whose grace period has already
    /// elapsed (another CPU's synchronize_rcu, or the probe's, begun after
    /// they were queued) are freed at once; if that freed some and the rest
    /// can wait, the countdown starts again, so that with many CPUs one
    /// grace period frees the batches of all. Otherwise the CPU waits for a
    /// grace period of its own: every expiry frees something.
    func gracePeriodDue(_ cpu: CPU) {
        var newer: UnsafeMutablePointer<RetireBatch>? = nil
        var b = cpu.pointee.awaitingGracePeriod
        // Newest first, snapshots never increase along the list: the
        // elapsed batches are a tail.
        while let x = b, !P.gracePeriodElapsed(since: x.pointee.gracePeriodSnapshot) {
            newer = x
            b = x.pointee.next
        }
        if let elapsed = b {
            if let newer { newer.pointee.next = nil } else { cpu.pointee.awaitingGracePeriod = nil }
            cpu.pointee.count(.gracePeriodShared)
            freeBatches(elapsed, cpu)
        }
        guard cpu.pointee.awaitingGracePeriod != nil else {
            cpu.pointee.gracePeriodExpedited = false
            return
        }
        if b != nil && !cpu.pointee.gracePeriodExpedited {
            startGracePeriodCountdown(cpu)
        } else {
            completeGracePeriod(cpu)
        }
    }

    /// Frees every slot this CPU has retired so far: queues its open batch
    /// and waits for its grace period. Between operations only (see
    /// `completeGracePeriod`).
    func quiesce(_ cpu: CPU) {
        flushRetired(cpu)
        completeGracePeriod(cpu)
    }

    /// Out of slots: the CPU's retired ones are freed after its next
    /// operation rather than thousands later (the operation that ran out
    /// holds locks, so it cannot wait for a grace period itself).
    func expediteGracePeriod(_ cpu: CPU) {
        flushRetired(cpu)
        if cpu.pointee.awaitingGracePeriod != nil {
            cpu.pointee.gracePeriodCountdown = 1
            cpu.pointee.gracePeriodExpedited = true
        }
    }

    /// Waits for a grace period and frees every batch the CPU queued before
    /// it. Only between operations: the caller holds no lock and is in no
    /// read-side section, or it would wait for itself.
    func completeGracePeriod(_ cpu: CPU) {
        guard let b = cpu.pointee.awaitingGracePeriod else { return }
        cpu.pointee.awaitingGracePeriod = nil
        cpu.pointee.gracePeriodExpedited = false
        cpu.pointee.waitingForGracePeriod.store(true, ordering: .relaxed)
        P.synchronizeRCU()
        cpu.pointee.waitingForGracePeriod.store(false, ordering: .relaxed)
        cpu.pointee.count(.gracePeriodWait)
        freeBatches(b, cpu)
    }

    /// Frees `first` and every batch after it on its list.
    private func freeBatches(_ first: UnsafeMutablePointer<RetireBatch>, _ cpu: CPU) {
        var b = first
        while true {
            let next = b.pointee.next
            freeRetireBatch(b)
            cpu.pointee.count(.retireBatchFreed)
            guard let n = next else { break }
            b = n
        }
    }
}

extension RetireBatch {
    /// Operations of its CPU after which an open batch is queued anyway
    /// (a hunting run's: `huntAge`).
    static let maxAge: UInt64 = 4096
    /// `betweenOperations` calls of its CPU from its oldest queued batch to
    /// the expiry that frees it (`Kernel.gracePeriodDue`): 8192-16384 worker
    /// operations, about 5-30 ms at the 0.5-1.5 M operations per second a
    /// CPU does here, near the cadence of liburcu's call_rcu thread (which
    /// the model no longer uses, see ARCHITECTURE.md section 2): at 4096,
    /// four workers on 2 cores ran 400 grace periods a second, and memb's waits on preempted readers
    /// made rcu 0.8x of mutex; at 16384, 0.96x. Running out of slots does
    /// not wait for it (`expediteGracePeriod`).
    /// A CPU too slow to reach it soon (ThreadSanitizer builds, many
    /// threads per core) is bounded by `MachineConfig.retireMaxWaitNs`
    /// instead: without it, its slots would be freed only at teardown, and
    /// a run would never exercise frees racing with walkers.
    static let maxWait = 16384
    /// The race hunter's batches (`Recycling.hunt`, and every controlled
    /// run): a few slots, queued after a few operations, freed after the
    /// expiry that follows a few more, so a free lands while the walks that
    /// began before the unlink may still be running elsewhere, and a batch
    /// of several slots still goes through the same queue, polling and
    /// expiry code as a throughput run's.
    static let huntBatch = 4
    static let huntAge: UInt64 = 8
    static let huntWait = 8
}
