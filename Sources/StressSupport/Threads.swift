#if canImport(Glibc)
import Glibc
#endif

/// Real OS threads, without Foundation: the stress workers are pthreads.
final class ThreadBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

public func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        let b = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        b.run()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return tid
}

public func joinThread(_ t: pthread_t) { pthread_join(t, nil) }

/// Monotonic nanoseconds: the real platform's clock (`RealPlatform.now`
/// reads the same one). Inlinable, because the workers time operations
/// with it.
@inlinable @inline(__always) public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

public func sleepNanos(_ ns: UInt64) {
    var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
    nanosleep(&ts, nil)
}

/// A gate threads wait at without spinning: closed, waiters sleep on a
/// condition variable; opening wakes them all. Thousands of workers polling
/// a flag with short sleeps would take the cores from the thread that is
/// trying to start them.
public final class Gate: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var isOpen: Bool

    public init(open: Bool) {
        isOpen = open
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    public func open() {
        pthread_mutex_lock(mutex)
        isOpen = true
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    public func close() {
        pthread_mutex_lock(mutex)
        isOpen = false
        pthread_mutex_unlock(mutex)
    }

    /// Returns once the gate is open.
    public func wait() {
        pthread_mutex_lock(mutex)
        while !isOpen { pthread_cond_wait(cond, mutex) }
        pthread_mutex_unlock(mutex)
    }
}
