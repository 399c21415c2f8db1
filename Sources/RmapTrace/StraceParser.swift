#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one completed line of an `strace -f -ttt` log says, reduced to what
/// the importer needs. Parsed straight from bytes (no Foundation).
enum StraceOp {
    enum CloneKind { case fork, vfork, thread }
    case clone(child: Int32, kind: CloneKind, sharesFiles: Bool)
    case exec
    case taskExit
    case superseded(old: Int32)
    /// `fdPath`: the path strace -y printed beside the fd (quoted like an open's), if any.
    case mmap(address: UInt64, length: UInt64, protection: Protection, shared: Bool, anon: Bool, fd: Int32, offset: UInt64, fdPath: String?)
    case munmap(address: UInt64, length: UInt64)
    case mremap(oldAddress: UInt64, oldLength: UInt64, newAddress: UInt64, newLength: UInt64, flags: MremapFlags)
    case brk(request: UInt64, result: UInt64)
    case mprotect(address: UInt64, length: UInt64, protection: Protection)
    case madvise(address: UInt64, length: UInt64, advice: Advice)
    /// open, openat, openat2, creat: `dirfd` nil for AT_FDCWD (or a call
    /// without one); `dirPath` the directory strace -y printed beside it
    /// (`AT_FDCWD</cwd>`, `5</dir>`), quoted, if any.
    case open(fd: Int32, path: String, cloexec: Bool, dirfd: Int32?, dirPath: String?)
    /// dup, dup2, dup3, fcntl(F_DUPFD[_CLOEXEC]): `new` now names what `old` names.
    case dup(old: Int32, new: Int32, cloexec: Bool)
    /// close and close_range: fds first...last go, or only get close-on-exec.
    case close(first: Int32, last: Int32, cloexecOnly: Bool)
    /// fcntl(F_SETFD): the fd's close-on-exec flag.
    case setCloexec(fd: Int32, on: Bool)
}

/// A parsed op, with where and when it happened.
struct StraceRecord {
    var pid: Int32
    var time: UInt64  // absolute microseconds
    var line: Int
    var op: StraceOp
}

/// Counters of what the importer read and skipped.
public struct ImportCounts: Sendable, Equatable {
    public var lines = 0
    public var events = 0
    /// Calls that returned an error (`= -1 E...`), by syscall name.
    public var failed: [String: Int] = [:]
    /// Calls interrupted to be restarted (`= ? ERESTART...`), by syscall name.
    public var restarted: [String: Int] = [:]
    /// Calls of syscalls the importer does not model, by name.
    public var skipped: [String: Int] = [:]
    /// madvise calls with an advice that neither drops pages nor changes fork.
    public var otherAdvice = 0
    public var signals = 0
    /// Tasks whose first line came before the clone that returned their pid.
    public var seenBeforeClone = 0
    /// Calls cut by strace detaching (`<detached ...>`).
    public var detached = 0
    /// Calls still unfinished when the log ended.
    public var unfinishedAtEnd = 0
    /// Calls unfinished when their task died (never resumed).
    public var unfinishedAtExit = 0
    /// Calls that ended without a result (`= ?`: the task died in them), exit and exit_group apart.
    public var noResult: [String: Int] = [:]

    public init() {}

    public var failedTotal: Int { failed.values.reduce(0, +) }
    public var restartedTotal: Int { restarted.values.reduce(0, +) }
    public var skippedTotal: Int { skipped.values.reduce(0, +) }
}

typealias Bytes = UnsafeBufferPointer<UInt8>

@inline(__always) private func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }

/// Compares bytes [from, to) of `b` with a literal.
@inline(__always)
func bytesEqual(_ b: Bytes, _ from: Int, _ to: Int, _ lit: StaticString) -> Bool {
    let n = lit.utf8CodeUnitCount
    guard to - from == n else { return false }
    return memcmp(b.baseAddress! + from, lit.utf8Start, n) == 0
}

/// Whether bytes [from, to) of `b` contain the literal.
@inline(__always)
func bytesContain(_ b: Bytes, _ from: Int, _ to: Int, _ lit: StaticString) -> Bool {
    findBytes(b, from, to, lit) != nil
}

/// Index of the first occurrence of the literal in bytes [from, to).
func findBytes(_ b: Bytes, _ from: Int, _ to: Int, _ lit: StaticString) -> Int? {
    let n = lit.utf8CodeUnitCount
    guard n > 0, to - from >= n else { return nil }
    let first = lit.utf8Start.pointee
    let base = b.baseAddress!
    var i = from
    while i <= to - n {
        guard let hit = memchr(base + i, Int32(first), to - n + 1 - i) else { return nil }
        let k = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        if memcmp(base + k, lit.utf8Start, n) == 0 { return k }
        i = k + 1
    }
    return nil
}

/// Whether [from, to) holds `lit` as a whole `|`-separated flag.
func hasFlag(_ b: Bytes, _ from: Int, _ to: Int, _ lit: StaticString) -> Bool {
    var i = from
    while i < to {
        var j = i
        while j < to && b[j] != 0x7c { j += 1 }  // '|'
        if bytesEqual(b, i, j, lit) { return true }
        i = j + 1
    }
    return false
}

/// Parses an integer token: decimal, negative decimal, 0x hex, or NULL (0).
func parseInteger(_ b: Bytes, _ from: Int, _ to: Int) -> Int64? {
    var i = from
    var e = to
    while i < e && b[i] == 0x20 { i += 1 }
    while e > i && b[e - 1] == 0x20 { e -= 1 }
    guard i < e else { return nil }
    if bytesEqual(b, i, e, "NULL") { return 0 }
    var neg = false
    if b[i] == 0x2d { neg = true; i += 1 }  // '-'
    guard i < e else { return nil }
    var v: UInt64 = 0
    if e - i > 2 && b[i] == 0x30 && b[i + 1] == 0x78 {
        guard e - i <= 18 else { return nil }
        for k in (i + 2)..<e {
            let c = b[k]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x61...0x66: d = c - 0x61 + 10
            case 0x41...0x46: d = c - 0x41 + 10
            default: return nil
            }
            v = v << 4 | UInt64(d)
        }
    } else {
        guard e - i <= 20 else { return nil }
        for k in i..<e {
            let d = b[k] &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            v = s
        }
    }
    let s = Int64(bitPattern: v)
    return neg ? -s : s
}

/// A file descriptor argument: `N`, or strace -y's `N</path>` (then the
/// path's range too). nil when it is neither (AT_FDCWD, a name).
func parseFD(_ b: Bytes, _ from: Int, _ to: Int) -> (fd: Int32, path: (Int, Int)?)? {
    var i = from
    while i < to && b[i] == 0x20 { i += 1 }
    var e = i
    while e < to && isDigit(b[e]) { e += 1 }
    guard e > i, e - i <= 10, let v = parseInteger(b, i, e), v <= Int64(Int32.max) else { return nil }
    var end = to
    while end > e && b[end - 1] == 0x20 { end -= 1 }
    if e == end { return (Int32(v), nil) }
    // '<' path '>', maybe followed by a note ('3</memfd:x>(deleted)'): the last '>' ends the path.
    guard end - e >= 2, b[e] == 0x3c else { return nil }
    var close = end - 1
    while close > e && b[close] != 0x3e { close -= 1 }
    guard close > e else { return nil }
    return (Int32(v), (e + 1, close))
}

/// Top-level `, `-separated arguments of [from, to): quotes, brackets, braces
/// and parentheses nest. Writes up to `max` ranges into `out`; returns the count.
func splitArguments(_ b: Bytes, _ from: Int, _ to: Int, into out: inout [(Int, Int)], max: Int) -> Int {
    out.removeAll(keepingCapacity: true)
    var depth = 0
    var inString = false
    var start = from
    var i = from
    while i < to {
        let c = b[i]
        if inString {
            if c == 0x5c { i += 2; continue }  // backslash escape
            if c == 0x22 { inString = false }
        } else {
            switch c {
            case 0x22: inString = true
            case 0x28, 0x5b, 0x7b: depth += 1
            case 0x29, 0x5d, 0x7d: depth -= 1
            case 0x2c where depth == 0:
                out.append((start, i))
                if out.count == max { return out.count }
                start = i + 1
                while start < to && b[start] == 0x20 { start += 1 }
            default: break
            }
        }
        i += 1
    }
    if to > start || !out.isEmpty { out.append((start, to)) }
    return out.count
}

func parseProtection(_ b: Bytes, _ from: Int, _ to: Int) -> Protection {
    var p = Protection()
    if bytesContain(b, from, to, "PROT_READ") { p.insert(.read) }
    if bytesContain(b, from, to, "PROT_WRITE") { p.insert(.write) }
    if bytesContain(b, from, to, "PROT_EXEC") { p.insert(.exec) }
    return p
}

/// The result of a completed call.
enum CallResult {
    case value(Int64)
    case failed           // = -1 ERRNO
    case restarted        // = ? ERESTART...
    case unknown          // = ? (the task is gone, e.g. exit_group)
}
