import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file line by line through zlib, which passes plain (uncompressed)
/// files through unchanged. Memory is one fixed buffer plus the longest line.
/// A truncated or corrupt gzip stream is an error, not a short file.
public final class LineReader {
    public let path: String
    private var file: gzFile?
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var eof = false
    /// Line number (1-based) of the line last returned.
    public private(set) var lineNumber = 0
    /// Whether the file started with the gzip magic bytes.
    public private(set) var isCompressed = false

    public init(path: String, bufferSize: Int = 1 << 20) throws(TraceError) {
        self.path = path
        capacity = bufferSize
        buffer = .allocate(capacity: bufferSize)
        var magic: [UInt8] = [0, 0]
        let fd = open(path, O_RDONLY)
        // (On a throw below, deinit frees the buffer.)
        if fd < 0 {
            throw TraceError(file: path, line: 0, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        let n = read(fd, &magic, 2)
        close(fd)
        isCompressed = n == 2 && magic[0] == 0x1f && magic[1] == 0x8b
        guard let f = gzopen(path, "rb") else {
            throw TraceError(file: path, line: 0, message: "cannot open")
        }
        gzbuffer(f, 256 * 1024)
        file = f
    }

    deinit {
        if let file { gzclose_r(file) }
        buffer.deallocate()
    }

    /// Calls `body` with the next line (without its newline), or returns false at the end.
    /// The bytes are valid only during the call.
    @inline(__always)
    public func nextLine<R>(_ body: (UnsafeBufferPointer<UInt8>) throws(TraceError) -> R) throws(TraceError) -> R? {
        while true {
            if end > start, let nl = memchr(buffer + start, 0x0a, end - start) {
                let p = nl.assumingMemoryBound(to: UInt8.self)
                let len = p - (buffer + start)
                let line = UnsafeBufferPointer(start: buffer + start, count: len)
                start += len + 1
                lineNumber += 1
                return try body(line)
            }
            if eof {
                if end > start {
                    let line = UnsafeBufferPointer(start: buffer + start, count: end - start)
                    start = end
                    lineNumber += 1
                    return try body(line)
                }
                return nil
            }
            try fill()
        }
    }

    private func fill() throws(TraceError) {
        if start > 0 {
            if end > start { memmove(buffer, buffer + start, end - start) }
            end -= start
            start = 0
        }
        if end == capacity {
            // One line longer than the whole buffer: double it.
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
            bigger.update(from: buffer, count: end)
            buffer.deallocate()
            buffer = bigger
            capacity *= 2
        }
        let n = gzread(file, buffer + end, UInt32(capacity - end))
        var code: Int32 = 0
        if n > 0 {
            end += Int(n)
            return
        }
        _ = gzerror(file, &code)
        if n < 0 || code != Z_OK {
            throw TraceError(file: path, line: lineNumber + 1, message: "truncated or corrupt gzip data")
        }
        eof = true
    }
}

/// Writes a gzip file through zlib, buffered.
public final class GzipWriter {
    public let path: String
    private var file: gzFile?
    private var pending: [UInt8] = []

    public init(path: String, level: Int32 = 6) throws(TraceError) {
        self.path = path
        guard let f = gzopen(path, "wb\(level)") else {
            throw TraceError(file: path, line: 0, message: "cannot create: \(String(cString: strerror(errno)))")
        }
        gzbuffer(f, 256 * 1024)
        file = f
        pending.reserveCapacity(1 << 16)
    }

    deinit {
        if let file { gzclose_w(file) }
    }

    @inline(__always)
    public func write(_ bytes: some Sequence<UInt8>) throws(TraceError) {
        pending.append(contentsOf: bytes)
        if pending.count >= 1 << 16 { try flushPending() }
    }

    @inline(__always)
    public func write(byte: UInt8) throws(TraceError) {
        pending.append(byte)
    }

    private func flushPending() throws(TraceError) {
        guard !pending.isEmpty else { return }
        let n = pending.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        if n <= 0 { throw TraceError(file: path, line: 0, message: "write failed") }
        pending.removeAll(keepingCapacity: true)
    }

    /// Flushes and closes the file; the writer cannot be used afterwards.
    public func close() throws(TraceError) {
        try flushPending()
        guard let f = file else { return }
        file = nil
        if gzclose_w(f) != Z_OK { throw TraceError(file: path, line: 0, message: "close failed") }
    }
}
