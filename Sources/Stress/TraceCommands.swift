import ArgumentParser
import Foundation
import RmapTrace
import StressSupport
import TraceReplay

/// `stress trace`: real programs' process and memory system calls, recorded
/// with strace and kept in the project's trace format (docs/trace-format.md).
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Record, import, measure and replay traces of real programs (fork, exec, exit, mmap, mremap...).",
        discussion: """
            Exit status: 0 success, 2 bad usage or a bad input file (one line naming the file and line); \
            `run` also 1 FAILURE and 3 STALL. The format is described in docs/trace-format.md, the replay \
            in docs/trace-replay.md.
            """,
        subcommands: [Record.self, Import.self, Stats.self, Bench.self, ReplayRun.self])

    /// Runs `body`, turning a trace error into a one-line usage error (exit status 2).
    static func checked<T>(_ body: () throws(TraceError) -> T) throws -> T {
        do { return try body() } catch { throw ValidationError(error.description) }
    }

    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command under strace and write its trace.",
            discussion: """
                Runs strace -f --seccomp-bpf -ttt -s 256 -y -e trace=process,memory,\(fileCalls) -o LOG -- COMMAND..., then \
                imports LOG. Needs strace (apt-get install strace). The command's own exit status is reported, \
                not returned.
                """)

        /// The calls that name and follow a mapping's fd: without close, dup and
        /// fcntl an fd reused for another file would keep its old path.
        static let fileCalls = "open,openat,openat2,creat,close,close_range,dup,dup2,dup3,fcntl"

        @Option(help: "The trace file to write (gzip).")
        var out: String
        @Option(name: .customLong("keep-log"), help: "Also keep strace's raw log at this path.")
        var keepLog: String?
        @Argument(parsing: .postTerminator, help: "The command to trace, after --.")
        var command: [String] = []

        func validate() throws {
            if command.isEmpty { throw ValidationError("no command to trace: stress trace record --out FILE -- COMMAND [ARGS...]") }
        }

        func run() throws {
            guard let strace = Self.findStrace() else {
                throw ValidationError("strace not found: apt-get install strace")
            }
            let log = keepLog ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("stress-trace-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).st")
            defer { if keepLog == nil { try? FileManager.default.removeItem(atPath: log) } }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: strace)
            p.arguments = ["-f", "--seccomp-bpf", "-ttt", "-s", "256", "-y", "-e", "trace=process,memory," + Self.fileCalls, "-o", log, "--"] + command
            do { try p.run() } catch { throw ValidationError("cannot run strace: \(error.localizedDescription)") }
            p.waitUntilExit()
            let size = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? nil
            guard let size, size > 0 else {
                throw ValidationError("strace recorded nothing (exit status \(p.terminationStatus)); can it trace here (ptrace permitted)?")
            }
            let s = try TraceCommand.checked { () throws(TraceError) in
                try TraceTools.importLog(log, to: out, metadata: [("command", command.map(shellQuoted).joined(separator: " "))])
            }
            FileHandle.standardError.write(Data("trace: command exited with status \(p.terminationStatus); \(s.counts.lines) log lines -> \(s.records) events in \(out)\n".utf8))
        }

        static func findStrace() -> String? {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            for dir in path.split(separator: ":") {
                let candidate = "\(dir)/strace"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
            return nil
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert an strace -f -ttt log (plain or .gz) into a trace file.")

        @Argument(help: "The strace log.")
        var log: String
        @Option(help: "The trace file to write (gzip).")
        var out: String

        func run() throws {
            let start = Date()
            let s = try TraceCommand.checked { () throws(TraceError) in try TraceTools.importLog(log, to: out) }
            let secs = Date().timeIntervalSince(start)
            var note = "\(s.counts.lines) lines -> \(s.records) events in \(String(format: "%.2f", secs)) s"
            note += "; \(s.counts.failedTotal) failed calls, \(s.counts.restartedTotal) restarted, \(s.counts.skippedTotal) calls of other syscalls skipped"
            FileHandle.standardError.write(Data("import: \(note)\n".utf8))
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exact statistics of a trace or of a raw strace log: forks, execs, mremaps, anon group sizes.",
            discussion: "Every figure is defined in docs/trace-format.md.")

        @Argument(help: "A trace file or an strace log (plain or gzip).")
        var file: String
        @Option(help: "Also write the figures as JSON to this file ('-' for standard output).")
        var json: String?

        func run() throws {
            let (stats, counts) = try TraceCommand.checked { () throws(TraceError) in try TraceTools.stats(of: file) }
            let toStdout = json == "-"
            let text = "\(file) (\(counts == nil ? "trace" : "strace log"))\n" + stats.text
            if toStdout {
                FileHandle.standardError.write(Data(text.utf8))
            } else {
                print(text, terminator: "")
            }
            if let c = counts {
                let line = "import: \(c.lines) lines, \(c.failedTotal) failed calls, \(c.restartedTotal) restarted, \(c.skippedTotal) of other syscalls skipped\n"
                if toStdout { FileHandle.standardError.write(Data(line.utf8)) } else { print(line, terminator: "") }
            }
            if let json {
                let body = stats.json(importCounts: counts, source: (file as NSString).lastPathComponent)
                if toStdout {
                    print(body, terminator: "")
                } else {
                    do { try body.write(toFile: json, atomically: true, encoding: .utf8) } catch {
                        throw ValidationError("cannot write \(json): \(error.localizedDescription)")
                    }
                }
            }
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure import speed: parse an strace log and encode its trace (no file written), best of N.")

        @Argument(help: "An strace log (plain or gzip).")
        var log: String
        @Option(help: "Repeats, 1...100 (default 5); the best is reported.")
        var `repeat`: String?

        func run() throws {
            let n = try `repeat`.map { try Parse.whole($0, "--repeat", 1...100) } ?? 5
            var best = Double.infinity
            var lines = 0, events = 0
            for _ in 0..<n {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let (l, e) = try TraceCommand.checked { () throws(TraceError) -> (Int, Int) in
                    let importer = try StraceImporter(path: log)
                    var buffer: [UInt8] = []
                    buffer.reserveCapacity(1 << 16)
                    var count = 0
                    try importer.run { r in
                        r.encode(to: &buffer)
                        if buffer.count > 1 << 15 { buffer.removeAll(keepingCapacity: true) }
                        count += 1
                    }
                    return (importer.counts.lines, count)
                }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                best = min(best, dt)
                lines = l
                events = e
            }
            print("bench: \(log): \(lines) lines, \(events) events; best of \(n): \(String(format: "%.3f", best)) s = \(Int(Double(lines) / best)) lines/s")
        }
    }
}
