/// An error in an input file: which file, which line (1-based; 0 when the
/// file as a whole is at fault) and what. `description` is one line,
/// `FILE:LINE: message`.
public struct TraceError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

/// An address space (mm) of a trace. Ids are assigned by the importer, from 1,
/// in order of creation, and never reused within a trace.
public typealias MMID = UInt32

/// Page protection of a mapping.
public struct Protection: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = Protection(rawValue: 1)
    public static let write = Protection(rawValue: 2)
    public static let exec = Protection(rawValue: 4)
}

/// What backs a mapping.
public enum Backing: Sendable, Hashable {
    /// Anonymous memory.
    case anon
    /// A file: its id from an earlier `.file` event, or nil when the log did not say which file.
    case file(UInt32?)
}

/// The flags of an mremap call that matter to a replay.
public struct MremapFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let mayMove = MremapFlags(rawValue: 1)
    public static let fixed = MremapFlags(rawValue: 2)
    public static let dontUnmap = MremapFlags(rawValue: 4)
}

/// The madvise advices a trace keeps: those that drop pages or change what fork copies.
public enum Advice: String, Sendable, Hashable, CaseIterable {
    case dontneed, free, remove, dontfork, dofork, wipeonfork, keeponfork
}

/// One event of a trace. Every event that concerns an address space names it
/// by its `MMID`; none names a pid.
///
/// Task accounting: an mm has *own* tasks (its process's threads) and
/// *borrowers* (vfork children running on it). It ends when both reach zero.
public enum TraceEvent: Sendable, Hashable {
    /// An address space that existed before the trace began (the traced
    /// command's first task, before its execve). It starts a new anon group.
    case start(mm: MMID)
    /// `child` is created as a copy of `parent`'s mappings and joins
    /// `parent`'s anon group (fork, or clone without CLONE_VM).
    case fork(parent: MMID, child: MMID)
    /// A vfork child (vfork, or clone/clone3 with CLONE_VM|CLONE_VFORK) starts
    /// borrowing `mm`: one more borrower.
    case vfork(mm: MMID)
    /// A vfork child that borrowed `mm` exited without exec: one borrower less.
    case vforkReturn(mm: MMID)
    /// A new task shares `mm` (clone with CLONE_VM without CLONE_VFORK): one more own task.
    case thread(mm: MMID)
    /// One own task of `mm` exited, and `mm` still has own tasks.
    case threadExit(mm: MMID)
    /// The last own task of `mm` exited (exit, exit_group or a signal).
    /// `mm` leaves its anon group; it is freed once no vfork child borrows it.
    case exit(mm: MMID)
    /// A task using `old` executed a program in the new address space `new`,
    /// which starts a new anon group. When `fromVfork` is false the task was
    /// `old`'s last own task (the importer reports the threads exec killed as
    /// `threadExit` first) and `old` leaves its group; when true the task was a
    /// vfork child borrowing `old`, and the borrow ends.
    case exec(old: MMID, new: MMID, fromVfork: Bool)
    /// Declares file id `id` for `path` (the path as the log printed it).
    case file(id: UInt32, path: String)
    /// A successful mmap: the mapping at `address` (page-aligned) of `length`
    /// bytes as passed (round up to pages), `offset` into the file.
    case mmap(mm: MMID, address: UInt64, length: UInt64, protection: Protection, shared: Bool, backing: Backing, offset: UInt64)
    case munmap(mm: MMID, address: UInt64, length: UInt64)
    /// A successful mremap; it moved when `newAddress != oldAddress`.
    case mremap(mm: MMID, oldAddress: UInt64, oldLength: UInt64, newAddress: UInt64, newLength: UInt64, flags: MremapFlags)
    /// The program break of `mm` moved from `from` to `to` (grows when `to > from`).
    case brk(mm: MMID, from: UInt64, to: UInt64)
    case mprotect(mm: MMID, address: UInt64, length: UInt64, protection: Protection)
    case madvise(mm: MMID, address: UInt64, length: UInt64, advice: Advice)

    /// The address space the event concerns (the new one for fork and exec), nil for `.file`.
    public var mm: MMID? {
        switch self {
        case .start(let m), .vfork(let m), .vforkReturn(let m), .thread(let m), .threadExit(let m), .exit(let m): m
        case .fork(_, let c): c
        case .exec(_, let n, _): n
        case .file: nil
        case .mmap(let m, _, _, _, _, _, _), .munmap(let m, _, _), .mremap(let m, _, _, _, _, _),
             .brk(let m, _, _), .mprotect(let m, _, _, _), .madvise(let m, _, _, _): m
        }
    }
}

/// An event and its time: microseconds since the trace's first event.
public struct TraceRecord: Sendable, Hashable {
    public var time: UInt64
    public var event: TraceEvent
    public init(time: UInt64, event: TraceEvent) {
        self.time = time
        self.event = event
    }
}

/// Largest user address or length a trace accepts: 2^57 (5-level paging's user space is below it).
public let traceAddressLimit: UInt64 = 1 << 57

/// Whether [address, address+length) is a plausible user range.
@inline(__always)
func plausibleRange(_ address: UInt64, _ length: UInt64) -> Bool {
    address < traceAddressLimit && length <= traceAddressLimit && address &+ length <= traceAddressLimit
}
