import Foundation
import StressSupport

/// Where a cell stands, as its record (cell.json) says.
public enum CellState: String, Codable, Sendable, CaseIterable {
    /// Exit 0 with a SUCCESS result.
    case passed
    /// Exit 1 or 3 with a FAILURE or STALL result: the run found a bug.
    case failed
    /// Killed by a signal (or exited 128+signal) without the runner asking.
    case crashed
    /// Ran past the cell timeout and was killed by the runner.
    case timeout
    /// Exit 2, or an exit that left no readable result: the cell could not
    /// run as planned (an option this build lacks, a full disk...).
    case error
    /// Stopped part way (the runner was interrupted), or its runner died
    /// and left the record saying `running`.
    case unfinished
    /// A runner holds the cell now.
    case running

    /// Resuming keeps these; every other state is run again.
    public var isFinished: Bool { self == .passed || self == .failed }
}

/// A cell runner's account of one attempt at a cell, written next to the
/// cell's result.json. It exists so that a cell that died, hung or was never
/// finished is recorded as such: result.json alone cannot say so, because a
/// killed child writes none.
public struct CellRecord: Codable, Sendable, Equatable {
    public var index: Int
    public var key: String
    public var state: CellState
    /// The result's verdict, when it wrote one.
    public var verdict: String?
    public var exitStatus: Int32?
    public var signal: Int32?
    public var signalName: String?
    public var wallS: Double?
    /// The child's argv, binary included.
    public var command: [String]
    public var reproduce: String
    public var attempt: Int
    public var started: String
    public var finished: String?
    public var host: String
    /// The `stress run` child's process id.
    public var pid: Int32?
    /// `JOBID_TASK` when run as a Slurm array task.
    public var slurmJob: String?
    /// Why the state is what it is, when the state alone does not say.
    public var note: String?

    /// "crashed (signal 11 SIGSEGV)", "failed (FAILURE)", "timeout after 62.0 s".
    public var summary: String {
        switch state {
        case .crashed, .timeout, .unfinished:
            var s = state.rawValue
            if let signal { s += " (signal \(signal)\(signalName.map { " \($0)" } ?? ""))" }
            if state == .timeout, let wallS { s += " after \(String(format: "%.1f", wallS)) s" }
            return s
        case .failed: return "failed (\(verdict ?? "exit \(exitStatus.map(String.init) ?? "?")"))"
        case .error: return "error (exit \(exitStatus.map(String.init) ?? "none"))"
        case .passed, .running: return state.rawValue
        }
    }

    static var encoder: JSONEncoder { SnakeCaseJSON.encoder() }
    static var decoder: JSONDecoder { SnakeCaseJSON.decoder() }
}

/// Now, as ISO 8601 UTC, for records.
func timestamp(_ date: Date = Date()) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: date)
}
