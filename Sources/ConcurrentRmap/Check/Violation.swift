import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The operations a worker performs. Raw values index statistics arrays.
public enum OpKind: Int, CaseIterable, Sendable {
    case fault, fork, exit, exec, mremap, munmap, split, reclaim, migrate
    /// mmap of a file (shared or private), and ftruncate of a file.
    case mmapFile, truncate
    /// mmap(MAP_SHARED|MAP_ANONYMOUS): a shmem inode's mapping.
    case mmapShmem

    public var name: String {
        switch self {
        case .fault: "fault"
        case .fork: "fork"
        case .exit: "exit"
        case .exec: "exec"
        case .mremap: "mremap"
        case .munmap: "munmap"
        case .split: "split"
        case .reclaim: "reclaim"
        case .migrate: "migrate"
        case .mmapFile: "mmap-file"
        case .truncate: "truncate"
        case .mmapShmem: "mmap-shmem"
        }
    }

    public init?(name: String) {
        guard let k = OpKind.allCases.first(where: { $0.name == name }) else { return nil }
        self = k
    }
}

/// Which invariant (ARCHITECTURE.md, "Invariants") a violation breaks.
public enum ViolationKind: String, CaseIterable, Sendable, Codable {
    /// 1. A PTE maps a page whose mapping/index are not this mm's group and address.
    case location
    /// 2. mapcount differs from the PTEs that map the page, or went negative.
    case mapcount
    /// 2. refcount does not cover the mappings, or went negative.
    case refcount
    /// 2. A frame was freed while still mapped, or a free frame is not poisoned.
    case freedWhileMapped = "freed-while-mapped"
    /// 3. A walk that met no failed trylock did not find every mapping.
    case incompleteWalk = "incomplete-walk"
    /// 4. A read did not return the last value written.
    case content
    /// 5. An mm, VMA, group, anon_vma or table was reached after it was freed.
    case lifetime
    /// An rmap list (an anongroup's mms, an anon_vma's VMAs) or its counts
    /// disagree with the objects it lists.
    case groupList = "group-list"
    /// A swap slot's count disagrees with the swap entries.
    case swapCount = "swap-count"
    /// 6. Something is still allocated after all processes exited.
    case leak
    /// 7. A worker or a grace period stopped making progress.
    case stall
    /// 8. A lock was taken against the order of `LockClass` (controlled
    /// runs check every acquisition), whether or not it deadlocked.
    case lockOrder = "lock-order"
    /// 8. Code that requires a lock (a PTE store, a list change) ran
    /// without it (controlled runs; lockdep_assert_held).
    case lockNotHeld = "lock-not-held"
}

/// A broken invariant, as a value: what, where, during which operation.
public struct Violation: Sendable, CustomStringConvertible {
    public var kind: ViolationKind
    public var frame: UInt32
    public var mm: UInt32
    public var vpn: UInt64
    public var op: OpKind?
    /// Worker (CPU) number, or -1 for audits and teardown.
    public var cpu: Int
    public var detail: String

    public init(kind: ViolationKind, frame: UInt32 = 0, mm: UInt32 = 0, vpn: UInt64 = 0,
                op: OpKind? = nil, cpu: Int = -1, detail: String) {
        self.kind = kind; self.frame = frame; self.mm = mm; self.vpn = vpn
        self.op = op; self.cpu = cpu; self.detail = detail
    }

    public var description: String {
        var s = "\(kind.rawValue): \(detail)"
        if frame != 0 { s += " frame=\(frame)" }
        if mm != 0 { s += " mm=\(mm)" }
        if frame != 0 || mm != 0 { s += " vpn=0x\(String(vpn, radix: 16))" }
        if let op { s += " op=\(op.name)" }
        if cpu >= 0 { s += " cpu=\(cpu)" }
        return s
    }
}

/// Where violations go: a count per kind (atomic, read by the watchdog and
/// status line) and the first `keep` in full. Appending takes a mutex; it is
/// off every fast path since it only runs when something is already wrong.
final class ViolationLog: @unchecked Sendable {
    private let lock = MutexArray(count: 1)
    private var kept: [Violation] = []
    private let keep = 256
    let total = Atomic<Int>(0)
    let perKind: UnsafeMutablePointer<Atomic<Int>>

    init() {
        perKind = .allocate(capacity: ViolationKind.allCases.count)
        for i in 0..<ViolationKind.allCases.count { (perKind + i).initialize(to: Atomic(0)) }
    }

    deinit {
        perKind.deinitialize(count: ViolationKind.allCases.count)
        perKind.deallocate()
        lock.destroy()
    }

    func record(_ v: Violation) {
        let idx = ViolationKind.allCases.firstIndex(of: v.kind)!
        perKind[idx].wrappingAdd(1, ordering: .relaxed)
        lock.lock(0)
        if kept.count < keep { kept.append(v) }
        lock.unlock(0)
        total.wrappingAdd(1, ordering: .releasing)
    }

    var all: [Violation] {
        lock.lock(0)
        defer { lock.unlock(0) }
        return kept
    }

    func count(_ kind: ViolationKind) -> Int {
        perKind[ViolationKind.allCases.firstIndex(of: kind)!].load(ordering: .relaxed)
    }
}
