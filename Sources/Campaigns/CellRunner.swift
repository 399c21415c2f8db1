import Foundation
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// Runs cells, each as its own `stress run` child, up to `jobs` at a time,
/// and records how each one ended. The local executor is this with
/// `--jobs N`; a Slurm array task is this with one job over its cells.
///
/// One thread polls the children (every 20 ms) instead of blocking in
/// wait: it must also notice timeouts and stop signals, and a campaign is
/// not a hot path.
public final class CellRunner {
    public struct Options: Sendable {
        /// Children at once.
        public var jobs = 1
        /// The `stress` executable the cells run.
        public var stressBinary: String
        /// Run cells that already have a result again.
        public var rerunFinished = false
        /// Seconds between asking a child to stop (SIGTERM) and killing it.
        public var killGrace = 5.0

        public init(stressBinary: String, jobs: Int = 1) {
            self.stressBinary = stressBinary
            self.jobs = jobs
        }
    }

    public enum Event {
        case skipped(CampaignCell, reason: String)
        case started(CampaignCell, CellRecord)
        case finished(CampaignCell, CellRecord)
    }

    public struct Summary: Sendable {
        public var ran: [CellRecord] = []
        public var skipped = 0
        /// Cells another runner held.
        public var busy = 0
        /// The signal that stopped the run early.
        public var stoppedBy: Int32?
    }

    let folder: ResultsFolder
    let options: Options

    public init(folder: ResultsFolder, options: Options) {
        self.folder = folder
        self.options = options
    }

    private struct Running {
        var cell: CampaignCell
        var child: ChildProcess
        var lock: CellLock
        var record: CellRecord
        var startedAt: Double
        var killAt: Double?
        var timedOut = false
    }

    /// Runs the cells at `indices` (in order, skipping finished and busy
    /// ones) and returns what happened. Install CampaignInterrupt first for
    /// Ctrl-C and scancel to leave records behind.
    public func run(_ indices: [Int], progress: (Event) -> Void = { _ in }) throws -> Summary {
        var summary = Summary()
        var queue = indices[...]
        var running: [Running] = []
        do {
            while true {
                let now = monotonicSeconds()
                if summary.stoppedBy == nil, let sig = CampaignInterrupt.signal {
                    summary.stoppedBy = sig
                    for i in running.indices {
                        running[i].child.signal(sig)
                        running[i].killAt = now + options.killGrace
                    }
                }
                while summary.stoppedBy == nil && running.count < max(1, options.jobs), let index = queue.popFirst() {
                    let cell = folder.plan.cell(index)
                    guard let lock = try folder.lock(index) else {
                        summary.busy += 1
                        progress(.skipped(cell, reason: "another runner holds it"))
                        continue
                    }
                    if !options.rerunFinished && folder.isFinished(index) {
                        summary.skipped += 1
                        progress(.skipped(cell, reason: "has a result"))
                        continue
                    }
                    switch try start(cell, lock: lock) {
                    case .running(let r):
                        progress(.started(cell, r.record))
                        running.append(r)
                    case .couldNotStart(let record):
                        summary.ran.append(record)
                        progress(.finished(cell, record))
                    }
                }
                if running.isEmpty && (queue.isEmpty || summary.stoppedBy != nil) { break }

                var still: [Running] = []
                for var r in running {
                    if let exit = r.child.poll() {
                        let record = try finish(r, exit: exit, stoppedBy: summary.stoppedBy)
                        r.lock.release()
                        summary.ran.append(record)
                        progress(.finished(r.cell, record))
                        continue
                    }
                    if !r.timedOut && summary.stoppedBy == nil && now - r.startedAt > r.cell.timeout {
                        r.timedOut = true
                        r.child.signal(SIGTERM)
                        r.killAt = now + options.killGrace
                    } else if let killAt = r.killAt, now > killAt {
                        r.child.signal(SIGKILL)
                        r.killAt = nil
                    }
                    still.append(r)
                }
                running = still
                if !running.isEmpty { usleep(20_000) }
            }
        } catch {
            // The campaign cannot go on (a record could not be written): take
            // the children down with it rather than leave them running unowned.
            for r in running {
                r.child.signal(SIGKILL)
                _ = r.child.wait()
            }
            throw error
        }
        return summary
    }

    private enum Start {
        case running(Running)
        case couldNotStart(CellRecord)
    }

    private func start(_ cell: CampaignCell, lock: CellLock) throws -> Start {
        let attempt = try folder.retire(cell.index)
        let args = ["run"] + cell.runArguments + ["--quiet", "--json", folder.resultPath(cell.index)]
        var record = CellRecord(index: cell.index, key: cell.key, state: .running, command: [options.stressBinary] + args,
                                reproduce: cell.reproduce, attempt: attempt, started: timestamp(), host: hostName(),
                                slurmJob: slurmJob())
        let startedAt = monotonicSeconds()
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(executable: options.stressBinary, arguments: args,
                                         output: .file(folder.logPath(cell.index)))
        } catch let e as CampaignError {
            record.state = .error
            record.note = e.message
            record.finished = timestamp()
            try folder.write(record)
            lock.release()
            return .couldNotStart(record)
        }
        record.pid = child.pid
        do { try folder.write(record) } catch {
            child.signal(SIGKILL)
            _ = child.wait()
            throw error
        }
        return .running(Running(cell: cell, child: child, lock: lock, record: record, startedAt: startedAt))
    }

    private func finish(_ r: Running, exit: ChildExit, stoppedBy: Int32?) throws -> CellRecord {
        var record = r.record
        record.wallS = monotonicSeconds() - r.startedAt
        record.finished = timestamp()
        let result = folder.result(r.cell.index)
        let o = Self.outcome(exit: exit, result: result, timedOut: r.timedOut, stoppedBy: stoppedBy,
                             firstErrorLine: { firstErrorLine(self.folder.logPath(r.cell.index)) })
        record.state = o.state
        record.note = o.note
        record.verdict = result?.verdict
        switch exit {
        case .exited(let c): record.exitStatus = c
        case .signaled(let s): record.signal = s
        }
        if record.signal == nil, case .exited(let c) = exit, c > 128, c < 128 + 65 { record.signal = c - 128 }
        record.signalName = record.signal.flatMap(signalName)
        try folder.write(record)
        return record
    }

    /// What a child's end means for its cell. A run counts as passed only
    /// with exit 0 and a SUCCESS result; as failed only with the result of a
    /// finished run that found a problem. Anything else is not a pass.
    static func outcome(exit: ChildExit, result: CellResult?, timedOut: Bool, stoppedBy: Int32?,
                        firstErrorLine: () -> String?) -> (state: CellState, note: String?) {
        let verdict = result?.verdict
        let finishedVerdict = verdict == "SUCCESS" || verdict == "FAILURE" || verdict == "STALL"
        if case .exited(let c) = exit, [0, 1, 3].contains(c), finishedVerdict {
            let expected: Int32 = verdict == "SUCCESS" ? 0 : verdict == "FAILURE" ? 1 : 3
            let note = c == expected ? nil : "exit status \(c) disagrees with verdict \(verdict!)"
            return (c == 0 && verdict == "SUCCESS" ? .passed : .failed, note)
        }
        if timedOut { return (.timeout, "killed after running past the cell timeout") }
        if let s = stoppedBy { return (.unfinished, "stopped: the runner got \(signalName(s) ?? "signal \(s)")") }
        switch exit {
        case .signaled(let s):
            return (.crashed, "killed by \(signalName(s) ?? "signal \(s)")")
        case .exited(let c) where c > 128 && c < 128 + 65:
            return (.crashed, "exited \(c): stopped by \(signalName(c - 128) ?? "signal \(c - 128)")")
        case .exited(2):
            return (.error, "stress run refused the cell's options: \(firstErrorLine() ?? "see output.log")")
        case .exited(let c) where [0, 1, 3].contains(c):
            if verdict == nil { return (.error, "exit \(c) without a readable result.json") }
            return (.error, "exit \(c) with verdict \(verdict!) (a progress snapshot, not a finished run)")
        case .exited(let c):
            return (.error, "unexpected exit status \(c)")
        }
    }
}

/// The first line of a child's log that reads like an error, else its first line.
func firstErrorLine(_ path: String) -> String? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    let lines = String(decoding: data.prefix(64 * 1024), as: UTF8.self).split(whereSeparator: \.isNewline)
    return (lines.first { $0.contains("error") } ?? lines.first).map(String.init)
}

func monotonicSeconds() -> Double { Double(monotonicNanos()) / 1e9 }

func hostName() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    guard gethostname(&buf, buf.count - 1) == 0 else { return "unknown" }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// "JOBID_TASK" for a Slurm array task, "JOBID" for a plain job, else nil.
func slurmJob() -> String? {
    let env = ProcessInfo.processInfo.environment
    if let job = env["SLURM_ARRAY_JOB_ID"], let task = env["SLURM_ARRAY_TASK_ID"] { return "\(job)_\(task)" }
    return env["SLURM_JOB_ID"]
}
