#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// High-level operations on logs and traces, for the command line and tests.
public enum TraceTools {
    /// What an import did.
    public struct ImportSummary: Sendable {
        public var counts: ImportCounts
        public var records: Int
    }

    /// Converts an strace log into a trace file at `output`.
    @discardableResult
    /// The trace is written to a temporary file beside `output` and renamed at the
    /// end, so a refused log leaves no partial trace.
    public static func importLog(_ input: String, to output: String, metadata: [(String, String)] = []) throws(TraceError) -> ImportSummary {
        let partial = output + ".partial-\(getpid())"
        do throws(TraceError) {
            let s = try importLog(input, partial: partial, metadata: metadata)
            if rename(partial, output) != 0 {
                throw TraceError(file: output, line: 0, message: "cannot write: \(String(cString: strerror(errno)))")
            }
            return s
        } catch {
            unlink(partial)
            throw error
        }
    }

    private static func importLog(_ input: String, partial output: String, metadata: [(String, String)]) throws(TraceError) -> ImportSummary {
        let importer = try StraceImporter(path: input)
        // Peek at the first timestamp for the header: the importer reads it on its first line.
        var writer: TraceWriter?
        var meta = metadata
        meta.append(("source", "strace"))
        try importer.run { (r) throws(TraceError) -> Void in
            if writer == nil {
                var m = meta
                if let b = importer.baseTime { m.append(("base-time", formatTime(b))) }
                writer = try TraceWriter(path: output, metadata: m)
            }
            try writer!.write(r)
        }
        if writer == nil { writer = try TraceWriter(path: output, metadata: meta) }
        try writer!.close()
        return ImportSummary(counts: importer.counts, records: writer!.count)
    }

    /// Statistics of a trace file or of a raw strace log (told apart by the
    /// trace header, after gzip decompression). The import counts are those of
    /// a raw log, nil for a trace.
    public static func stats(of path: String) throws(TraceError) -> (TraceStats, ImportCounts?) {
        var builder = TraceStatsBuilder()
        if try TraceReader.isTrace(path: path) {
            let reader = try TraceReader(path: path)
            while let r = try reader.next() { builder.add(r) }
            return (builder.finish(), nil)
        }
        let importer = try StraceImporter(path: path)
        try importer.run { builder.add($0) }
        return (builder.finish(), importer.counts)
    }

    /// All records of a trace file (for tests and small traces).
    public static func readAll(_ path: String) throws(TraceError) -> [TraceRecord] {
        let reader = try TraceReader(path: path)
        var out: [TraceRecord] = []
        while let r = try reader.next() { out.append(r) }
        return out
    }

    /// All records an strace log imports to, checked by a `TraceReader`-equivalent pass.
    public static func importAll(_ path: String) throws(TraceError) -> ([TraceRecord], ImportCounts) {
        let importer = try StraceImporter(path: path)
        var out: [TraceRecord] = []
        try importer.run { out.append($0) }
        return (out, importer.counts)
    }
}
