import Foundation
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// The Slurm executor: one `sbatch` job array over the cells that still lack
/// a result. Array task T runs cells T*G ..< (T+1)*G (G = cells per task)
/// through `stress campaign cell`, so resubmitting after a partial run
/// queues only the tasks with something left to do.
public enum SlurmExecutor {
    public struct Options: Sendable {
        public var partition: String?
        /// sbatch --time; nil: every cell of a task at its timeout, plus a minute.
        public var timeLimit: String?
        /// nil: the plan's largest thread count.
        public var cpusPerTask: Int?
        /// At most this many tasks at once (the array's `%` suffix).
        public var throttle: Int?
        public var cellsPerTask = 1
        /// More `#SBATCH` options (account, QOS, constraints...).
        public var extraOptions: [String] = []
        /// The `stress` executable the tasks run: it must be at this path on
        /// the compute nodes too (a shared file system).
        public var stressBinary: String

        public init(stressBinary: String) { self.stressBinary = stressBinary }
    }

    public struct Submission: Sendable {
        public var scriptPath: String
        public var array: String
        public var tasks: Int
        public var cells: Int
        /// Nil until submitted.
        public var jobId: String?
    }

    /// Checks what can be checked before the results folder is touched.
    public static func check(_ o: Options, results: String) throws {
        guard o.cellsPerTask >= 1 else { throw CampaignError("--cells-per-task must be at least 1") }
        if let t = o.throttle, t < 1 { throw CampaignError("--throttle must be at least 1") }
        if let c = o.cpusPerTask, c < 1 { throw CampaignError("--cpus-per-task must be at least 1") }
        let absolute = URL(fileURLWithPath: results).standardizedFileURL.path
        for (what, value) in [("results folder", absolute), ("stress binary", o.stressBinary)] {
            if let bad = value.first(where: { $0.isWhitespace || "'\"%\\$`".contains($0) }) {
                throw CampaignError("\(what) path '\(value)' has '\(bad)', which an sbatch script line cannot carry; use a plainer path")
            }
        }
        if let bad = o.extraOptions.first(where: { $0.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 32 || $0 == 127 } ?? false })
                                                    || !$0.hasPrefix("-") }) {
            throw CampaignError("--sbatch-option '\(bad.debugDescription)' must be one sbatch option (starting with '-', on one line)")
        }
        if let p = o.partition, p.isEmpty || !p.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.,-".contains($0)) }) {
            throw CampaignError("--partition '\(p.debugDescription)' must be a partition name or a comma-separated list (letters, digits, '_', '.', '-')")
        }
        if let t = o.timeLimit, !validTimeLimit(t) {
            throw CampaignError("--time '\(t.debugDescription)' must be an sbatch time above zero: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S")
        }
        // The mode bits, not access(2): root may "execute" any file.
        var st = stat()
        guard stat(o.stressBinary, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_mode & 0o111 != 0 else {
            throw CampaignError("stress binary '\(o.stressBinary)' is not an executable file")
        }
    }

    /// sbatch's time formats, all fields decimal, and not zero.
    static func validTimeLimit(_ t: String) -> Bool {
        let dayParts = t.split(separator: "-", omittingEmptySubsequences: false)
        guard dayParts.count <= 2 else { return false }
        let clock = dayParts.last!.split(separator: ":", omittingEmptySubsequences: false)
        let fields = (dayParts.count == 2 ? [dayParts[0]] : []) + clock
        guard clock.count <= 3, !fields.contains(where: { $0.isEmpty || $0.count > 6 || !$0.allSatisfy(\.isASCII) || !$0.allSatisfy(\.isNumber) }) else {
            return false
        }
        if dayParts.count == 2 && clock.count > 3 { return false }
        return fields.contains { Int($0)! > 0 }
    }

    /// Writes the job script for the cells still to run; nil when none are.
    public static func prepare(_ folder: ResultsFolder, _ o: Options) throws -> Submission? {
        try check(o, results: folder.path)
        let pending = (0..<folder.plan.cellCount).filter { !folder.isFinished($0) }
        guard !pending.isEmpty else { return nil }
        var tasks: [Int] = []
        for i in pending where tasks.last != i / o.cellsPerTask { tasks.append(i / o.cellsPerTask) }
        let spec = arraySpec(tasks) + (o.throttle.map { "%\($0)" } ?? "")
        let dir = folder.path + "/slurm"
        try makeFolder(dir)
        let script = self.script(folder, o, array: spec)
        var n = 1
        while true {
            let path = "\(dir)/submit-\(n).sbatch"
            if try AtomicFile.create(Data(script.utf8), at: path) {
                chmod(path, 0o755)
                return Submission(scriptPath: path, array: spec, tasks: tasks.count, cells: pending.count)
            }
            n += 1
        }
    }

    /// "0-3,7,9-12" for [0,1,2,3,7,9,10,11,12] (sorted ids).
    static func arraySpec(_ ids: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        while i < ids.count {
            var j = i
            while j + 1 < ids.count && ids[j + 1] == ids[j] + 1 { j += 1 }
            parts.append(i == j ? "\(ids[i])" : "\(ids[i])-\(ids[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// "D-HH:MM:SS", as sbatch --time takes it.
    static func timeLimit(seconds: Double) -> String {
        let s = Int(seconds.rounded(.up))
        return String(format: "%d-%02d:%02d:%02d", s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60)
    }

    static func script(_ folder: ResultsFolder, _ o: Options, array: String) -> String {
        let plan = folder.plan
        let name = String(plan.name.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "-" })
        let longest = plan.timeout(forDuration: plan.axis(.duration)?.values.compactMap { Double($0) }.max())
        let cpus = o.cpusPerTask ?? plan.axis(.threads)?.values.compactMap { Int($0) }.max() ?? 1
        var s = """
        #!/bin/bash
        # Campaign '\(name)' (plan \(shortPlanId(plan.id))), written by `stress campaign slurm`.
        # Array task T runs cells T*\(o.cellsPerTask) .. T*\(o.cellsPerTask)+\(o.cellsPerTask - 1), one `stress run` child at a
        # time, and skips cells that already have a result; each cell's record,
        # result and output go to cells/NNNNN/ in the results folder.
        #SBATCH --job-name=crmap-\(name)
        #SBATCH --array=\(array)
        #SBATCH --ntasks=1
        #SBATCH --cpus-per-task=\(cpus)
        #SBATCH --time=\(o.timeLimit ?? timeLimit(seconds: longest * Double(o.cellsPerTask) + 60))
        #SBATCH --output=\(folder.path)/slurm/task-%A_%a.out

        """
        if let p = o.partition { s += "#SBATCH --partition=\(p)\n" }
        for x in o.extraOptions { s += "#SBATCH \(x)\n" }
        s += "exec \(shellQuoted(o.stressBinary)) campaign cell \(shellQuoted(folder.path + "/" + ResultsFolder.planFile))"
        s += " --results \(shellQuoted(folder.path)) --index \"$SLURM_ARRAY_TASK_ID\" --cells-per-task \(o.cellsPerTask)\n"
        return s
    }

    /// Submits a prepared script with `sbatch --parsable` and records the
    /// job next to it (submit-N.json).
    public static func submit(_ sub: Submission, sbatch: String) throws -> Submission {
        let r = try ChildProcess.capture(sbatch, ["--parsable", sub.scriptPath])
        guard r.status == 0 else {
            unlink(sub.scriptPath)  // never submitted: leave no script that looks as if it ran
            let first = r.stderr.split(whereSeparator: \.isNewline).first.map(String.init) ?? "no message"
            let hint = first.lowercased().contains("array") ? " (array \(sub.array); a cluster's MaxArraySize may be lower: try --cells-per-task)" : ""
            throw CampaignError("sbatch failed (exit \(r.status)): \(first)\(hint)")
        }
        guard let id = r.stdout.split(whereSeparator: \.isNewline).first?.split(separator: ";").first.map(String.init),
              !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw CampaignError("sbatch printed no job id (got '\(r.stdout.prefix(80))')")
        }
        var done = sub
        done.jobId = id
        struct Record: Encodable { var jobId: String; var array: String; var tasks: Int; var cells: Int; var script: String; var submitted: String }
        let rec = Record(jobId: id, array: sub.array, tasks: sub.tasks, cells: sub.cells, script: sub.scriptPath, submitted: timestamp())
        let path = sub.scriptPath.replacingOccurrences(of: ".sbatch", with: ".json")
        try AtomicFile.write(CellRecord.encoder.encode(rec), to: path)
        return done
    }

    /// Waits until the job has left the queue, calling `tick` with the
    /// number of its array tasks still queued or running after every poll.
    public static func wait(job: String, squeue: String, interval: Double = 2, tick: (Int) -> Void) throws {
        var failures = 0
        while true {
            if let s = CampaignInterrupt.signal {
                throw CampaignError("stopped waiting for job \(job) (\(signalName(s) ?? "signal \(s)")); it keeps running: `scancel \(job)` to stop it")
            }
            // -r: one line per array task, pending ones included.
            let r = try ChildProcess.capture(squeue, ["-h", "-r", "-j", job, "-o", "%i"])
            if r.status == 0 {
                failures = 0
                let left = r.stdout.split(whereSeparator: \.isNewline).count
                if left == 0 { return }
                tick(left)
            } else if r.stderr.contains("Invalid job id") {
                return  // already purged from the controller's memory
            } else {
                failures += 1
                if failures >= 30 {
                    throw CampaignError("squeue keeps failing while waiting for job \(job): \(r.stderr.split(whereSeparator: \.isNewline).first ?? "")")
                }
            }
            usleep(UInt32(interval * 1_000_000))
        }
    }

    /// The executable `name` on PATH, if any.
    public static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
