import StressShim
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM, as the stress tool handles them: the first one is
/// recorded and the run stops at its next check (10 ms), reports and exits
/// 128 + signal; a second one exits at once (see StressShim).
public enum Signals {
    /// Installs the handlers (idempotent).
    public static func install() { crm_signals_install() }
    /// The first signal received since install, or 0.
    public static var pending: Int32 { crm_signal_pending() }
    /// Forgets a recorded signal (tests).
    public static func clear() { crm_signal_clear() }
}

/// Test hooks for the paths a corrupted model can take.
public enum DebugHooks {
    /// Dies by SIGSEGV `seconds` from now, on a thread of its own: the way
    /// a model corrupted by a planted bug can kill the tool mid-run.
    public static func crash(after seconds: Double) {
        pthread_detach(startThread {
            sleepNanos(UInt64(seconds * 1e9))
            // A real bad access (raise() is only reported, not fatal, under
            // Swift's backtracer).
            UnsafeMutablePointer<Int>(bitPattern: 64)!.pointee = 1
        })
    }
}
