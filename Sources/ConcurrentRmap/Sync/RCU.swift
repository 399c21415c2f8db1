import URCUShim

/// liburcu flavor, chosen once per process before any thread registers.
public enum RCUFlavor: String, CaseIterable, Sendable {
    case memb, qsbr, mb, bp

    var shimValue: Int32 {
        switch self {
        case .memb: Int32(CRM_RCU_MEMB.rawValue)
        case .qsbr: Int32(CRM_RCU_QSBR.rawValue)
        case .mb: Int32(CRM_RCU_MB.rawValue)
        case .bp: Int32(CRM_RCU_BP.rawValue)
        }
    }
}

/// Thin Swift face of URCUShim. Read-side calls inline to liburcu's fast path.
///
/// Rules the model relies on (see ARCHITECTURE.md, "RCU"):
/// - every thread that reads RCU-protected state registers first;
/// - `synchronize()` is never called inside a read-side section or while
///   holding a lock a reader may wait for; the model's workers call it
///   between operations to free what they retired (nothing uses call_rcu);
/// - qsbr threads announce quiescent states between operations and go
///   offline while parked for an audit or when they finish (both calls are
///   no-ops for other flavors). Lock waits inside operations stay online:
///   no lock holder ever waits for a grace period.
public enum RCU {
    /// Selects the flavor for the process. Fails if threads of another flavor
    /// are registered.
    public static func select(_ flavor: RCUFlavor) -> Bool {
        crm_rcu_select_flavor(flavor.shimValue) == 0
    }

    public static var flavor: RCUFlavor {
        switch crm_rcu_get_flavor() {
        case Int32(CRM_RCU_QSBR.rawValue): .qsbr
        case Int32(CRM_RCU_MB.rawValue): .mb
        case Int32(CRM_RCU_BP.rawValue): .bp
        default: .memb
        }
    }

    /// True when both the C half and the Swift-imported half of the shim were
    /// built with ThreadSanitizer annotations. A mismatch is a build error.
    public static var tsanAnnotated: Bool {
        precondition(crm_rcu_tsan_header() == crm_rcu_tsan_build(),
                     "URCUShim built with mismatched CRM_TSAN: rebuild with CRMAP_TSAN set for all targets")
        return crm_rcu_tsan_build() != 0
    }

    public static func registerThread() { crm_rcu_register_thread() }
    public static func unregisterThread() { crm_rcu_unregister_thread() }

    @inline(__always) public static func readLock() { crm_rcu_read_lock() }
    @inline(__always) public static func readUnlock() { crm_rcu_read_unlock() }
    @inline(__always) public static func quiescentState() { crm_rcu_quiescent_state() }
    @inline(__always) public static func threadOffline() { crm_rcu_thread_offline() }
    @inline(__always) public static func threadOnline() { crm_rcu_thread_online() }

    public static func synchronize() { crm_rcu_synchronize() }

    public static var synchronizeCount: UInt64 { crm_rcu_synchronize_count() }

    /// Runs `body` on this thread registered with RCU.
    public static func withRegisteredThread<T>(_ body: () throws -> T) rethrows -> T {
        registerThread()
        defer { unregisterThread() }
        return try body()
    }
}
