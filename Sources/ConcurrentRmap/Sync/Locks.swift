#if canImport(Glibc)
import Glibc
#endif

/// Arrays of pthread mutexes and rwlocks, addressed by slot number.
///
/// The locks live in memory allocated once and never moved, so a
/// `pthread_mutex_t` is never copied (which POSIX forbids). Slots are never
/// destroyed while the owning table lives: a freed mm or group keeps an
/// unlocked, initialized lock that its next occupant reuses. This is what lets
/// an RCU reader lock the ptl of an mm that is being torn down: the memory
/// stays a valid lock until the table itself is destroyed.
///
/// Why pthread and not `Synchronization.Mutex`: measured 3x faster
/// uncontended, much faster contended, and clean under ThreadSanitizer.
///
/// Each lock sits on a cache line of its own (`PaddedArray`): the locks of
/// two different mms are taken by different threads, and packed side by
/// side they would bounce one line between the cores (false sharing).
struct MutexArray: @unchecked Sendable {
    let locks: PaddedArray<pthread_mutex_t>

    init(count: Int) {
        locks = PaddedArray(count: count)
        // Adaptive: a waiter spins a while before it sleeps in the kernel.
        // The model's mutexes stand for the kernel's spinlocks (the 2004
        // page_table_lock was one) and are held for a few hundred ns; a
        // futex sleep and wake-up for each contended acquisition would cost
        // more than the critical section, and the run would measure the
        // scheduler.
        var attr = pthread_mutexattr_t()
        pthread_mutexattr_init(&attr)
        pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        for i in 0..<count { pthread_mutex_init(locks[i], &attr) }
        pthread_mutexattr_destroy(&attr)
    }

    func destroy() {
        for i in 0..<locks.count { pthread_mutex_destroy(locks[i]) }
        locks.deallocate()
    }

    @inline(__always) func lock(_ i: Int) { pthread_mutex_lock(locks[i]) }
    @inline(__always) func tryLock(_ i: Int) -> Bool { pthread_mutex_trylock(locks[i]) == 0 }
    @inline(__always) func unlock(_ i: Int) { pthread_mutex_unlock(locks[i]) }
}

struct RWLockArray: @unchecked Sendable {
    let locks: PaddedArray<pthread_rwlock_t>

    init(count: Int) {
        locks = PaddedArray(count: count)
        for i in 0..<count { pthread_rwlock_init(locks[i], nil) }
    }

    func destroy() {
        for i in 0..<locks.count { pthread_rwlock_destroy(locks[i]) }
        locks.deallocate()
    }

    @inline(__always) func readLock(_ i: Int) { pthread_rwlock_rdlock(locks[i]) }
    @inline(__always) func writeLock(_ i: Int) { pthread_rwlock_wrlock(locks[i]) }
    @inline(__always) func unlock(_ i: Int) { pthread_rwlock_unlock(locks[i]) }
}

/// A yield for spin-waits (page lock, migration entries). Keeps a waiting
/// thread from burning the core that the lock holder needs on a 2-core box.
@inline(__always) func cpuRelax() { sched_yield() }
