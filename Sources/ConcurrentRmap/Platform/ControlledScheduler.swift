import URCUShim
#if canImport(Glibc)
import Glibc
#endif

/// How a controlled run picks the next thread at each scheduling point.
public enum ScheduleStrategy: Sendable, Equatable {
    /// Uniformly among the threads that can run.
    case random
    /// PCT with depth `d` (Burckhardt et al., ASPLOS 2010): random distinct
    /// priorities, the highest runnable one runs, and at `d - 1` random
    /// steps the running thread drops below every other.
    case pct(depth: Int)
    /// The switches of a schedule file, the default policy elsewhere.
    case replay
}

/// One decision that differs from the default policy: at `step`, `thread`
/// runs (a worker number).
public struct ScheduleSwitch: Sendable, Equatable {
    public var step: Int
    public var thread: Int
    public init(step: Int, thread: Int) { self.step = step; self.thread = thread }
}

/// What a controlled thread did at a scheduling point (the replay trace).
public enum ScheduleEventKind: UInt8, Sendable {
    case opStart, lock, trylockOK, trylockBusy, unlock, readLock, writeLock,
         rcuEnter, rcuExit, raceWindow, wait, blocked, finished, parked,
         gracePeriodBegin, gracePeriodEnd
}

public struct ScheduleEvent: Sendable {
    public var step: Int
    public var thread: Int
    public var kind: ScheduleEventKind
    /// The lock's address, or the operation's (kind, mm, arg) packed, or a count.
    public var object: UInt
    public var detail: UInt64
}

/// The scheduler of a controlled run: real threads, exactly one of which
/// runs at a time. Every `ControlledPlatform` call is a scheduling point
/// where the scheduler picks who runs next (by strategy, or from a
/// schedule), hands its token over through per-thread semaphores, and
/// waits for it to come back. Locks, RCU readers and grace periods
/// (synchronize_rcu and its polled form) are modelled here instead of in
/// pthread and liburcu, so the run is a function of (options, seed,
/// schedule) alone.
///
/// The default policy, used wherever a schedule says nothing: keep running
/// the current thread while it can; when it blocks, waits or finishes, the
/// next runnable worker after it in round-robin order. A schedule is the
/// list of steps where the choice differed from that policy, so a
/// non-preemptive run has an empty one.
///
/// Concurrency: all fields are touched only by the thread holding the token
/// (or by the driver while no worker runs); the semaphore hand-over orders
/// those accesses. Hence `@unchecked Sendable`.
public final class ControlledScheduler: @unchecked Sendable {
    public let threads: Int
    public let strategy: ScheduleStrategy
    /// Scheduling points after which workers start no new operation.
    public let stepBudget: Int
    /// Steps allowed after the budget (or the first violation) for the
    /// operations in flight to finish; beyond it the run is a livelock.
    public let drainLimit: Int
    /// Consecutive waits of one thread with nothing else changing.
    static let spinLimit = 20_000

    // Threads
    /// `waitingGracePeriod(s)`: in synchronize_rcu, begun at step `s`.
    private enum State: Equatable { case ready, waitingLock(Int), waitingRead(Int), waitingWrite(Int), waitingGracePeriod(Int), finished, parked }
    private var state: [State]
    private var yielding: [Bool]
    private var spins: [Int]
    private let sems: UnsafeMutablePointer<sem_t>
    private var driverSem = sem_t()
    /// The worker holding the token; -1 when none (set-up, teardown).
    public private(set) var current = -1
    public private(set) var step = 0
    /// Set once the step budget is spent or a violation was seen.
    public private(set) var stopping = false
    public private(set) var aborted: String?

    // Decisions
    private var rng: SplitMix64
    public private(set) var recorded: [ScheduleSwitch] = []
    private var replaySwitches: [ScheduleSwitch] = []
    private var replayCursor = 0
    /// Strict replay: a switch naming a thread that cannot run is a divergence.
    private let strict: Bool
    public private(set) var divergence: String?
    private var priority: [Int] = []
    private var changePoints: [Int] = []
    private var changesMade = 0
    private var candidates: [Int]

    // Locks, keyed by the address of their pthread storage.
    private var lockIDs: [UInt: Int] = [:]
    private var lockAddress: [UInt] = []
    private var owner: [Int] = []          // mutex owner or rwlock writer, -1 none
    private var readers: [Int] = []        // rwlock readers

    // Lockdep: the locks each thread holds, in the order taken, checked
    // against `LockClass` at every acquisition.
    private struct HeldLock { var key: UInt; var cls: LockClass; var site: LockSite }
    private var held: [[HeldLock]]
    /// (held class, wanted class) pairs already reported: one report each.
    private var reportedOrders: Set<Int> = []
    private var reportedUnheld: Set<String> = []
    private var recordViolation: (Violation) -> Void = { _ in }

    // RCU
    private var rcuDepth: [Int]
    private var rcuEnteredAt: [Int]
    /// Grace periods are numbered and polled by the shim itself
    /// (`crm_rcu_gp_begin`/`end`, `crm_rcu_gp_snapshot`/`elapsed`): only
    /// the wait is modelled here, so a controlled run exercises the same
    /// polling code as a real one.
    public private(set) var gracePeriodsCompleted = 0
    /// synchronize_rcu calls of the driver that could not complete: a
    /// worker stopped inside a read-side section.
    public private(set) var stuckGracePeriods = 0

    // Violation watch
    private var violationCount: () -> Int = { 0 }
    public private(set) var violationStep: Int?

    // Trace
    private var trace: [ScheduleEvent]
    private var traceNext = 0
    public static let traceLength = 256

    /// The scheduler of the controlled run in progress (one per process).
    nonisolated(unsafe) public static var active: ControlledScheduler?

    public init(threads: Int, strategy: ScheduleStrategy, seed: UInt64, stepBudget: Int,
                switches: [ScheduleSwitch] = [], strict: Bool = false) {
        precondition(threads >= 1)
        self.threads = threads
        self.strategy = strategy
        self.stepBudget = stepBudget
        drainLimit = max(100_000, stepBudget * 20)
        self.strict = strict
        rng = SplitMix64(seed: seed ^ 0x5bd1_e995_0000_0001)
        state = Array(repeating: .ready, count: threads)
        yielding = Array(repeating: false, count: threads)
        spins = Array(repeating: 0, count: threads)
        held = Array(repeating: [], count: threads)
        candidates = Array(repeating: 0, count: threads)
        rcuDepth = Array(repeating: 0, count: threads)
        rcuEnteredAt = Array(repeating: 0, count: threads)
        sems = .allocate(capacity: threads)
        for i in 0..<threads { sem_init(sems + i, 0, 0) }
        sem_init(&driverSem, 0, 0)
        trace = Array(repeating: ScheduleEvent(step: -1, thread: 0, kind: .opStart, object: 0, detail: 0),
                      count: Self.traceLength)
        replaySwitches = switches
        if case .pct(let d) = strategy {
            // Priorities d ..< d + threads, shuffled; change points in
            // 1 ..< budget.
            var p = Array(d..<(d + threads))
            for i in stride(from: p.count - 1, to: 0, by: -1) { p.swapAt(i, Int(next() % UInt64(i + 1))) }
            priority = p
            changePoints = (0..<max(0, d - 1)).map { _ in 1 + Int(next() % UInt64(max(1, stepBudget - 1))) }.sorted()
        }
    }

    deinit {
        for i in 0..<threads { sem_destroy(sems + i) }
        sems.deallocate()
        sem_destroy(&driverSem)
    }

    /// Where the scheduler reads the machine's violation count, and where
    /// it records the violations it finds itself (lock order, locks not
    /// held).
    public func watchViolations(_ count: @escaping () -> Int, record: @escaping (Violation) -> Void) {
        violationCount = count
        recordViolation = record
    }

    private func next() -> UInt64 { rng.next() }

    // MARK: Running

    /// Called by each worker thread before it does anything: waits for the
    /// token.
    public func threadBegin(_ id: Int) { sem_wait(sems + id) }

    /// Called by the driver after starting every worker: hands out the first
    /// token and waits until no worker can run any more.
    public func runToCompletion() {
        let first = choose(from: -1)
        if first < 0 { return }
        current = first
        sem_post(sems + first)
        sem_wait(&driverSem)
        current = -1
    }

    /// The worker's loop asks before each operation: false once the budget
    /// is spent or a violation was seen.
    public func mayStartOperation() -> Bool {
        noteViolation()
        if step >= stepBudget { stopping = true }
        return !stopping && aborted == nil
    }

    /// The worker finished (its loop ended): hand the token on for good.
    public func threadEnd(_ id: Int) {
        state[id] = .finished
        record(.finished, object: 0, detail: 0)
        let n = choose(from: id)
        if n < 0 {
            // Nothing can run: fine when every worker finished; otherwise
            // the rest wait for something that will never happen.
            if !unfinished.isEmpty { abort(deadlockReason) }
            current = -1
            sem_post(&driverSem)
        } else {
            current = n
            sem_post(sems + n)
        }
    }

    private func noteViolation() {
        if violationStep == nil && violationCount() > 0 {
            violationStep = step
            stopping = true
            violationEvents = lastEvents
            violationHolders = holders()
        }
    }

    /// The trace and the lock holders as they were when the first
    /// violation was seen (what `replay` prints).
    public private(set) var violationEvents: [ScheduleEvent]?
    public private(set) var violationHolders: [(lock: Int, owner: Int, readers: Int)]?

    /// Every lock held now: (lock, owner worker or -1, readers).
    public func holders() -> [(lock: Int, owner: Int, readers: Int)] {
        (0..<owner.count).compactMap { l in owner[l] >= 0 || readers[l] > 0 ? (l, owner[l], readers[l]) : nil }
    }

    /// A scheduling point of the current worker.
    @inline(never)
    func point() {
        let me = current
        guard me >= 0 else { return }
        step += 1
        noteViolation()
        if step >= stepBudget { stopping = true }
        if step > stepBudget + drainLimit && aborted == nil {
            abort("livelock: \(step) steps, \(drainLimit) past the step budget, and the operations in flight have not finished")
        }
        let n = choose(from: me)
        if n == me || n < 0 {
            if n < 0 { deadlock() }
            return
        }
        handOff(from: me, to: n)
    }

    private func handOff(from me: Int, to n: Int) {
        current = n
        sem_post(sems + n)
        sem_wait(sems + me)
        // Back: current == me, set by whoever handed the token back.
    }

    /// No thread can run, yet some have not finished: every waiter is
    /// stuck for good. Recorded and the run is abandoned (the stuck
    /// threads stay blocked; the driver leaks them).
    private func deadlock() {
        abort(deadlockReason)
        deadlockExit()
    }

    private var deadlockReason: String { "deadlock: no thread can run: " + describeThreads() }

    private func abort(_ why: String) {
        if aborted == nil { aborted = why; stopping = true }
    }

    public func describeThreads() -> String {
        (0..<threads).map { t -> String in
            switch state[t] {
            case .ready: return "worker \(t) runnable" + (rcuDepth[t] > 0 ? " (in a read-side section)" : "")
            case .finished: return "worker \(t) finished" + (rcuDepth[t] > 0 ? " inside a read-side section" : "")
            case .parked: return "worker \(t) blocked for good" + (rcuDepth[t] > 0 ? " inside a read-side section" : "")
            case .waitingLock(let l), .waitingWrite(let l):
                return "worker \(t) waits for lock #\(l) held by " + (owner[l] >= 0 ? "worker \(owner[l])" : "\(readers[l]) reader(s)")
            case .waitingRead(let l):
                return "worker \(t) waits to read lock #\(l) held by worker \(owner[l])"
            case .waitingGracePeriod(let s):
                let holders = (0..<threads).filter { rcuDepth[$0] > 0 && rcuEnteredAt[$0] <= s }
                return "worker \(t) waits in synchronize_rcu (begun at step \(s)) for the read-side section of "
                    + holders.map { "worker \($0)" }.joined(separator: ", ")
            }
        }.joined(separator: "; ")
    }

    /// Workers that did not finish (after `runToCompletion`).
    public var unfinished: [Int] { (0..<threads).filter { state[$0] != .finished } }
    /// Workers that hold a read-side section or a lock now.
    public func holds(_ t: Int) -> (rcuDepth: Int, locks: Int) { (rcuDepth[t], held[t].count) }

    // MARK: Choosing

    private func canRun(_ t: Int) -> Bool {
        switch state[t] {
        case .ready: return true
        case .finished, .parked: return false
        case .waitingLock(let l), .waitingWrite(let l): return owner[l] < 0 && readers[l] == 0
        case .waitingRead(let l): return owner[l] < 0
        case .waitingGracePeriod(let s): return gracePeriodEnded(begunAt: s)
        }
    }

    /// The thread to run after `me`'s scheduling point. -1: none can run.
    private func choose(from me: Int) -> Int {
        let n = pick(from: me)
        if n >= 0 { yielding[n] = false }
        return n
    }

    private func pick(from me: Int) -> Int {
        let total = threads
        // Default: me if it can run and is not waiting on someone else;
        // otherwise round robin after me.
        var fallback = -1
        if me >= 0 && canRun(me) && !yielding[me] {
            fallback = me
        } else {
            for k in 1...total {
                let t = (me + k + total) % total
                if canRun(t) && t != me { fallback = t; break }
            }
            if fallback < 0 && me >= 0 && canRun(me) { fallback = me }
        }
        if fallback < 0 { return -1 }
        if stopping || aborted != nil { return fallback }  // draining: default policy only
        var choice = fallback
        switch strategy {
        case .random:
            var n = 0
            for t in 0..<total where canRun(t) && !(t == me && yielding[me] && fallback != me) {
                candidates[n] = t
                n += 1
            }
            if n > 0 { choice = candidates[Int(next() % UInt64(n))] }
        case .pct:
            if changesMade < changePoints.count && step >= changePoints[changesMade] && me >= 0 {
                priority[me] = changePoints.count - changesMade  // below every initial priority
                changesMade += 1
            }
            var best = -1
            for t in 0..<total where canRun(t) && !(t == me && yielding[me] && fallback != me) {
                if best < 0 || priority[t] > priority[best] { best = t }
            }
            if best >= 0 { choice = best }
        case .replay:
            while replayCursor < replaySwitches.count && replaySwitches[replayCursor].step < step { replayCursor += 1 }
            if replayCursor < replaySwitches.count && replaySwitches[replayCursor].step == step {
                let s = replaySwitches[replayCursor]
                let t = s.thread
                replayCursor += 1
                if t >= 0 && t < total && canRun(t) {
                    choice = t
                } else if strict && divergence == nil {
                    divergence = "step \(step): the schedule runs worker \(s.thread), which cannot run there"
                }
            }
        }
        if choice != fallback {
            recorded.append(ScheduleSwitch(step: step, thread: choice))
        }
        return choice
    }

    // MARK: Locks

    private func lockID(_ p: UnsafeMutableRawPointer) -> Int {
        let a = UInt(bitPattern: p)
        if let id = lockIDs[a] { return id }
        let id = owner.count
        lockIDs[a] = id
        lockAddress.append(a)
        owner.append(-1)
        readers.append(0)
        return id
    }

    public func lockAddress(ofID id: Int) -> UInt { id < lockAddress.count ? lockAddress[id] : 0 }

    func lock(_ p: UnsafeMutableRawPointer, _ c: LockClass, _ at: LockSite) {
        let me = current
        let l = lockID(p)
        guard me >= 0 else { owner[l] = -2; return }  // driver: nobody else runs
        checkOrder(me, c, at)
        point()
        if owner[l] >= 0 || readers[l] > 0 {
            state[me] = .waitingLock(l)
            record(.blocked, object: UInt(l), detail: 0)
            point()  // returns once the lock is free and we were picked
            state[me] = .ready
        }
        owner[l] = me
        held[me].append(HeldLock(key: UInt(bitPattern: p), cls: c, site: at))
        record(.lock, object: UInt(l), detail: 0)
    }

    func tryLock(_ p: UnsafeMutableRawPointer, _ c: LockClass, _ at: LockSite) -> Bool {
        let me = current
        let l = lockID(p)
        guard me >= 0 else {
            if owner[l] != -1 || readers[l] > 0 { return false }
            owner[l] = -2
            return true
        }
        point()
        if owner[l] >= 0 || owner[l] == -2 || readers[l] > 0 {
            record(.trylockBusy, object: UInt(l), detail: 0)
            return false
        }
        owner[l] = me
        held[me].append(HeldLock(key: UInt(bitPattern: p), cls: c, site: at))
        record(.trylockOK, object: UInt(l), detail: 0)
        return true
    }

    func unlock(_ p: UnsafeMutableRawPointer) {
        let me = current
        let l = lockID(p)
        guard me >= 0 else {
            if readers[l] > 0 { readers[l] -= 1 } else { owner[l] = -1 }
            return
        }
        if owner[l] == me {
            owner[l] = -1
        } else if readers[l] > 0 {
            readers[l] -= 1
        } else {
            owner[l] = -1  // unlock of a lock not held: pthread's undefined behaviour; model as a release
        }
        dropHeld(me, key: UInt(bitPattern: p))
        record(.unlock, object: UInt(l), detail: 0)
        spinsReset()
        point()
    }

    func readLock(_ p: UnsafeMutableRawPointer, _ c: LockClass, _ at: LockSite) {
        let me = current
        let l = lockID(p)
        guard me >= 0 else { readers[l] += 1; return }
        checkOrder(me, c, at)
        point()
        if owner[l] >= 0 {
            state[me] = .waitingRead(l)
            record(.blocked, object: UInt(l), detail: 1)
            point()
            state[me] = .ready
        }
        readers[l] += 1
        held[me].append(HeldLock(key: UInt(bitPattern: p), cls: c, site: at))
        record(.readLock, object: UInt(l), detail: 0)
    }

    func writeLock(_ p: UnsafeMutableRawPointer, _ c: LockClass, _ at: LockSite) {
        let me = current
        let l = lockID(p)
        guard me >= 0 else { owner[l] = -2; return }
        checkOrder(me, c, at)
        point()
        if owner[l] >= 0 || readers[l] > 0 {
            state[me] = .waitingWrite(l)
            record(.blocked, object: UInt(l), detail: 2)
            point()
            state[me] = .ready
        }
        owner[l] = me
        held[me].append(HeldLock(key: UInt(bitPattern: p), cls: c, site: at))
        record(.writeLock, object: UInt(l), detail: 0)
    }

    // MARK: Lockdep

    /// A blocking acquisition of class `c` by worker `me`: every lock it
    /// holds must rank below `c` (`LockClass`). Checked before the wait,
    /// so an inversion is reported whether or not this schedule deadlocks.
    private func checkOrder(_ me: Int, _ c: LockClass, _ at: LockSite) {
        for h in held[me] where !c.mayNest(under: h.cls) {
            let pair = h.cls.rank << 8 | c.rank
            guard reportedOrders.insert(pair).inserted else { continue }
            let what = h.cls == c
                ? "takes a second \(c.name) at \(at) while holding one taken at \(h.site), with no nesting annotation"
                : "takes \(c.name) at \(at) while holding \(h.cls.name) taken at \(h.site); LockClass orders \(c.name) before \(h.cls.name)"
            recordViolation(Violation(kind: .lockOrder, cpu: me, detail: "worker \(me) " + what))
        }
    }

    private func dropHeld(_ me: Int, key: UInt) {
        if let i = held[me].lastIndex(where: { $0.key == key }) { held[me].remove(at: i) }
    }

    /// The model's own locks (the page lock): bookkeeping only, the wait
    /// itself goes through `relax`.
    func lockdepAcquire(key: UInt, _ c: LockClass, trylock: Bool, _ at: LockSite) {
        let me = current
        guard me >= 0 else { return }
        if !trylock { checkOrder(me, c, at) }
        held[me].append(HeldLock(key: key, cls: c, site: at))
    }

    func lockdepRelease(key: UInt) {
        let me = current
        guard me >= 0 else { return }
        dropHeld(me, key: key)
    }

    /// lockdep_assert_held: reports a caller that needs lock `key` (of
    /// class `c`) and does not hold it, once per (class, site line).
    func assertHeld(key: UInt, _ c: LockClass, _ at: LockSite) {
        let me = current
        guard me >= 0, !held[me].contains(where: { $0.key == key }) else { return }
        guard reportedUnheld.insert("\(c.name) \(at)").inserted else { return }
        recordViolation(Violation(kind: .lockNotHeld, cpu: me,
                                  detail: "worker \(me) at \(at) needs the \(c.name) it works under and does not hold it"))
    }

    /// A wait for another thread (page lock, migration entry): the waiter
    /// yields to any other runnable thread. Waiting with nothing else
    /// able to run, for long, is a livelock.
    func relax() {
        let me = current
        guard me >= 0 else { return }
        spins[me] += 1
        if spins[me] > Self.spinLimit && aborted == nil {
            abort("livelock: worker \(me) waited \(Self.spinLimit) times in a row for something no other thread changed")
            deadlockExit()
        }
        yielding[me] = true
        record(.wait, object: 0, detail: UInt64(spins[me]))
        point()
    }

    private func deadlockExit() {
        let me = current
        current = -1
        sem_post(&driverSem)
        if me >= 0 { sem_wait(sems + me) }  // never returns: the run is abandoned
    }

    private func spinsReset() {
        for t in 0..<threads { spins[t] = 0 }
    }

    /// The thread blocks for good (the rcu-reader-stall bug's endless sleep).
    func park() {
        let me = current
        guard me >= 0 else { return }
        state[me] = .parked
        record(.parked, object: 0, detail: 0)
        point()  // never picked again
    }

    // MARK: RCU

    func rcuEnter() {
        let me = current
        guard me >= 0 else { return }
        point()
        rcuDepth[me] += 1
        if rcuDepth[me] == 1 { rcuEnteredAt[me] = step }
        record(.rcuEnter, object: 0, detail: UInt64(rcuDepth[me]))
    }

    func rcuExit() {
        let me = current
        guard me >= 0 else { return }
        rcuDepth[me] = max(0, rcuDepth[me] - 1)
        record(.rcuExit, object: 0, detail: UInt64(rcuDepth[me]))
        point()
    }

    /// synchronize_rcu: the worker waits until every reader that was inside
    /// a read-side section when it began has left it; other threads run
    /// meanwhile. A worker that calls it inside a section of its own waits
    /// for itself, as in liburcu: a deadlock. From the driver (no worker
    /// runs) it returns at once, and counts as stuck if a worker stopped
    /// inside a section.
    func synchronize() {
        let ticket = crm_rcu_gp_begin()
        let me = current
        if me < 0 {
            if gracePeriodEnded(begunAt: step) { gracePeriodReturned(ticket) } else { stuckGracePeriods += 1 }
            return
        }
        point()
        let begun = step
        record(.gracePeriodBegin, object: 0, detail: ticket)
        if !gracePeriodEnded(begunAt: begun) {
            state[me] = .waitingGracePeriod(begun)
            point()  // returns once the grace period has ended and we were picked
            state[me] = .ready
        }
        gracePeriodReturned(ticket)
        record(.gracePeriodEnd, object: 0, detail: ticket)
    }

    /// The caller frees what it retired next, which may end another
    /// thread's wait: not a livelock.
    private func gracePeriodReturned(_ ticket: UInt64) {
        crm_rcu_gp_end(ticket)
        gracePeriodsCompleted += 1
        spinsReset()
    }

    /// Polled grace periods: the shim's own functions, not scheduling
    /// points (two atomic loads).
    func gracePeriodSnapshot() -> UInt64 { crm_rcu_gp_snapshot() }
    func gracePeriodElapsed(since snapshot: UInt64) -> Bool { crm_rcu_gp_elapsed(snapshot) != 0 }

    /// A grace period begun at step `q` ends once every reader that was
    /// inside a read-side section then has left that section. (Several
    /// events share a step; a reader entering at step `q` after the grace
    /// period began is waited for too: more waiting, never less.)
    private func gracePeriodEnded(begunAt q: Int) -> Bool {
        for t in 0..<threads where rcuDepth[t] > 0 && rcuEnteredAt[t] <= q { return false }
        return true
    }

    // MARK: Trace

    public func opStart(kind: Int, mm: UInt32, arg: UInt32) {
        let me = current
        guard me >= 0 else { return }
        spins[me] = 0
        record(.opStart, object: UInt(kind), detail: UInt64(mm) << 32 | UInt64(arg))
    }

    private func record(_ kind: ScheduleEventKind, object: UInt, detail: UInt64) {
        trace[traceNext % Self.traceLength] = ScheduleEvent(step: step, thread: current, kind: kind, object: object, detail: detail)
        traceNext += 1
    }

    func raceWindowMarked() {
        guard current >= 0 else { return }
        record(.raceWindow, object: 0, detail: 0)
        point()
    }

    /// The last events, oldest first.
    public var lastEvents: [ScheduleEvent] {
        let n = min(traceNext, Self.traceLength)
        return (0..<n).map { trace[(traceNext - n + $0) % Self.traceLength] }
    }
}
