import Foundation
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// One `stress run` in a child process, as `selftest` and `scale` use it: a
/// planted bug may wedge threads or corrupt memory, and a child keeps that
/// contained. The child writes its result JSON to a temporary file, which
/// is read back and removed.
///
/// Signals: while a child runs, a SIGINT or SIGTERM that reached this
/// process is passed on to it (it stops, reports INTERRUPTED and writes its
/// result), and the caller learns of it from `Outcome.interrupted`.
public struct ChildRun {
    /// How the child process ended.
    public enum Ending: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
        /// Still running at the deadline: killed.
        case timedOut

        public var description: String {
            switch self {
            case .exited(let s): "exit \(s)"
            case .signaled(let s): "crashed (signal \(s)\(signalName(s).map { ", \($0)" } ?? ""))"
            case .timedOut: "hung (killed at its deadline)"
            }
        }
    }

    public struct Outcome: Sendable {
        public var ending: Ending
        /// The result file the child left, if any (a crash may leave a
        /// periodic snapshot with verdict RUNNING).
        public var result: StressResult?
        /// A signal reached this process while the child ran.
        public var interrupted: Int32
        public var wallS: Double
    }

    /// Runs `stress run <arguments> --quiet --json <tmp>` and waits at most
    /// `deadline` seconds. `tag` names the temporary file.
    public static func run(_ arguments: [String], deadline: Double, tag: String,
                           executable: URL = ChildProcess.selfExecutable) -> Outcome {
        runAll([arguments], deadline: deadline, tag: tag, executable: executable)[0]
    }

    /// Runs several children at once (the machine's own ceiling: independent
    /// processes that share nothing) and waits for all of them.
    public static func runAll(_ argumentLists: [[String]], deadline: Double, tag: String,
                              executable: URL = ChildProcess.selfExecutable) -> [Outcome] {
        let jsons = argumentLists.indices.map { NSTemporaryDirectory() + "crmap-\(getpid())-\(tag)-\($0).json" }
        defer { for j in jsons { unlink(j) } }
        let t0 = Date()
        let children: [ChildProcess?] = argumentLists.enumerated().map { i, args in
            try? ChildProcess.spawn(executable: executable.path, arguments: ["run"] + args + ["--quiet", "--json", jsons[i]])
        }
        var exits = [ChildExit?](repeating: nil, count: children.count)
        /// Reaps what has ended; the children still running.
        func running() -> [ChildProcess] {
            for i in children.indices where exits[i] == nil {
                guard let c = children[i] else { exits[i] = .exited(127); continue }
                exits[i] = c.poll()
            }
            return children.indices.compactMap { exits[$0] == nil ? children[$0] : nil }
        }
        var forwarded: Int32 = 0
        var timedOut = false
        var overdue = Set<Int>()
        let end = t0.addingTimeInterval(deadline)
        while !running().isEmpty {
            let sig = Signals.pending
            if sig != 0 && forwarded == 0 {
                forwarded = sig
                for c in running() { c.signal(sig) }
            }
            if Date() >= end && !timedOut {
                timedOut = true
                for i in children.indices where exits[i] == nil {
                    overdue.insert(i)
                    children[i]?.signal(SIGTERM)
                }
                let grace = Date().addingTimeInterval(3)
                while !running().isEmpty && Date() < grace { usleep(20_000) }
                for c in running() { c.signal(SIGKILL) }
            }
            usleep(20_000)
        }
        let wall = Date().timeIntervalSince(t0)
        return children.indices.map { i in
            guard children[i] != nil else { return Outcome(ending: .exited(127), result: nil, interrupted: forwarded, wallS: 0) }
            let ending: Ending
            if overdue.contains(i) {
                ending = .timedOut
            } else {
                switch exits[i]! {
                case .signaled(let s): ending = .signaled(s)
                case .exited(let c): ending = .exited(c)
                }
            }
            var result: StressResult?
            if let data = FileManager.default.contents(atPath: jsons[i]), !data.isEmpty {
                result = try? ResultFile.decoder().decode(StressResult.self, from: data)
            }
            return Outcome(ending: ending, result: result, interrupted: forwarded, wallS: wall)
        }
    }
}
