#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Converts an `strace -f -ttt` log (plain or gzip) into trace records,
/// streaming: the log is read line by line and records go to a sink as soon
/// as their order is certain.
///
/// The log names pids; the records name address spaces. The importer keeps a
/// table of live tasks (pid -> mm, and whether the task borrows its mm as a
/// vfork child) and of live mms (own tasks, borrowers, program break):
///
/// - the log's first pid is the traced command; it gets mm 1 (`start`);
/// - clone/clone3/fork/vfork returning a pid: without CLONE_VM a `fork` (new
///   mm), with CLONE_VM|CLONE_VFORK (or vfork) a `vfork` borrow, with CLONE_VM
///   alone a `thread`; failed (`= -1`) and restarted (`= ? ERESTART...`) calls
///   create nothing;
/// - a successful execve/execveat gives the task a new mm (`exec`); threads it
///   kills are reported as `texit` first; from a vfork child it ends the borrow;
/// - `+++ exited ...` / `+++ killed by ...` ends a task: `vret`, `texit` or
///   `exit` (the mm's last own task);
/// - `<unfinished ...>` / `<... NAME resumed>` halves are joined by pid, and
///   the call takes effect at the resumed line.
///
/// With -f a new task's first lines can precede the clone return that names
/// it. A line from a pid that is not a live task is held back, and so is
/// everything after it, until a clone returns that pid: the creation event is
/// then emitted just before the child's first line, and the held lines follow
/// in file order. A pid that no clone ever returns is an error at its first line.
public final class StraceImporter {
    public let path: String
    private let reader: LineReader
    public private(set) var counts = ImportCounts()
    /// The first line's time (absolute microseconds); record times are relative to it.
    public private(set) var baseTime: UInt64?
    /// Maximum number of lines held back while waiting for a clone to return.
    public var holdLimit = 1 << 20

    /// An open file: its path as the log printed it (quoted), and close-on-exec.
    private struct OpenFile {
        var path: String
        var cloexec: Bool
    }
    /// A task's fd table; tasks cloned with CLONE_FILES share one.
    private final class FileTable {
        var fds: [Int32: OpenFile] = [:]
        init(_ fds: [Int32: OpenFile] = [:]) { self.fds = fds }
        /// What a successful execve leaves: a table of its own (exec
        /// unshares it) without the close-on-exec fds.
        func afterExec() -> FileTable { FileTable(fds.filter { !$0.value.cloexec }) }
    }
    private struct Task {
        var mm: MMID
        var borrower: Bool
        var files: FileTable
    }
    private struct MMState {
        var own: Int32 = 1
        var borrowed: Int32 = 0
        var brk: UInt64 = 0
    }
    private struct Birth {
        var parent: Int32
        var kind: StraceOp.CloneKind
        var sharesFiles: Bool
    }

    private var tasks: [Int32: Task] = [:]
    private var mms: [MMID: MMState] = [:]
    private var nextMM: MMID = 1
    private var rootPid: Int32?
    private var fileIDs: [String: UInt32] = [:]
    private var unfinished: [Int32: [UInt8]] = [:]
    private var reapedByExec: Set<Int32> = []
    private var supersededExec: Set<Int32> = []
    // Held-back records and the births they wait for.
    private var held: [StraceRecord] = []
    private var heldHead = 0
    private var births: [Int32: Birth] = [:]
    private var bornEarly: Set<Int32> = []
    private var lastTime: UInt64 = 0
    private var sink: ((TraceRecord) throws(TraceError) -> Void)?
    private var scratch: [UInt8] = []
    private var args: [(Int, Int)] = []

    public init(path: String) throws(TraceError) {
        self.path = path
        reader = try LineReader(path: path)
        scratch.reserveCapacity(4096)
        args.reserveCapacity(8)
    }

    /// Reads the whole log, calling `sink` with each record in order.
    public func run(_ sink: @escaping (TraceRecord) throws(TraceError) -> Void) throws(TraceError) {
        self.sink = sink
        defer { self.sink = nil }
        while try reader.nextLine({ (line) throws(TraceError) -> Void in try self.line(line) }) != nil {}
        counts.lines = reader.lineNumber
        counts.unfinishedAtEnd = unfinished.count
        if heldHead < held.count {
            let r = held[heldHead]
            throw TraceError(file: path, line: r.line, message: "pid \(r.pid) appears here but no clone, fork or vfork in the log returned it")
        }
    }

    private func fail(_ message: String, line: Int? = nil) -> TraceError {
        TraceError(file: path, line: line ?? reader.lineNumber, message: message)
    }

    // MARK: Lines

    private func line(_ b: Bytes) throws(TraceError) {
        let n = b.count
        var i = 0
        // pid
        var pid: Int32 = 0
        while i < n && isDigitByte(b[i]) {
            pid = pid &* 10 &+ Int32(b[i] &- 0x30)
            i += 1
            if i > 9 { throw fail("malformed line: bad pid") }
        }
        if i == 0 {
            if n == 0 { throw fail("malformed line: empty") }
            throw fail("malformed line: expected 'PID TIME call...' (an strace -f -ttt log)")
        }
        guard i < n && b[i] == 0x20 else { throw fail("malformed line: expected 'PID TIME call...'") }
        while i < n && b[i] == 0x20 { i += 1 }
        // time: seconds.micro
        var sec: UInt64 = 0
        let ts = i
        while i < n && isDigitByte(b[i]) { sec = sec &* 10 &+ UInt64(b[i] &- 0x30); i += 1 }
        guard i > ts, i - ts <= 12, i < n, b[i] == 0x2e else { throw fail("malformed line: bad timestamp (expected -ttt seconds.microseconds)") }
        i += 1
        var micro: UInt64 = 0
        var digits = 0
        while i < n && isDigitByte(b[i]) {
            if digits < 6 { micro = micro * 10 + UInt64(b[i] &- 0x30) }
            digits += 1
            i += 1
        }
        guard digits > 0 else { throw fail("malformed line: bad timestamp") }
        while digits < 6 { micro *= 10; digits += 1 }
        let time = sec * 1_000_000 + micro
        if time < lastTime { throw fail("time goes backwards (\(formatTime(time)) after \(formatTime(lastTime)))") }
        lastTime = time
        if baseTime == nil { baseTime = time }
        guard i < n && b[i] == 0x20 else { throw fail("malformed line: nothing after the timestamp") }
        i += 1
        guard i < n else { throw fail("malformed line: nothing after the timestamp") }
        if rootPid == nil { rootPid = pid }

        switch b[i] {
        case 0x2b:  // '+'
            try exitLine(b, i, pid, time)
        case 0x2d:  // '-'
            guard bytesContain(b, i, min(i + 4, n), "--- ") else { throw fail("malformed line") }
            counts.signals += 1
        case 0x3c:  // '<'
            // <... NAME resumed>TAIL
            guard n - i > 5, bytesEqual(b, i, i + 5, "<... ") else { throw fail("malformed line") }
            var j = i + 5
            while j < n && b[j] != 0x20 { j += 1 }
            let nameEnd = j
            guard n - j >= 9, bytesEqual(b, j, j + 9, " resumed>") else { throw fail("malformed line: bad '<... resumed>'") }
            guard let prefix = unfinished.removeValue(forKey: pid) else {
                let tail = j + 9
                if (bytesEqual(b, i + 5, nameEnd, "execve") || bytesEqual(b, i + 5, nameEnd, "execveat")),
                   supersededExec.remove(pid) != nil {
                    return  // the exec a '+++ superseded' line already applied
                }
                if n - tail >= 17, bytesEqual(b, tail, tail + 17, " <unfinished ...>") {
                    // A call whose start was dropped (its thread was replaced by exec), ending with no result.
                    counts.noResult[String(decoding: UnsafeBufferPointer(rebasing: b[(i + 5)..<nameEnd]), as: UTF8.self), default: 0] += 1
                    return
                }
                throw fail("a resumed call of pid \(pid) without its '<unfinished ...>' start")
            }
            let nameLen = nameEnd - (i + 5)
            let sameName = prefix.count > nameLen && prefix[nameLen] == 0x28 &&
                prefix.withUnsafeBufferPointer { p in memcmp(p.baseAddress!, b.baseAddress! + i + 5, nameLen) == 0 }
            guard sameName else { throw fail("resumed call does not match pid \(pid)'s unfinished call") }
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: prefix)
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[(j + 9)...]))
            let joined = scratch
            try joined.withUnsafeBufferPointer { (c) throws(TraceError) -> Void in try call(c, 0, pid, time) }
        default:
            guard isNameByte(b[i]) else { throw fail("malformed line") }
            // An unfinished call: keep its start by pid.
            let tail: StaticString = " <unfinished ...>"
            let tl = tail.utf8CodeUnitCount
            var cut = -1
            if n - i >= tl && memcmp(b.baseAddress! + n - tl, tail.utf8Start, tl) == 0 {
                cut = n - tl
            } else if n - i > 5, b[n - 1] == 0x3e, bytesEqual(b, n - 5, n, " ...>"),
                      let k = findBytes(b, max(i, n - 40), n, " <pid changed to ") {
                cut = k  // a non-leader thread's execve, which continues under the leader's pid
            }
            let detached: StaticString = " <detached ...>"
            let dl = detached.utf8CodeUnitCount
            if cut < 0 && n - i >= dl && memcmp(b.baseAddress! + n - dl, detached.utf8Start, dl) == 0 {
                counts.detached += 1  // strace let go of the task in mid-call (it was interrupted)
                return
            }
            if cut >= 0 {
                if unfinished[pid] != nil { throw fail("pid \(pid) starts a call while another is unfinished") }
                unfinished[pid] = Array(UnsafeBufferPointer(rebasing: b[i..<cut]))
                return
            }
            try call(b, i, pid, time)
        }
    }

    private func exitLine(_ b: Bytes, _ i: Int, _ pid: Int32, _ time: UInt64) throws(TraceError) {
        let n = b.count
        if bytesContain(b, i, n, "+++ exited with ") || bytesContain(b, i, n, "+++ killed by ") {
            // A call the task was in when it died never resumes.
            if unfinished.removeValue(forKey: pid) != nil { counts.unfinishedAtExit += 1 }
            try submit(StraceRecord(pid: pid, time: time, line: reader.lineNumber, op: .taskExit))
        } else if bytesContain(b, i, n, "+++ superseded by execve in pid ") {
            let s = i + 32
            var e = s
            while e < n && isDigitByte(b[e]) { e += 1 }
            guard let old = parseInteger(b, s, e), old > 0, old <= Int64(Int32.max) else { throw fail("malformed line: bad superseded pid") }
            // Thread `old` exec'd and now has the leader's pid: the exec succeeded and is applied
            // here; its execve line's end, if any, comes as the leader's '<... execve resumed>'.
            // The leader's own pending call died with it.
            unfinished[Int32(old)] = nil
            if unfinished.removeValue(forKey: pid) != nil { counts.unfinishedAtExit += 1 }
            supersededExec.insert(pid)
            try submit(StraceRecord(pid: pid, time: time, line: reader.lineNumber, op: .superseded(old: Int32(old))))
        } else {
            throw fail("malformed line: unknown '+++' line")
        }
    }

    /// A complete call `NAME(ARGS) = RESULT ...` at b[i...].
    private func call(_ b: Bytes, _ i: Int, _ pid: Int32, _ time: UInt64) throws(TraceError) {
        let n = b.count
        var p = i
        while p < n && isNameByte(b[p]) { p += 1 }
        guard p < n, b[p] == 0x28 else { throw fail("malformed line: expected 'name(arguments) = result'") }
        let nameStart = i, nameEnd = p
        // The result follows the last " = ".
        var eq = n - 3
        while eq > p && !(b[eq] == 0x20 && b[eq + 1] == 0x3d && b[eq + 2] == 0x20) { eq -= 1 }
        guard eq > p else { throw fail("malformed line: no ' = result'") }
        var ae = eq
        while ae > p && b[ae - 1] == 0x20 { ae -= 1 }
        guard ae > p, b[ae - 1] == 0x29 else { throw fail("malformed line: arguments not closed") }
        let argStart = p + 1, argEnd = ae - 1
        // Result.
        var r = eq + 3
        let result: CallResult
        if r < n && b[r] == 0x3f {  // '?'
            r += 1
            result = bytesContain(b, r, n, " ERESTART") ? .restarted : .unknown
        } else {
            var e = r
            while e < n && b[e] != 0x20 && b[e] != 0x3c { e += 1 }  // strace -y: 'FD</path>'
            guard let v = parseInteger(b, r, e) else { throw fail("malformed line: bad result") }
            if v < 0 {
                result = .failed  // -1 ERRNO (or '-1 (errno N)'): the kernel refused the call
            } else {
                result = .value(v)
            }
        }
        let len = nameEnd - nameStart
        @inline(__always) func named(_ lit: StaticString) -> Bool { bytesEqual(b, nameStart, nameEnd, lit) }
        func nameString() -> String { String(decoding: UnsafeBufferPointer(rebasing: b[nameStart..<nameEnd]), as: UTF8.self) }
        // Failed and restarted calls of every syscall are counted and have no effect.
        switch result {
        case .failed: counts.failed[nameString(), default: 0] += 1; return
        case .restarted: counts.restarted[nameString(), default: 0] += 1; return
        case .unknown:
            // '= ?': no result, the task died in the call (exit and exit_group always end so).
            if !(named("exit") || named("exit_group")) { counts.noResult[nameString(), default: 0] += 1 }
            return
        case .value: break
        }
        var value: UInt64 {
            if case .value(let v) = result { return UInt64(v) }
            return 0
        }
        let line = reader.lineNumber
        func emit(_ op: StraceOp) throws(TraceError) {
            try submit(StraceRecord(pid: pid, time: time, line: line, op: op))
        }
        func arg(_ k: Int) -> Int64? { k < args.count ? parseInteger(b, args[k].0, args[k].1) : nil }
        func checkedRange(_ a: UInt64, _ l: UInt64) throws(TraceError) {
            if !plausibleRange(a, l) { throw fail("implausible address range 0x\(String(a, radix: 16)) + \(l)") }
        }

        switch len {
        case 4 where named("mmap"), 5 where named("mmap2"):
            guard splitArguments(b, argStart, argEnd, into: &args, max: 6) == 6,
                  let len = arg(1), let off = arg(5) else {
                throw fail("malformed line: mmap needs 6 arguments")
            }
            // The fd: -1 (anonymous), N, or strace -y's N</path>.
            var fd: Int64 = -1
            var fdPath: String?
            if let d = parseFD(b, args[4].0, args[4].1) {
                fd = Int64(d.fd)
                if let (s, e) = d.path { fdPath = "\"" + String(decoding: UnsafeBufferPointer(rebasing: b[s..<e]), as: UTF8.self) + "\"" }
            } else if let v = arg(4) {
                fd = v
            } else {
                throw fail("malformed line: bad mmap fd")
            }
            try checkedRange(value, UInt64(bitPattern: len))
            let (fs, fe) = args[3]
            let anon = bytesContain(b, fs, fe, "MAP_ANON")
            let shared = hasFlag(b, fs, fe, "MAP_SHARED") || hasFlag(b, fs, fe, "MAP_SHARED_VALIDATE")
            try emit(.mmap(address: value, length: UInt64(bitPattern: len), protection: parseProtection(b, args[2].0, args[2].1),
                           shared: shared, anon: anon, fd: Int32(truncatingIfNeeded: fd), offset: UInt64(bitPattern: off),
                           fdPath: fdPath))
        case 3 where named("brk"):
            guard case .value(let v) = result else { return }
            guard splitArguments(b, argStart, argEnd, into: &args, max: 1) == 1, let req = arg(0) else {
                throw fail("malformed line: brk needs 1 argument")
            }
            if UInt64(v) >= traceAddressLimit || UInt64(bitPattern: req) >= traceAddressLimit { throw fail("implausible program break") }
            try emit(.brk(request: UInt64(req), result: UInt64(v)))
        case 6 where named("munmap"):
            guard splitArguments(b, argStart, argEnd, into: &args, max: 2) == 2, let sa = arg(0), let sl = arg(1) else {
                throw fail("malformed line: munmap needs 2 arguments")
            }
            let (a, l) = (UInt64(bitPattern: sa), UInt64(bitPattern: sl))
            try checkedRange(a, l)
            try emit(.munmap(address: a, length: l))
        case 6 where named("mremap"):
            let k = splitArguments(b, argStart, argEnd, into: &args, max: 5)
            guard k >= 4, let soa = arg(0), let sol = arg(1), let snl = arg(2) else {
                throw fail("malformed line: mremap needs 4 or 5 arguments")
            }
            let (oa, ol, nl) = (UInt64(bitPattern: soa), UInt64(bitPattern: sol), UInt64(bitPattern: snl))
            try checkedRange(oa, ol)
            try checkedRange(value, nl)
            var flags = MremapFlags()
            let (fs, fe) = args[3]
            if bytesContain(b, fs, fe, "MREMAP_MAYMOVE") { flags.insert(.mayMove) }
            if bytesContain(b, fs, fe, "MREMAP_FIXED") { flags.insert(.fixed) }
            if bytesContain(b, fs, fe, "MREMAP_DONTUNMAP") { flags.insert(.dontUnmap) }
            try emit(.mremap(oldAddress: oa, oldLength: ol, newAddress: value, newLength: nl, flags: flags))
        case 8 where named("mprotect"), 13 where named("pkey_mprotect"):
            guard splitArguments(b, argStart, argEnd, into: &args, max: 4) >= 3, let sa = arg(0), let sl = arg(1) else {
                throw fail("malformed line: mprotect needs 3 arguments")
            }
            let (a, l) = (UInt64(bitPattern: sa), UInt64(bitPattern: sl))
            try checkedRange(a, l)
            try emit(.mprotect(address: a, length: l, protection: parseProtection(b, args[2].0, args[2].1)))
        case 7 where named("madvise"):
            guard splitArguments(b, argStart, argEnd, into: &args, max: 3) == 3, let sa = arg(0), let sl = arg(1) else {
                throw fail("malformed line: madvise needs 3 arguments")
            }
            let (a, l) = (UInt64(bitPattern: sa), UInt64(bitPattern: sl))
            try checkedRange(a, l)
            let (s, e) = args[2]
            let advice: Advice
            if bytesEqual(b, s, e, "MADV_DONTNEED") { advice = .dontneed }
            else if bytesEqual(b, s, e, "MADV_FREE") { advice = .free }
            else if bytesEqual(b, s, e, "MADV_REMOVE") { advice = .remove }
            else if bytesEqual(b, s, e, "MADV_DONTFORK") { advice = .dontfork }
            else if bytesEqual(b, s, e, "MADV_DOFORK") { advice = .dofork }
            else if bytesEqual(b, s, e, "MADV_WIPEONFORK") { advice = .wipeonfork }
            else if bytesEqual(b, s, e, "MADV_KEEPONFORK") { advice = .keeponfork }
            else { counts.otherAdvice += 1; return }
            try emit(.madvise(address: a, length: l, advice: advice))
        case 5 where named("clone"), 6 where named("clone3"), 4 where named("fork"), 5 where named("vfork"):
            guard case .value(let child) = result, child > 0, child <= Int64(Int32.max) else {
                throw fail("malformed line: clone without a child pid")
            }
            var kind = StraceOp.CloneKind.fork
            var sharesFiles = false
            if named("vfork") {
                kind = .vfork
            } else if !named("fork") {
                guard let f = findBytes(b, argStart, argEnd, "flags=") else {
                    throw fail("malformed line: clone without flags=")
                }
                let fs = f + 6
                var fe = fs
                while fe < argEnd && b[fe] != 0x2c && b[fe] != 0x7d && b[fe] != 0x29 { fe += 1 }
                // Named flags, and any raw hex part (strace -X raw, or bits it has no name for).
                var raw: UInt64 = 0
                var k = fs
                while k < fe {
                    var j = k
                    while j < fe && b[j] != 0x7c { j += 1 }
                    if j - k > 2, b[k] == 0x30, b[k + 1] == 0x78, let v = parseInteger(b, k, j) { raw |= UInt64(bitPattern: v) }
                    k = j + 1
                }
                let vm = hasFlag(b, fs, fe, "CLONE_VM") || raw & 0x100 != 0
                if vm { kind = hasFlag(b, fs, fe, "CLONE_VFORK") || raw & 0x4000 != 0 ? .vfork : .thread }
                sharesFiles = hasFlag(b, fs, fe, "CLONE_FILES") || raw & 0x400 != 0
            }
            try emit(.clone(child: Int32(child), kind: kind, sharesFiles: sharesFiles))
        case 6 where named("execve"), 8 where named("execveat"):
            guard case .value(0) = result else { throw fail("malformed line: execve returned something other than 0 or an error") }
            try emit(.exec)
        case 6 where named("openat"), 4 where named("open"), 7 where named("openat2"), 5 where named("creat"):
            guard case .value(let fd) = result, fd >= 0, fd <= Int64(Int32.max) else { return }
            let k = splitArguments(b, argStart, argEnd, into: &args, max: 3)
            let at = named("openat") || named("openat2")
            let pi = at ? 1 : 0
            guard k > pi else { throw fail("malformed line: open without a path") }
            let (s, e) = args[pi]
            // openat2's flags are inside its struct: the rest of the line holds them either way
            // (O_CLOEXEC by name, or bit 0x80000 of raw flags under strace -X raw).
            var cloexec = false
            if !named("creat") && k > pi + 1 {
                let (fs, fe) = args[pi + 1]
                cloexec = bytesContain(b, fs, argEnd, "O_CLOEXEC") || (parseInteger(b, fs, fe).map { $0 & 0x80000 != 0 } ?? false)
            }
            var dirfd: Int32?
            var dirPath: String?
            if at {
                let (ds, de) = args[0]
                if let d = parseFD(b, ds, de) {
                    dirfd = d.fd
                    if let (ps, pe) = d.path { dirPath = "\"" + String(decoding: UnsafeBufferPointer(rebasing: b[ps..<pe]), as: UTF8.self) + "\"" }
                } else if de - ds > 10, bytesEqual(b, ds, ds + 9, "AT_FDCWD<"), b[de - 1] == 0x3e {
                    dirPath = "\"" + String(decoding: UnsafeBufferPointer(rebasing: b[(ds + 9)..<(de - 1)]), as: UTF8.self) + "\""
                }
            }
            try emit(.open(fd: Int32(fd), path: String(decoding: UnsafeBufferPointer(rebasing: b[s..<e]), as: UTF8.self),
                           cloexec: cloexec, dirfd: dirfd, dirPath: dirPath))
        case 3 where named("dup"), 4 where named("dup2"), 4 where named("dup3"):
            guard case .value(let new) = result, new <= Int64(Int32.max) else { return }
            let k = splitArguments(b, argStart, argEnd, into: &args, max: 3)
            guard k >= 1, let old = parseFD(b, args[0].0, args[0].1) else { throw fail("malformed line: \(nameString()) without an fd") }
            let cloexec = named("dup3") && k == 3 && bytesContain(b, args[2].0, args[2].1, "O_CLOEXEC")
            try emit(.dup(old: old.fd, new: Int32(new), cloexec: cloexec))
        case 5 where named("fcntl"), 7 where named("fcntl64"):
            guard case .value(let v) = result else { return }
            let k = splitArguments(b, argStart, argEnd, into: &args, max: 3)
            guard k >= 2, let fd = parseFD(b, args[0].0, args[0].1) else { throw fail("malformed line: fcntl without an fd") }
            let (cs, ce) = args[1]
            if bytesEqual(b, cs, ce, "F_DUPFD") || bytesEqual(b, cs, ce, "F_DUPFD_CLOEXEC") {
                guard v <= Int64(Int32.max) else { throw fail("malformed line: bad fcntl result") }
                try emit(.dup(old: fd.fd, new: Int32(v), cloexec: bytesEqual(b, cs, ce, "F_DUPFD_CLOEXEC")))
            } else if bytesEqual(b, cs, ce, "F_SETFD"), k == 3 {
                let (fs, fe) = args[2]
                try emit(.setCloexec(fd: fd.fd, on: bytesContain(b, fs, fe, "FD_CLOEXEC") || parseInteger(b, fs, fe).map { $0 & 1 != 0 } == true))
            }
        case 5 where named("close"):
            guard splitArguments(b, argStart, argEnd, into: &args, max: 1) == 1, let fd = parseFD(b, args[0].0, args[0].1) else {
                throw fail("malformed line: close without an fd")
            }
            try emit(.close(first: fd.fd, last: fd.fd, cloexecOnly: false))
        case 11 where named("close_range"):
            let k = splitArguments(b, argStart, argEnd, into: &args, max: 3)
            guard k >= 2, let lo = parseFD(b, args[0].0, args[0].1)?.fd else {
                throw fail("malformed line: close_range needs 3 arguments")
            }
            // The last fd as printed (4294967295, ~0U, a name): past any fd when not a plain int.
            let hi = arg(1).map { Int32(clamping: $0 < 0 ? Int64(Int32.max) : $0) } ?? Int32.max
            let cloexecOnly = k == 3 && (bytesContain(b, args[2].0, args[2].1, "CLOSE_RANGE_CLOEXEC") || (arg(2).map { $0 & 4 != 0 } ?? false))
            try emit(.close(first: lo, last: hi, cloexecOnly: cloexecOnly))
        case 4 where named("exit"), 10 where named("exit_group"):
            return  // the task's end is its '+++' line
        default:
            counts.skipped[nameString(), default: 0] += 1
        }
    }

    // MARK: Ordering

    private func submit(_ r: StraceRecord) throws(TraceError) {
        if heldHead == held.count, tasks[r.pid] != nil {
            try apply(r)
            return
        }
        if case .taskExit = r.op, tasks[r.pid] == nil, births[r.pid] == nil, reapedByExec.remove(r.pid) != nil {
            return  // a thread that a later exec had already reported gone
        }
        if tasks.isEmpty && rootPid == r.pid && mms.isEmpty {
            try apply(r)
            return
        }
        if case .clone(let child, let kind, let files) = r.op {
            births[child] = Birth(parent: r.pid, kind: kind, sharesFiles: files)
        }
        if held.count - heldHead >= holdLimit {
            let first = held[heldHead]
            throw fail("pid \(first.pid) appears here but no clone returned it within \(holdLimit) lines", line: first.line)
        }
        held.append(r)
        try drain()
    }

    private func drain() throws(TraceError) {
        while heldHead < held.count {
            let r = held[heldHead]
            if tasks[r.pid] == nil {
                guard let b = births.removeValue(forKey: r.pid) else { break }
                try bear(r.pid, b, time: r.time, line: r.line)
                bornEarly.insert(r.pid)
                counts.seenBeforeClone += 1
            }
            heldHead += 1
            try apply(r)
        }
        if heldHead == held.count {
            held.removeAll(keepingCapacity: held.capacity <= 4096)
            heldHead = 0
        } else if heldHead > 4096 && heldHead * 2 > held.count {
            held.removeFirst(heldHead)
            heldHead = 0
        }
    }

    // MARK: Effects

    private func out(_ time: UInt64, _ e: TraceEvent) throws(TraceError) {
        counts.events += 1
        try sink?(TraceRecord(time: time - (baseTime ?? time), event: e))
    }

    private func newMM() -> MMID {
        let m = nextMM
        nextMM += 1
        return m
    }

    private func bear(_ child: Int32, _ b: Birth, time: UInt64, line: Int) throws(TraceError) {
        guard let parent = tasks[b.parent], var pm = mms[parent.mm] else {
            throw fail("clone by pid \(b.parent), which is not a live task", line: line)
        }
        if tasks[child] != nil { throw fail("clone returned pid \(child), which is still a live task", line: line) }
        let files = b.sharesFiles ? parent.files : FileTable(parent.files.fds)
        switch b.kind {
        case .fork:
            let m = newMM()
            mms[m] = MMState(own: 1, borrowed: 0, brk: pm.brk)
            tasks[child] = Task(mm: m, borrower: false, files: files)
            try out(time, .fork(parent: parent.mm, child: m))
        case .vfork:
            pm.borrowed += 1
            mms[parent.mm] = pm
            tasks[child] = Task(mm: parent.mm, borrower: true, files: files)
            try out(time, .vfork(mm: parent.mm))
        case .thread:
            pm.own += 1
            mms[parent.mm] = pm
            tasks[child] = Task(mm: parent.mm, borrower: false, files: files)
            try out(time, .thread(mm: parent.mm))
        }
    }

    /// One task leaves its mm (exit or exec): the events that say so, and the mm's end.
    private func leave(_ pid: Int32, _ t: Task, time: UInt64, byExec new: MMID?) throws(TraceError) {
        guard var m = mms[t.mm] else { return }
        if t.borrower {
            m.borrowed -= 1
            if let new {
                try out(time, .exec(old: t.mm, new: new, fromVfork: true))
            } else {
                try out(time, .vforkReturn(mm: t.mm))
            }
        } else {
            m.own -= 1
            if let new {
                try out(time, .exec(old: t.mm, new: new, fromVfork: false))
            } else {
                try out(time, m.own == 0 ? .exit(mm: t.mm) : .threadExit(mm: t.mm))
            }
        }
        if m.own == 0 && m.borrowed == 0 { mms[t.mm] = nil } else { mms[t.mm] = m }
    }

    /// Task `r.pid` (whose entry is `t`) executes a program: a new mm; exec kills the other threads.
    private func exec(_ r: StraceRecord, _ t: Task) throws(TraceError) {
        let mm = t.mm
        if !t.borrower, let m = mms[mm], m.own > 1 {
            for (pid, other) in tasks where other.mm == mm && !other.borrower && pid != r.pid {
                tasks[pid] = nil
                reapedByExec.insert(pid)
                mms[mm]!.own -= 1
                try out(r.time, .threadExit(mm: mm))
            }
        }
        let n = newMM()
        try leave(r.pid, t, time: r.time, byExec: n)
        mms[n] = MMState()
        tasks[r.pid] = Task(mm: n, borrower: false, files: t.files.afterExec())
    }

    private func apply(_ r: StraceRecord) throws(TraceError) {
        if tasks[r.pid] == nil {
            if case .taskExit = r.op, reapedByExec.remove(r.pid) != nil { return }
            if r.pid == rootPid && mms.isEmpty && nextMM == 1 {
                let m = newMM()
                mms[m] = MMState()
                tasks[r.pid] = Task(mm: m, borrower: false, files: FileTable())
                try out(r.time, .start(mm: m))
            } else {
                throw fail("pid \(r.pid) is not a live task", line: r.line)
            }
        }
        let t = tasks[r.pid]!
        let mm = t.mm
        switch r.op {
        case .clone(let child, let kind, let files):
            if bornEarly.remove(child) != nil { return }
            births[child] = nil
            try bear(child, Birth(parent: r.pid, kind: kind, sharesFiles: files), time: r.time, line: r.line)
        case .exec:
            try exec(r, t)
        case .taskExit:
            tasks[r.pid] = nil
            try leave(r.pid, t, time: r.time, byExec: nil)
        case .superseded(let old):
            // The thread `old` exec'd and took over this (the leader's) pid: the leader's task is
            // gone, and the thread's exec is done.
            guard let o = tasks.removeValue(forKey: old) else {
                throw fail("pid \(old) replaced pid \(r.pid) by exec but is not a live task", line: r.line)
            }
            tasks[r.pid] = o
            if var m = mms[mm], !t.borrower, m.own > 1 {
                m.own -= 1
                mms[mm] = m
                try out(r.time, .threadExit(mm: mm))
            }
            try exec(r, o)
        case .mmap(let a, let l, let p, let shared, let anon, let fd, let off, let fdPath):
            var backing = Backing.anon
            if !anon {
                if let path = fdPath ?? t.files.fds[fd]?.path {
                    if let id = fileIDs[path] {
                        backing = .file(id)
                    } else {
                        let id = UInt32(fileIDs.count + 1)
                        fileIDs[path] = id
                        try out(r.time, .file(id: id, path: path))
                        backing = .file(id)
                    }
                } else {
                    backing = .file(nil)
                }
            }
            try out(r.time, .mmap(mm: mm, address: a, length: l, protection: p, shared: shared, backing: backing, offset: off))
        case .munmap(let a, let l):
            try out(r.time, .munmap(mm: mm, address: a, length: l))
        case .mremap(let oa, let ol, let na, let nl, let f):
            try out(r.time, .mremap(mm: mm, oldAddress: oa, oldLength: ol, newAddress: na, newLength: nl, flags: f))
        case .brk(let req, let res):
            guard var m = mms[mm] else { return }
            if req == 0 {
                m.brk = res
            } else if req != res {
                counts.failed["brk", default: 0] += 1
                m.brk = res
            } else {
                if m.brk != 0 && m.brk != res { try out(r.time, .brk(mm: mm, from: m.brk, to: res)) }
                m.brk = res
            }
            mms[mm] = m
        case .mprotect(let a, let l, let p):
            try out(r.time, .mprotect(mm: mm, address: a, length: l, protection: p))
        case .madvise(let a, let l, let adv):
            try out(r.time, .madvise(mm: mm, address: a, length: l, advice: adv))
        case .open(let fd, var path, let cloexec, let dirfd, let dirPath):
            // A relative path opened at a directory the log named (by strace -y, or an fd
            // the table knows): the directory's path joined.
            if let dir = dirPath ?? dirfd.flatMap({ t.files.fds[$0]?.path }), path.utf8.count > 1, path.utf8.first == 0x22,
               path.utf8.dropFirst().first != 0x2f, dir.utf8.count > 1, dir.utf8.last == 0x22 {
                path = String(dir.dropLast()) + "/" + String(path.dropFirst())
            }
            t.files.fds[fd] = OpenFile(path: path, cloexec: cloexec)
        case .dup(let old, let new, let cloexec):
            if old == new { return }
            if let f = t.files.fds[old] {
                t.files.fds[new] = OpenFile(path: f.path, cloexec: cloexec)
            } else {
                t.files.fds[new] = nil  // now a file the log never named
            }
        case .close(let first, let last, let cloexecOnly):
            if first == last {
                if cloexecOnly { t.files.fds[first]?.cloexec = true } else { t.files.fds[first] = nil }
            } else {
                for fd in t.files.fds.keys where fd >= first && fd <= last {
                    if cloexecOnly { t.files.fds[fd]!.cloexec = true } else { t.files.fds[fd] = nil }
                }
            }
        case .setCloexec(let fd, let on):
            t.files.fds[fd]?.cloexec = on
        }
    }
}

@inline(__always) func isDigitByte(_ c: UInt8) -> Bool { c &- 0x30 < 10 }
@inline(__always) func isNameByte(_ c: UInt8) -> Bool { (c &- 0x61 < 26) || (c &- 0x30 < 10) || c == 0x5f }

func formatTime(_ us: UInt64) -> String {
    let frac = String(us % 1_000_000)
    return "\(us / 1_000_000).\(String(repeating: "0", count: 6 - frac.count))\(frac)"
}
