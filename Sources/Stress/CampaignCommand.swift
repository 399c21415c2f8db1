import ArgumentParser
import Campaigns
import Foundation
import RunEngine
import StressSupport

/// `stress campaign`: a matrix of `stress run` cells from a plan file, run
/// on this machine or as a Slurm job array, merged into one verdict.
struct CampaignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Run a plan's matrix of stress runs locally or on Slurm, and merge the results into one verdict.",
        discussion: """
        A plan (JSON, see examples/README.md) names axes and values; every combination is a cell, run as its own \
        `stress run` process with its record and result in the results folder. Running again resumes: cells with a \
        result are kept, crashed, unfinished and corrupt ones run again. A correct cell must pass; a cell with a planted \
        bug (--inject) must fail with one of that bug's violation classes. Exit status: 0 every cell met its \
        expectation, 1 any cell did not (failed, crashed, did not finish, or its files are corrupt), 2 bad usage (bad \
        plan, unusable results folder, sbatch missing or failing).
        """,
        subcommands: [Plan.self, Run.self, Slurm.self, Cell.self, Report.self])
}

/// Runs `body`, turning a campaign problem into a one-line usage error.
private func usage<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as CampaignError { throw ValidationError(e.message) }
}

/// The plan file, as every `campaign` subcommand but `report` takes it.
struct PlanArgument: ParsableArguments {
    @Argument(help: "The plan file (JSON).")
    var file: String
}

/// --results.
struct ResultsOption: ParsableArguments {
    @Option(help: "Results folder (created if missing; must be empty or hold this plan's campaign).")
    var results: String

    func validate() throws {
        // An empty path would be the current folder.
        if results.isEmpty { throw ValidationError("--results needs a folder, not an empty path") }
    }
}

/// --cells-per-task.
struct CellsPerTaskOption: ParsableArguments {
    static let range = 1...CampaignPlan.maxCells
    @Option(name: .customLong("cells-per-task"), parsing: .unconditional,
            help: "Cells each array task runs, one after another (for plans larger than the cluster's MaxArraySize), \(Ranges.r(range)) (default 1).")
    var text: String?

    func value() throws -> Int { try whole(text, "--cells-per-task", Self.range) ?? 1 }
}

/// Parses a cell's command line as `stress run` will parse it in the cell's
/// child, with the run's own checks (ranges, a scheme paired with another
/// scheme's injection...): a cell that would be refused is refused when the
/// plan is read, not N times later on a cluster. A bug that only a
/// controlled run catches is refused too: the cell could never meet its
/// expectation.
func checkCellCommand(_ cell: CampaignCell) throws {
    let args = cell.runArguments
    let settings: RunSettings
    do {
        try Parse.rejectRepeated(args)
        let run = try Run.parse(args)
        settings = try run.options.settings()
    } catch {
        let message = Run.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        throw CampaignError("stress run \(args.joined(separator: " ")): \(message)")
    }
    if settings.inject.needsControlledRun {
        throw CampaignError("--inject \(settings.inject.rawValue) is caught only by a controlled run (stress explore), never by a stress run cell")
    }
}

/// Reads a plan and checks every cell's command line.
private func loadPlan(_ path: String) throws -> CampaignPlan {
    try usage {
        let plan = try CampaignPlan.load(path: path)
        try plan.checkCells(checkCellCommand)
        return plan
    }
}

/// A whole-number option, parsed by the same rules as `stress run`'s: the
/// range is in the message, and "-1" is a value, not a missing one.
private func whole(_ text: String?, _ option: String, _ range: ClosedRange<Int>) throws -> Int? {
    try text.map { try Parse.whole($0, option, range) }
}

/// This executable, for cells and job scripts to run.
private func selfBinary() -> String { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path }

private func say(_ s: String) { print(s); fflush(nil) }

/// Writes the report, prints its summary and returns the exit status.
private func report(_ folder: ResultsFolder, quiet: Bool = false) throws -> Int32 {
    let r = CampaignReport(folder: folder)
    let files = try usage { try r.write(to: folder) }
    if !quiet { r.summaryLines.forEach(say) }
    say("report: \(files.joined(separator: " "))")
    return r.passed ? ExitStatus.success : ExitStatus.violation
}

/// One line when a cell starts and one when it ends (its verdict, its wall
/// time, whether it met its expectation), so a campaign whose cells take
/// seconds to set up never sits silent.
private func progressLine(_ folder: ResultsFolder, done: Int, total: Int) -> (CellRunner.Event) -> Void {
    var finished = done
    var started = done
    let width = String(total).count
    func count(_ n: Int) -> String { String(repeating: " ", count: max(0, width - String(n).count)) + "\(n)/\(total)" }
    return { e in
        switch e {
        case .skipped(let c, let why): if why != "has a result" { say("cell \(c.index) [\(c.key)]: skipped, \(why)") }
        case .started(let c, _):
            started += 1
            say("[\(count(started)) started] cell \(c.index) [\(c.key)]")
        case .finished(let c, let r):
            finished += 1
            let wall = r.wallS.map { String(format: " in %.1f s", $0) } ?? ""
            let expectation = Expectation(c)
            let miss = expectation.miss(state: r.state.rawValue, result: folder.files(c.index).result)
            let judged = miss.map { "; expected \(expectation.text): \($0)" } ?? (expectation.injection == .none ? "" : ", as expected")
            say("[\(count(finished)) done] cell \(c.index) [\(c.key)]: \(r.summary)\(wall)\(judged)\(r.state == .passed ? "" : r.note.map { " (\($0))" } ?? "")")
        }
    }
}

/// --cpus-per-task: a Slurm node's CPUs, with room to spare.
private let cpuRange = 1...65_536

extension CampaignCommand {
    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a plan's cells, their count and the machine time they ask for.")

        @OptionGroup var planFile: PlanArgument
        @Option(name: .customLong("cpus-per-task"), parsing: .unconditional,
                help: "Count machine time as this many CPUs per cell (what Slurm allocates) instead of each cell's worker threads, \(Ranges.r(cpuRange)).")
        var cpusText: String?
        @Flag(help: "Only the summary, not every cell.")
        var summary = false

        func run() throws {
            let cpusPerTask = try whole(cpusText, "--cpus-per-task", cpuRange)
            let plan = try loadPlan(planFile.file)
            say("campaign '\(plan.name)' (plan \(plan.id.prefix(12))): \(plan.cellCount) cells")
            say("axes: " + plan.axes.map { "\($0.name.rawValue) \($0.values.joined(separator: ","))" }.joined(separator: " × "))
            if !plan.runArgs.isEmpty { say("every cell also gets: \(plan.runArgs.joined(separator: " "))") }
            if !summary {
                let width = String(plan.cellCount - 1).count
                for i in 0..<plan.cellCount {
                    let c = plan.cell(i)
                    say(String(repeating: " ", count: width - String(i).count + 2) + "\(i)  \(c.reproduce)")
                }
            }
            let longest = plan.timeout(forDuration: plan.axis(.duration)?.values.compactMap { Double($0) }.max())
            if let t = plan.machineTimeAsked(cpusPerCell: cpusPerTask) {
                let measure = cpusPerTask.map { "duration × \($0) CPUs per cell" } ?? "duration × worker threads"
                say(String(format: "%d cells; machine time asked: %.0f cell-seconds (%.2f h), %.0f %@ (%.2f h) [sum of %@]",
                           plan.cellCount, t.cellSeconds, t.cellSeconds / 3600, t.cpuSeconds,
                           cpusPerTask == nil ? "thread-seconds" : "CPU-seconds", t.cpuSeconds / 3600, measure))
            } else {
                say("\(plan.cellCount) cells; machine time asked: unknown (cells run a fixed number of operations, not a duration)")
            }
            say(String(format: "each cell is killed after %.0f s at most (cell timeout)", longest))
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a plan's cells on this machine (the local executor), then write the report.",
            discussion: "Prints a line as each cell starts and ends. Exit status: 0 every cell met its expectation, 1 otherwise, 2 bad usage, 128+N when stopped by signal N (cells then running are recorded as unfinished; run again to resume).")

        @OptionGroup var planFile: PlanArgument
        @OptionGroup var resultsFolder: ResultsOption
        static let jobRange = 1...1024
        @Option(name: .customLong("jobs"), parsing: .unconditional,
                help: "Cells at once, each its own `stress run` process, \(Ranges.r(jobRange)) (default 1).")
        var jobsText: String?
        @Flag(name: .customLong("rerun-finished"), help: "Run cells that already have a result again (their files are kept as attempt-N).")
        var rerunFinished = false

        func run() throws {
            let jobs = try whole(jobsText, "--jobs", Self.jobRange) ?? 1
            let plan = try loadPlan(planFile.file)
            let folder = try usage { try ResultsFolder.open(resultsFolder.results, for: plan) }
            let done = rerunFinished ? 0 : (0..<plan.cellCount).filter { folder.isFinished($0) }.count
            let cpus = ProcessInfo.processInfo.activeProcessorCount
            let maxThreads = plan.axis(.threads)?.values.compactMap { Int($0) }.max() ?? 1
            say("campaign '\(plan.name)' (plan \(plan.id.prefix(12))): \(plan.cellCount) cells, \(done) already have a result; \(jobs) at a time")
            if jobs * maxThreads > cpus {
                say("note: \(jobs) job(s) × up to \(maxThreads) threads on \(cpus) CPUs: cells share cores, so their throughput is not comparable")
            }
            CampaignInterrupt.install()
            var o = CellRunner.Options(stressBinary: selfBinary(), jobs: jobs)
            o.rerunFinished = rerunFinished
            let summary = try usage {
                try CellRunner(folder: folder, options: o).run(Array(0..<plan.cellCount), progress: progressLine(folder, done: done, total: plan.cellCount))
            }
            let status = try report(folder)
            if let s = summary.stoppedBy {
                say("stopped by signal \(s): run the same command again to resume")
                throw ExitRequest(status: 128 + s)
            }
            throw ExitRequest(status: status)
        }
    }

    struct Slurm: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a plan's unfinished cells as a Slurm job array (one task per cell or group of cells).",
            discussion: "Writes RESULTS/slurm/submit-N.sbatch and submits it with sbatch (not with --dry-run). Each array task runs `stress campaign cell`. The results folder and this stress binary must be on a file system the compute nodes share. With --wait, waits for the job and writes the report (exit 0 all passed, 1 otherwise).")

        @OptionGroup var planFile: PlanArgument
        @OptionGroup var resultsFolder: ResultsOption
        // Unconditional: "-1" is a bad value to refuse, not a missing one.
        @Option(parsing: .unconditional, help: "sbatch --partition.")
        var partition: String?
        @Option(parsing: .unconditional, help: "sbatch --time per array task (default: every cell of the task at its timeout, plus a minute).")
        var time: String?
        @Option(name: .customLong("cpus-per-task"), parsing: .unconditional,
                help: "sbatch --cpus-per-task, \(Ranges.r(cpuRange)) (default: the plan's largest thread count).")
        var cpusText: String?
        @Option(name: .customLong("throttle"), parsing: .unconditional,
                help: "At most this many array tasks at once (the array's %N throttle), \(Ranges.r(1...CampaignPlan.maxCells)).")
        var throttleText: String?
        @OptionGroup var tasks: CellsPerTaskOption
        @Option(name: .customLong("sbatch-option"), parsing: .unconditionalSingleValue, help: "Another #SBATCH line, e.g. --sbatch-option=--account=rmap (repeatable).")
        var sbatchOptions: [String] = []
        @Option(name: .customLong("stress-binary"), help: "The stress executable tasks run (default: this one).")
        var stressBinary: String?
        @Flag(name: .customLong("dry-run"), help: "Write the job script, do not submit it.")
        var dryRun = false
        @Flag(help: "Wait for the job to finish, then write the report.")
        var wait = false

        func run() throws {
            if dryRun && wait { throw ValidationError("--dry-run and --wait do not go together") }
            let cpusPerTask = try whole(cpusText, "--cpus-per-task", cpuRange)
            let throttle = try whole(throttleText, "--throttle", 1...CampaignPlan.maxCells)
            let cellsPerTask = try tasks.value()
            let plan = try loadPlan(planFile.file)
            // Find the batch commands before touching the results folder.
            var sbatch: String?, squeue: String?
            if !dryRun {
                sbatch = SlurmExecutor.findExecutable("sbatch")
                if sbatch == nil { throw ValidationError("sbatch not found on PATH: install Slurm's client commands, or use --dry-run to only write the job script") }
                if wait {
                    squeue = SlurmExecutor.findExecutable("squeue")
                    if squeue == nil { throw ValidationError("squeue not found on PATH (needed by --wait)") }
                }
            }
            var o = SlurmExecutor.Options(stressBinary: stressBinary ?? selfBinary())
            o.partition = partition
            o.timeLimit = time
            o.cpusPerTask = cpusPerTask
            o.throttle = throttle
            o.cellsPerTask = cellsPerTask
            o.extraOptions = sbatchOptions
            try usage { try SlurmExecutor.check(o, results: resultsFolder.results) }
            let folder = try usage { try ResultsFolder.open(resultsFolder.results, for: plan) }
            guard let prepared = try usage({ try SlurmExecutor.prepare(folder, o) }) else {
                say("all \(plan.cellCount) cells have a result; nothing to submit")
                if wait { throw ExitRequest(status: try report(folder)) }
                return
            }
            if dryRun {
                say("wrote \(prepared.scriptPath): array \(prepared.array), \(prepared.tasks) tasks, \(prepared.cells) cells")
                say("submit with: sbatch \(prepared.scriptPath)")
                return
            }
            let job = try usage { try SlurmExecutor.submit(prepared, sbatch: sbatch!) }
            say("submitted job \(job.jobId!): array \(prepared.array), \(prepared.tasks) tasks, \(prepared.cells) cells (script \(prepared.scriptPath))")
            guard wait else { return }
            CampaignInterrupt.install()
            var last = -1
            try usage {
                try SlurmExecutor.wait(job: job.jobId!, squeue: squeue!) { left in
                    if left != last { say("job \(job.jobId!): \(left) of \(prepared.tasks) array tasks queued or running"); last = left }
                }
            }
            throw ExitRequest(status: try report(folder))
        }
    }

    struct Cell: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one cell (or one array task's group of cells) of a plan: what each Slurm array task runs.",
            discussion: "Skips cells that already have a result. Exit status: 0 every cell run met its expectation, 1 one did not, 2 bad usage, 128+N when stopped by signal N.")

        @OptionGroup var planFile: PlanArgument
        @Option(name: .customLong("index"), parsing: .unconditional,
                help: "Cell number, or with --cells-per-task G the task number T (cells T*G ..< T*G+G), 0...\(CampaignPlan.maxCells - 1).")
        var indexText: String
        @OptionGroup var resultsFolder: ResultsOption
        @OptionGroup var tasks: CellsPerTaskOption

        func run() throws {
            let cellsPerTask = try tasks.value()
            let index = try Parse.whole(indexText, "--index", 0...(CampaignPlan.maxCells - 1))
            let plan = try usage { try CampaignPlan.load(path: planFile.file) }
            let first = index.multipliedReportingOverflow(by: cellsPerTask)
            guard !first.overflow, first.partialValue < plan.cellCount else {
                throw ValidationError("--index \(index) is past the plan's \(plan.cellCount) cells\(cellsPerTask > 1 ? " (\(cellsPerTask) per task)" : "")")
            }
            let cells = Array(first.partialValue..<min(plan.cellCount, first.partialValue + cellsPerTask))
            try usage { try plan.checkCells(only: cells, checkCellCommand) }
            let folder = try usage { try ResultsFolder.open(resultsFolder.results, for: plan) }
            CampaignInterrupt.install()
            let summary = try usage {
                try CellRunner(folder: folder, options: .init(stressBinary: selfBinary())).run(cells) { e in
                    switch e {
                    case .skipped(let c, let why): say("cell \(c.index) [\(c.key)]: skipped, \(why)")
                    case .started(let c, let r): say("cell \(c.index) [\(c.key)]: attempt \(r.attempt) on \(r.host): \(r.command.joined(separator: " "))")
                    case .finished(let c, let r): say("cell \(c.index) [\(c.key)]: \(r.summary)\(r.note.map { ": \($0)" } ?? "")")
                    }
                }
            }
            if let s = summary.stoppedBy { throw ExitRequest(status: 128 + s) }
            let met = summary.ran.allSatisfy { r in
                Expectation(plan.cell(r.index)).miss(state: r.state.rawValue, result: folder.files(r.index).result) == nil
            }
            throw ExitRequest(status: met ? ExitStatus.success : ExitStatus.violation)
        }
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge a results folder into one verdict: report.html, report.json and report.csv.",
            discussion: "Cells whose files contradict each other or the plan are reported as corrupt, never as passed. Exit status: 0 every cell met its expectation, 1 any cell did not (or is corrupt), 2 bad usage (not a results folder, a damaged campaign.json or plan.json).")

        @Argument(help: "The results folder.")
        var folder: String
        @Flag(help: "Print only where the report went.")
        var quiet = false

        func run() throws {
            let f = try usage { try ResultsFolder.existing(folder) }
            throw ExitRequest(status: try report(f, quiet: quiet))
        }
    }
}
