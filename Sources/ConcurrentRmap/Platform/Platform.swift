import URCUShim
#if canImport(Glibc)
import Glibc
#endif

/// Everything the model does that involves another thread: sleeping locks,
/// waits, RCU, race windows and the clock. The kernel is generic over it
/// (`Kernel<R, P>`), so the choice is made at compile time and the real
/// platform's calls inline to pthread and liburcu with no cost of their own.
///
/// A platform call is a point where another thread may run next. The real
/// platform leaves that to the OS scheduler; a controlled platform (see
/// `stress explore`) decides it itself, which makes a run a function of its
/// options, seed and schedule.
///
/// Locks are passed by the address of their pthread storage: the real
/// platform locks it, a controlled one keys its own lock state by it.
/// Leaf locks that are never held across a platform call (pool and cache
/// locks, the violation log) are not platform calls: with one thread
/// running at a time they cannot be contended.
public protocol Platform {
    /// Each acquisition names its lock class and call site (`LockClass`):
    /// the controlled platform checks the lock order, the real one ignores
    /// both.
    static func lock(_ m: UnsafeMutablePointer<pthread_mutex_t>, _ c: LockClass, _ at: LockSite)
    static func tryLock(_ m: UnsafeMutablePointer<pthread_mutex_t>, _ c: LockClass, _ at: LockSite) -> Bool
    static func unlock(_ m: UnsafeMutablePointer<pthread_mutex_t>)
    static func readLock(_ l: UnsafeMutablePointer<pthread_rwlock_t>, _ c: LockClass, _ at: LockSite)
    static func writeLock(_ l: UnsafeMutablePointer<pthread_rwlock_t>, _ c: LockClass, _ at: LockSite)
    static func unlock(_ l: UnsafeMutablePointer<pthread_rwlock_t>)

    /// A lock the model implements itself (the page lock, a bit in
    /// page.flags) was taken or dropped: lock-order bookkeeping only.
    /// `key` tells two locks of one class apart.
    static func acquired(_ c: LockClass, key: UInt, trylock: Bool, _ at: LockSite)
    static func released(_ c: LockClass, key: UInt)
    /// lockdep_assert_held: the caller requires a lock of class `c` keyed
    /// `key` (a pthread lock's address, or the model's own key).
    static func assertHeld(_ c: LockClass, key: UInt, _ at: LockSite)

    /// A wait for something only another thread can change (a page lock, a
    /// migration entry): the caller loops until it sees the change.
    static func relax()

    static func rcuReadLock()
    static func rcuReadUnlock()
    /// synchronize_rcu. Workers call it between operations, to free the
    /// slots they retired (`Kernel.completeGracePeriod`): the model
    /// queues nothing on call_rcu.
    static func synchronizeRCU()
    /// Polled grace periods: a snapshot, and whether a synchronize_rcu
    /// begun after it has returned (see `crm_rcu_gp_snapshot`).
    static func gracePeriodSnapshot() -> UInt64
    static func gracePeriodElapsed(since snapshot: UInt64) -> Bool

    /// A marked race window (`Kernel.raceWindow`) with perturbation on; `r`
    /// is the CPU's next random number.
    static func raceWindow(_ r: UInt64)
    /// A marked race window with perturbation off: nothing for the real
    /// platform, a scheduling point for a controlled one.
    static func schedulingPoint()
    /// A reader that stays in its read-side section a while (perturbation).
    static func longRead(_ r: UInt64)
    /// Blocks the calling thread for good (a planted bug's endless sleep).
    static func park() -> Never

    /// Monotonic nanoseconds.
    static func now() -> UInt64
}

/// pthread and liburcu: what every real run uses.
public enum RealPlatform: Platform {
    @inline(__always) public static func lock(_ m: UnsafeMutablePointer<pthread_mutex_t>, _ c: LockClass, _ at: LockSite) { pthread_mutex_lock(m) }
    @inline(__always) public static func tryLock(_ m: UnsafeMutablePointer<pthread_mutex_t>, _ c: LockClass, _ at: LockSite) -> Bool { pthread_mutex_trylock(m) == 0 }
    @inline(__always) public static func unlock(_ m: UnsafeMutablePointer<pthread_mutex_t>) { pthread_mutex_unlock(m) }
    @inline(__always) public static func readLock(_ l: UnsafeMutablePointer<pthread_rwlock_t>, _ c: LockClass, _ at: LockSite) { pthread_rwlock_rdlock(l) }
    @inline(__always) public static func writeLock(_ l: UnsafeMutablePointer<pthread_rwlock_t>, _ c: LockClass, _ at: LockSite) { pthread_rwlock_wrlock(l) }
    @inline(__always) public static func unlock(_ l: UnsafeMutablePointer<pthread_rwlock_t>) { pthread_rwlock_unlock(l) }
    @inline(__always) public static func acquired(_ c: LockClass, key: UInt, trylock: Bool, _ at: LockSite) {}
    @inline(__always) public static func released(_ c: LockClass, key: UInt) {}
    @inline(__always) public static func assertHeld(_ c: LockClass, key: UInt, _ at: LockSite) {}

    /// A yield keeps a waiting thread from burning the core that the lock
    /// holder needs on a small machine.
    @inline(__always) public static func relax() { sched_yield() }

    @inline(__always) public static func rcuReadLock() { crm_rcu_read_lock() }
    @inline(__always) public static func rcuReadUnlock() { crm_rcu_read_unlock() }
    public static func synchronizeRCU() { crm_rcu_synchronize() }
    public static func gracePeriodSnapshot() -> UInt64 { crm_rcu_gp_snapshot() }
    public static func gracePeriodElapsed(since snapshot: UInt64) -> Bool { crm_rcu_gp_elapsed(snapshot) != 0 }

    /// Sometimes yield, sometimes spin a little (like KCSAN's delays), so
    /// rare interleavings happen often.
    @inline(__always) public static func raceWindow(_ r: UInt64) {
        let pick = r >> 59
        if pick == 0 {
            sched_yield()
        } else if pick == 1 {
            var x = r
            for _ in 0..<Int(200 + (r & 511)) { x = x &* 31 &+ 7 }
            if x == 42 { sched_yield() }  // keeps the spin from being optimized out
        }
    }

    @inline(__always) public static func schedulingPoint() {}

    /// About one walk in 4096 sleeps 1-3 ms inside its read-side section,
    /// as rcutorture's readers sometimes do.
    @inline(__always) public static func longRead(_ r: UInt64) {
        if r & 4095 == 0 { usleep(useconds_t(1000 + (r >> 12) % 2000)) }
    }

    public static func park() -> Never {
        while true { sleep(1) }
    }

    /// Inlinable: the run engine times operations with it.
    @inlinable @inline(__always) public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// The platform of `stress explore` and `replay`: every call is a
/// scheduling point of `ControlledScheduler.active`, whose model of locks
/// and RCU replaces pthread's and liburcu's. With no active scheduler
/// (never in a controlled machine's life) the calls would crash, so the
/// machine is only built while one is installed.
public enum ControlledPlatform: Platform {
    @inline(__always) static var scheduler: ControlledScheduler { ControlledScheduler.active.unsafelyUnwrapped }
    public static func lock(_ m: UnsafeMutablePointer<pthread_mutex_t>, _ c: LockClass, _ at: LockSite) { scheduler.lock(UnsafeMutableRawPointer(m), c, at) }
    public static func tryLock(_ m: UnsafeMutablePointer<pthread_mutex_t>, _ c: LockClass, _ at: LockSite) -> Bool { scheduler.tryLock(UnsafeMutableRawPointer(m), c, at) }
    public static func unlock(_ m: UnsafeMutablePointer<pthread_mutex_t>) { scheduler.unlock(UnsafeMutableRawPointer(m)) }
    public static func readLock(_ l: UnsafeMutablePointer<pthread_rwlock_t>, _ c: LockClass, _ at: LockSite) { scheduler.readLock(UnsafeMutableRawPointer(l), c, at) }
    public static func writeLock(_ l: UnsafeMutablePointer<pthread_rwlock_t>, _ c: LockClass, _ at: LockSite) { scheduler.writeLock(UnsafeMutableRawPointer(l), c, at) }
    public static func unlock(_ l: UnsafeMutablePointer<pthread_rwlock_t>) { scheduler.unlock(UnsafeMutableRawPointer(l)) }
    public static func acquired(_ c: LockClass, key: UInt, trylock: Bool, _ at: LockSite) { scheduler.lockdepAcquire(key: key, c, trylock: trylock, at) }
    public static func released(_ c: LockClass, key: UInt) { scheduler.lockdepRelease(key: key) }
    public static func assertHeld(_ c: LockClass, key: UInt, _ at: LockSite) { scheduler.assertHeld(key: key, c, at) }
    public static func relax() { scheduler.relax() }
    public static func rcuReadLock() { scheduler.rcuEnter() }
    public static func rcuReadUnlock() { scheduler.rcuExit() }
    public static func synchronizeRCU() { scheduler.synchronize() }
    public static func gracePeriodSnapshot() -> UInt64 { scheduler.gracePeriodSnapshot() }
    public static func gracePeriodElapsed(since snapshot: UInt64) -> Bool { scheduler.gracePeriodElapsed(since: snapshot) }
    public static func raceWindow(_ r: UInt64) { scheduler.raceWindowMarked() }
    public static func schedulingPoint() { scheduler.raceWindowMarked() }
    /// A long reader is a reader that other threads overtake: the
    /// scheduler decides that, so nothing extra here.
    public static func longRead(_ r: UInt64) {}
    public static func park() -> Never {
        scheduler.park()
        fatalError("a parked controlled thread was resumed")
    }
    /// Virtual time: one microsecond per scheduling point.
    public static func now() -> UInt64 { UInt64(scheduler.step) &* 1000 }
}
