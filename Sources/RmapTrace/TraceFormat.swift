#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The trace format's name and version, as its first line says: `#rmap-trace 1`.
public enum TraceFormat {
    public static let magic = "#rmap-trace"
    public static let version = 1
    public static var headerLine: String { "\(magic) \(version)" }
}

// MARK: - Encoding

@inline(__always)
func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
    if v < 10 {
        out.append(0x30 &+ UInt8(v))
        return
    }
    var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of scratch
    withUnsafeMutableBytes(of: &digits) { raw in
        var i = 32
        var x = v
        while x > 0 {
            i -= 1
            raw[i] = 0x30 &+ UInt8(x % 10)
            x /= 10
        }
        out.append(contentsOf: raw[i..<32])
    }
}

@inline(__always)
func appendHex(_ v: UInt64, to out: inout [UInt8]) {
    out.append(0x30)
    out.append(0x78)
    if v == 0 {
        out.append(0x30)
        return
    }
    let hex: StaticString = "0123456789abcdef"
    var shift = (63 - v.leadingZeroBitCount) / 4 * 4
    hex.withUTF8Buffer { h in
        while shift >= 0 {
            out.append(h[Int((v >> UInt64(shift)) & 15)])
            shift -= 4
        }
    }
}

@inline(__always)
func appendString(_ s: StaticString, to out: inout [UInt8]) {
    s.withUTF8Buffer { out.append(contentsOf: $0) }
}

func appendProtection(_ p: Protection, to out: inout [UInt8]) {
    out.append(p.contains(.read) ? 0x72 : 0x2d)
    out.append(p.contains(.write) ? 0x77 : 0x2d)
    out.append(p.contains(.exec) ? 0x78 : 0x2d)
}

extension TraceRecord {
    /// Appends the record's line (with its newline) in trace format.
    public func encode(to out: inout [UInt8]) {
        appendDecimal(time, to: &out)
        out.append(0x20)
        func sp() { out.append(0x20) }
        func mmField(_ m: MMID) { appendDecimal(UInt64(m), to: &out) }
        switch event {
        case .start(let m): appendString("start ", to: &out); mmField(m)
        case .fork(let p, let c): appendString("fork ", to: &out); mmField(p); sp(); mmField(c)
        case .vfork(let m): appendString("vfork ", to: &out); mmField(m)
        case .vforkReturn(let m): appendString("vret ", to: &out); mmField(m)
        case .thread(let m): appendString("thread ", to: &out); mmField(m)
        case .threadExit(let m): appendString("texit ", to: &out); mmField(m)
        case .exit(let m): appendString("exit ", to: &out); mmField(m)
        case .exec(let o, let n, let v):
            appendString("exec ", to: &out); mmField(o); sp(); mmField(n)
            appendString(v ? " vfork" : " own", to: &out)
        case .file(let id, let path):
            appendString("file ", to: &out); appendDecimal(UInt64(id), to: &out); sp()
            out.append(contentsOf: path.utf8.map { $0 == 0x0a ? 0x20 : $0 })
        case .mmap(let m, let a, let l, let p, let shared, let backing, let off):
            appendString("mmap ", to: &out); mmField(m); sp(); appendHex(a, to: &out); sp()
            appendDecimal(l, to: &out); sp(); appendProtection(p, to: &out)
            appendString(shared ? " shared " : " private ", to: &out)
            switch backing {
            case .anon: appendString("anon", to: &out)
            case .file(nil): appendString("file:?", to: &out)
            case .file(let id?): appendString("file:", to: &out); appendDecimal(UInt64(id), to: &out)
            }
            sp(); appendHex(off, to: &out)
        case .munmap(let m, let a, let l):
            appendString("munmap ", to: &out); mmField(m); sp(); appendHex(a, to: &out); sp(); appendDecimal(l, to: &out)
        case .mremap(let m, let oa, let ol, let na, let nl, let f):
            appendString("mremap ", to: &out); mmField(m); sp(); appendHex(oa, to: &out); sp(); appendDecimal(ol, to: &out)
            sp(); appendHex(na, to: &out); sp(); appendDecimal(nl, to: &out); sp()
            if f.isEmpty {
                out.append(0x2d)
            } else {
                var first = true
                for (flag, name) in [(MremapFlags.mayMove, "maymove"), (.fixed, "fixed"), (.dontUnmap, "dontunmap")] where f.contains(flag) {
                    if !first { out.append(0x7c) }
                    first = false
                    out.append(contentsOf: name.utf8)
                }
            }
        case .brk(let m, let from, let to):
            appendString("brk ", to: &out); mmField(m); sp(); appendHex(from, to: &out); sp(); appendHex(to, to: &out)
        case .mprotect(let m, let a, let l, let p):
            appendString("mprotect ", to: &out); mmField(m); sp(); appendHex(a, to: &out); sp(); appendDecimal(l, to: &out)
            sp(); appendProtection(p, to: &out)
        case .madvise(let m, let a, let l, let adv):
            appendString("madvise ", to: &out); mmField(m); sp(); appendHex(a, to: &out); sp(); appendDecimal(l, to: &out)
            sp(); out.append(contentsOf: adv.rawValue.utf8)
        }
        out.append(0x0a)
    }

    /// The record's line in trace format, without its newline.
    public var line: String {
        var out: [UInt8] = []
        encode(to: &out)
        out.removeLast()
        return String(decoding: out, as: UTF8.self)
    }
}

// MARK: - Writer

/// Writes a trace file (gzip) event by event: the header, metadata lines,
/// then one line per record.
public final class TraceWriter {
    private let out: GzipWriter
    private var line: [UInt8] = []
    public private(set) var count = 0

    /// Creates `path` and writes the header and `metadata` (one `#key value` line each).
    public init(path: String, metadata: [(String, String)] = []) throws(TraceError) {
        out = try GzipWriter(path: path)
        var head = TraceFormat.headerLine + "\n"
        for (k, v) in metadata {
            head += "#\(k) \(String(v.map { $0 == "\n" ? " " : $0 }))\n"
        }
        try out.write(Array(head.utf8))
        line.reserveCapacity(256)
    }

    @inline(__always)
    public func write(_ record: TraceRecord) throws(TraceError) {
        line.removeAll(keepingCapacity: true)
        record.encode(to: &line)
        try out.write(line)
        count += 1
    }

    /// Flushes and closes the file.
    public func close() throws(TraceError) { try out.close() }
}

// MARK: - Reader

/// Reads a trace file (gzip or plain) and yields its records in file order,
/// checking them as it goes.
///
/// Use:
///
///     let reader = try TraceReader(path: "make.trace.gz")
///     while let record = try reader.next() {
///         switch record.event { case .fork(let parent, let child): ... default: ... }
///     }
///
/// Guarantees, for a consumer such as a replay engine: records come in file
/// order with non-decreasing times; every event names an address space that
/// is live at that point (created by `start`, `fork` or `exec` and not yet
/// freed); each address space's events keep their order; a `fork` comes
/// before any event of its child and after its parent's creation; an `exec`
/// comes before any event of its new mm; an mm's `exit` (or the `exec` of its
/// last own task) comes after all its other own-task events. An address space
/// is freed when its last own task has exited or exec'd and no vfork child
/// borrows it; any later event naming it is an error. `file` events declare
/// ids before the first mapping that uses them. Memory is bounded by the
/// number of live address spaces and files.
///
/// Errors are `TraceError`s naming the file and line: bad header or version,
/// malformed line, unknown event, unknown or reused mm, times going backwards,
/// implausible addresses or lengths, truncated gzip data.
public final class TraceReader {
    public let path: String
    private let lines: LineReader
    /// The `#key value` lines read so far (all of those before the first event once it is returned).
    public private(set) var metadata: [(String, String)] = []
    private var lastTime: UInt64 = 0
    private struct Live { var own: Int32; var borrowed: Int32 }
    private var live: [MMID: Live] = [:]
    private var highestMM: MMID = 0
    private var files: Set<UInt32> = []

    public init(path: String) throws(TraceError) {
        self.path = path
        lines = try LineReader(path: path)
        let header: String? = try lines.nextLine { String(decoding: $0, as: UTF8.self) }
        guard let header else { throw TraceError(file: path, line: 1, message: "empty file: no \(TraceFormat.magic) header") }
        let parts = header.split(separator: " ")
        guard parts.count == 2, parts[0] == TraceFormat.magic else {
            throw TraceError(file: path, line: 1, message: "not a trace: the first line is not '\(TraceFormat.headerLine)'")
        }
        guard let v = Int(parts[1]), v == TraceFormat.version else {
            throw TraceError(file: path, line: 1, message: "unsupported trace format version '\(parts[1])' (this reader reads \(TraceFormat.version))")
        }
    }

    /// Whether a file starts (after gzip decompression) with the trace header.
    public static func isTrace(path: String) throws(TraceError) -> Bool {
        let r = try LineReader(path: path)
        let first: String? = try r.nextLine { String(decoding: $0.prefix(64), as: UTF8.self) }
        return first?.hasPrefix(TraceFormat.magic + " ") ?? false
    }

    /// The next record, or nil at the end of the file.
    public func next() throws(TraceError) -> TraceRecord? {
        while true {
            let r: TraceRecord?? = try lines.nextLine { (line) throws(TraceError) -> TraceRecord? in
                if line.isEmpty { throw fail("empty line") }
                if line[0] == 0x23 {  // '#'
                    let text = String(decoding: line.dropFirst(), as: UTF8.self)
                    if let sp = text.firstIndex(of: " ") {
                        metadata.append((String(text[..<sp]), String(text[text.index(after: sp)...])))
                    } else {
                        metadata.append((text, ""))
                    }
                    return nil
                }
                return try parse(line)
            }
            guard let r else { return nil }
            if let record = r { return record }
        }
    }

    private func fail(_ message: String) -> TraceError {
        TraceError(file: path, line: lines.lineNumber, message: message)
    }

    private func parse(_ line: UnsafeBufferPointer<UInt8>) throws(TraceError) -> TraceRecord {
        var f = FieldScanner(line)
        guard let t = f.decimal() else { throw fail("malformed line: no time") }
        if t < lastTime { throw fail("time goes backwards (\(t) after \(lastTime))") }
        lastTime = t
        guard let kind = f.word() else { throw fail("malformed line: no event") }
        let event: TraceEvent
        func mm() throws(TraceError) -> MMID {
            guard let v = f.decimal(), v > 0, v <= UInt64(UInt32.max) else { throw fail("malformed line: bad mm id") }
            return MMID(v)
        }
        func hex() throws(TraceError) -> UInt64 {
            guard let v = f.hex() else { throw fail("malformed line: bad address") }
            return v
        }
        func dec() throws(TraceError) -> UInt64 {
            guard let v = f.decimal() else { throw fail("malformed line: bad length") }
            return v
        }
        func prot() throws(TraceError) -> Protection {
            guard let w = f.wordBytes(), w.count == 3 else { throw fail("malformed line: bad protection") }
            var p = Protection()
            if w[0] == 0x72 { p.insert(.read) } else if w[0] != 0x2d { throw fail("malformed line: bad protection") }
            if w[1] == 0x77 { p.insert(.write) } else if w[1] != 0x2d { throw fail("malformed line: bad protection") }
            if w[2] == 0x78 { p.insert(.exec) } else if w[2] != 0x2d { throw fail("malformed line: bad protection") }
            return p
        }
        func range() throws(TraceError) -> (UInt64, UInt64) {
            let a = try hex(), l = try dec()
            if !plausibleRange(a, l) { throw fail("implausible address range 0x\(String(a, radix: 16)) + \(l)") }
            return (a, l)
        }
        switch kind {
        case "start": event = .start(mm: try mm())
        case "fork": let p = try mm(); event = .fork(parent: p, child: try mm())
        case "vfork": event = .vfork(mm: try mm())
        case "vret": event = .vforkReturn(mm: try mm())
        case "thread": event = .thread(mm: try mm())
        case "texit": event = .threadExit(mm: try mm())
        case "exit": event = .exit(mm: try mm())
        case "exec":
            let o = try mm(), n = try mm()
            switch f.word() {
            case "own": event = .exec(old: o, new: n, fromVfork: false)
            case "vfork": event = .exec(old: o, new: n, fromVfork: true)
            default: throw fail("malformed line: exec needs 'own' or 'vfork'")
            }
        case "file":
            guard let id = f.decimal(), id <= UInt64(UInt32.max) else { throw fail("malformed line: bad file id") }
            let rest = f.rest()
            if rest.isEmpty { throw fail("malformed line: file without a path") }
            if files.contains(UInt32(id)) { throw fail("file id \(id) declared twice") }
            files.insert(UInt32(id))
            return TraceRecord(time: t, event: .file(id: UInt32(id), path: String(decoding: rest, as: UTF8.self)))
        case "mmap":
            let m = try mm()
            let (a, l) = try range()
            let p = try prot()
            let shared: Bool
            switch f.word() {
            case "private": shared = false
            case "shared": shared = true
            default: throw fail("malformed line: mmap needs 'private' or 'shared'")
            }
            guard let b = f.word() else { throw fail("malformed line: mmap without backing") }
            let backing: Backing
            if b == "anon" {
                backing = .anon
            } else if b == "file:?" {
                backing = .file(nil)
            } else if b.hasPrefix("file:"), let id = UInt32(b.dropFirst(5)) {
                guard files.contains(id) else { throw fail("mmap of undeclared file id \(id)") }
                backing = .file(id)
            } else {
                throw fail("malformed line: bad mmap backing '\(b)'")
            }
            let off = try hex()
            event = .mmap(mm: m, address: a, length: l, protection: p, shared: shared, backing: backing, offset: off)
        case "munmap":
            let m = try mm()
            let (a, l) = try range()
            event = .munmap(mm: m, address: a, length: l)
        case "mremap":
            let m = try mm()
            let (oa, ol) = try range()
            let (na, nl) = try range()
            guard let fw = f.word() else { throw fail("malformed line: mremap without flags") }
            var flags = MremapFlags()
            if fw != "-" {
                for part in fw.split(separator: "|") {
                    switch part {
                    case "maymove": flags.insert(.mayMove)
                    case "fixed": flags.insert(.fixed)
                    case "dontunmap": flags.insert(.dontUnmap)
                    default: throw fail("malformed line: bad mremap flag '\(part)'")
                    }
                }
            }
            event = .mremap(mm: m, oldAddress: oa, oldLength: ol, newAddress: na, newLength: nl, flags: flags)
        case "brk":
            let m = try mm()
            let from = try hex(), to = try hex()
            if from >= traceAddressLimit || to >= traceAddressLimit { throw fail("implausible program break") }
            event = .brk(mm: m, from: from, to: to)
        case "mprotect":
            let m = try mm()
            let (a, l) = try range()
            event = .mprotect(mm: m, address: a, length: l, protection: try prot())
        case "madvise":
            let m = try mm()
            let (a, l) = try range()
            guard let w = f.word(), let adv = Advice(rawValue: w) else { throw fail("malformed line: bad madvise advice") }
            event = .madvise(mm: m, address: a, length: l, advice: adv)
        default:
            throw fail("unknown event '\(kind)'")
        }
        if !f.atEnd { throw fail("malformed line: extra fields") }
        try account(event)
        return TraceRecord(time: t, event: event)
    }

    private func need(_ m: MMID) throws(TraceError) -> Live {
        guard let l = live[m] else { throw fail("event for unknown mm \(m)") }
        return l
    }

    private func create(_ m: MMID) throws(TraceError) {
        if m <= highestMM { throw fail("mm \(m) is not new (mm ids increase and are never reused)") }
        highestMM = m
        live[m] = Live(own: 1, borrowed: 0)
    }

    private func release(_ m: MMID, _ l: Live) {
        if l.own == 0 && l.borrowed == 0 { live[m] = nil } else { live[m] = l }
    }

    /// Checks the event against the live address spaces and updates them.
    private func account(_ e: TraceEvent) throws(TraceError) {
        switch e {
        case .start(let m): try create(m)
        case .fork(let p, let c):
            let l = try need(p)
            if l.own == 0 { throw fail("fork from mm \(p), which has exited") }
            try create(c)
        case .vfork(let m):
            var l = try need(m)
            l.borrowed += 1
            live[m] = l
        case .vforkReturn(let m):
            var l = try need(m)
            if l.borrowed == 0 { throw fail("vret for mm \(m), which no vfork child borrows") }
            l.borrowed -= 1
            release(m, l)
        case .thread(let m):
            var l = try need(m)
            if l.own == 0 { throw fail("thread in mm \(m), which has exited") }
            l.own += 1
            live[m] = l
        case .threadExit(let m):
            var l = try need(m)
            if l.own < 2 { throw fail("texit for mm \(m)'s last task (that is an exit)") }
            l.own -= 1
            live[m] = l
        case .exit(let m):
            var l = try need(m)
            if l.own != 1 { throw fail("exit of mm \(m) while it has \(l.own) own tasks") }
            l.own = 0
            release(m, l)
        case .exec(let o, let n, let fromVfork):
            var l = try need(o)
            if fromVfork {
                if l.borrowed == 0 { throw fail("exec from a vfork child of mm \(o), which no vfork child borrows") }
                l.borrowed -= 1
            } else {
                if l.own != 1 { throw fail("exec from mm \(o) while it has \(l.own) own tasks") }
                l.own = 0
            }
            release(o, l)
            try create(n)
        case .file: break
        case .mmap(let m, _, _, _, _, _, _), .munmap(let m, _, _), .mremap(let m, _, _, _, _, _),
             .brk(let m, _, _), .mprotect(let m, _, _, _), .madvise(let m, _, _, _):
            _ = try need(m)
        }
    }
}

/// Splits a line into space-separated fields.
struct FieldScanner {
    let line: UnsafeBufferPointer<UInt8>
    var i = 0
    init(_ line: UnsafeBufferPointer<UInt8>) { self.line = line }

    var atEnd: Bool { i >= line.count }

    private mutating func fieldEnd() -> Int {
        var j = i
        while j < line.count && line[j] != 0x20 { j += 1 }
        return j
    }

    private mutating func advance(to j: Int) {
        i = j
        if i < line.count { i += 1 }  // the separating space
    }

    mutating func decimal() -> UInt64? {
        let j = fieldEnd()
        guard j > i, j - i <= 20 else { return nil }
        var v: UInt64 = 0
        for k in i..<j {
            let d = line[k] &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            v = s
        }
        advance(to: j)
        return v
    }

    mutating func hex() -> UInt64? {
        let j = fieldEnd()
        guard j - i >= 3, j - i <= 18, line[i] == 0x30, line[i + 1] == 0x78 else { return nil }
        var v: UInt64 = 0
        for k in (i + 2)..<j {
            let c = line[k]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x61...0x66: d = c - 0x61 + 10
            default: return nil
            }
            v = v << 4 | UInt64(d)
        }
        advance(to: j)
        return v
    }

    mutating func wordBytes() -> UnsafeBufferPointer<UInt8>? {
        let j = fieldEnd()
        guard j > i else { return nil }
        let w = UnsafeBufferPointer(rebasing: line[i..<j])
        advance(to: j)
        return w
    }

    mutating func word() -> String? {
        wordBytes().map { String(decoding: $0, as: UTF8.self) }
    }

    mutating func rest() -> UnsafeBufferPointer<UInt8> {
        let r = UnsafeBufferPointer(rebasing: line[i...])
        i = line.count
        return r
    }
}
