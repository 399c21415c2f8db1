import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The signal (SIGINT, SIGTERM, SIGHUP) that asked a runner to stop, or 0.
private let pendingStop = Atomic<Int32>(0)

/// Ctrl-C, `scancel` and a batch system's time limit reach a runner as
/// signals. Instead of dying with its children unrecorded, the runner
/// notes the signal, passes it on, and records those cells as unfinished so
/// that the next run resumes them.
public enum CampaignInterrupt {
    public static func install() {
        for s in [SIGINT, SIGTERM, SIGHUP] {
            Glibc.signal(s) { sig in pendingStop.store(sig, ordering: .relaxed) }
        }
    }

    /// The stop signal received so far, if any.
    public static var signal: Int32? {
        let s = pendingStop.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }
}
