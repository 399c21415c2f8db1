import Foundation
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
            case .signaled(let s): "crashed (signal \(s)\(ChildRun.signalName(s).map { ", \($0)" } ?? ""))"
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

    static func signalName(_ s: Int32) -> String? {
        switch s {
        case SIGSEGV: "SIGSEGV"
        case SIGILL: "SIGILL"
        case SIGABRT: "SIGABRT"
        case SIGBUS: "SIGBUS"
        case SIGKILL: "SIGKILL"
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGTRAP: "SIGTRAP"
        case SIGFPE: "SIGFPE"
        default: nil
        }
    }

    /// The running executable (for re-running this binary as a child).
    public static var selfExecutable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }

    /// Runs `stress run <arguments> --quiet --json <tmp>` and waits at most
    /// `deadline` seconds. `tag` names the temporary file.
    public static func run(_ arguments: [String], deadline: Double, tag: String,
                           executable: URL = ChildRun.selfExecutable) -> Outcome {
        runAll([arguments], deadline: deadline, tag: tag, executable: executable)[0]
    }

    /// Runs several children at once (the machine's own ceiling: independent
    /// processes that share nothing) and waits for all of them.
    public static func runAll(_ argumentLists: [[String]], deadline: Double, tag: String,
                              executable: URL = ChildRun.selfExecutable) -> [Outcome] {
        let jsons = argumentLists.indices.map { NSTemporaryDirectory() + "crmap-\(getpid())-\(tag)-\($0).json" }
        defer { for j in jsons { unlink(j) } }
        let t0 = Date()
        var procs: [Process?] = []
        for (i, args) in argumentLists.enumerated() {
            let p = Process()
            p.executableURL = executable
            p.arguments = ["run"] + args + ["--quiet", "--json", jsons[i]]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            do { try p.run(); procs.append(p) } catch { procs.append(nil) }
        }
        var forwarded: Int32 = 0
        var timedOut = false
        var overdue = Set<Int>()
        let end = t0.addingTimeInterval(deadline)
        while procs.contains(where: { $0?.isRunning == true }) {
            let sig = Signals.pending
            if sig != 0 && forwarded == 0 {
                forwarded = sig
                for p in procs where p?.isRunning == true { kill(p!.processIdentifier, sig) }
            }
            if Date() >= end && !timedOut {
                timedOut = true
                for (i, p) in procs.enumerated() where p?.isRunning == true {
                    overdue.insert(i)
                    kill(p!.processIdentifier, SIGTERM)
                }
                let grace = Date().addingTimeInterval(3)
                while procs.contains(where: { $0?.isRunning == true }) && Date() < grace { usleep(20_000) }
                for p in procs where p?.isRunning == true { kill(p!.processIdentifier, SIGKILL) }
            }
            usleep(20_000)
        }
        let wall = Date().timeIntervalSince(t0)
        return procs.enumerated().map { i, p in
            guard let p else { return Outcome(ending: .exited(127), result: nil, interrupted: forwarded, wallS: 0) }
            p.waitUntilExit()
            let ending: Ending
            if overdue.contains(i) {
                ending = .timedOut
            } else if p.terminationReason == .uncaughtSignal {
                ending = .signaled(p.terminationStatus)
            } else {
                ending = .exited(p.terminationStatus)
            }
            var result: StressResult?
            if let data = FileManager.default.contents(atPath: jsons[i]), !data.isEmpty {
                result = try? ResultFile.decoder().decode(StressResult.self, from: data)
            }
            return Outcome(ending: ending, result: result, interrupted: forwarded, wallS: wall)
        }
    }
}
