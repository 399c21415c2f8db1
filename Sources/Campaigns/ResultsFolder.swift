import Foundation
import RunEngine
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

/// The stamp a results folder carries (campaign.json): which plan its cells
/// belong to. Written once, never replaced.
public struct CampaignStamp: Codable, Sendable, Equatable {
    public var format = 1
    public var campaign: String
    public var planId: String
    public var cells: Int
    public var created: String
}

/// A campaign's results folder:
///
///     campaign.json            the stamp (plan identity)
///     plan.json                the plan file as first given, for tasks and reports
///     cells/00042/cell.json    the runner's record of the cell (CellRecord)
///     cells/00042/result.json  what `stress run --json` wrote
///     cells/00042/output.log   the child's stdout and stderr
///     cells/00042/attempt-1/   an earlier attempt's files, kept when re-run
///     slurm/                   job scripts, submissions, task logs
///     report.{html,json,csv}   `stress campaign report`
///
/// Every file is written atomically, and nothing a run wrote is deleted:
/// re-running a cell first moves its old files into attempt-N.
public final class ResultsFolder: Sendable {
    public let path: String
    public let plan: CampaignPlan
    public let stamp: CampaignStamp

    static let stampFile = "campaign.json"
    static let planFile = "plan.json"

    private init(path: String, plan: CampaignPlan, stamp: CampaignStamp) {
        self.path = path; self.plan = plan; self.stamp = stamp
    }

    /// Opens the folder for `plan`, creating and stamping it when it is new
    /// or empty. Refuses (before writing anything) a folder that holds
    /// another campaign, or files but no stamp.
    public static func open(_ path: String, for plan: CampaignPlan) throws -> ResultsFolder {
        let fm = FileManager.default
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: absolute, isDirectory: &isDir) {
            guard isDir.boolValue else { throw CampaignError("results folder '\(path)' is a file, not a folder") }
        } else {
            do { try makeFolder(absolute) } catch let e as CampaignError {
                throw CampaignError("cannot create results folder '\(path)': \(e.message)")
            }
        }
        try probeWritable(absolute, shown: path)
        let stampPath = absolute + "/" + stampFile
        if let existing = try readStamp(stampPath, shown: path) {
            try check(existing, against: plan, folder: path)
            // Restores a deleted plan copy; never replaces one.
            _ = try AtomicFile.create(plan.source, at: absolute + "/" + planFile)
            return ResultsFolder(path: absolute, plan: plan, stamp: existing)
        }
        // Only a stamp and the plan copy (from a runner stamping the same
        // folder at this moment) may be there already.
        let entries = (try? fm.contentsOfDirectory(atPath: absolute)) ?? []
        let foreign = entries.filter { $0 != stampFile && $0 != planFile && !$0.hasPrefix(AtomicFile.temporaryPrefix) }
        if !foreign.isEmpty {
            throw CampaignError("results folder '\(path)' holds files but no campaign stamp (\(stampFile)); use an empty or new folder")
        }
        let stamp = CampaignStamp(campaign: plan.name, planId: plan.id, cells: plan.cellCount, created: timestamp())
        let data = try CellRecord.encoder.encode(stamp)
        if !(try AtomicFile.create(data, at: stampPath)) {
            // Another runner stamped it first: fine if it is the same plan.
            guard let theirs = try readStamp(stampPath, shown: path) else {
                throw CampaignError("results folder '\(path)': unreadable \(stampFile)")
            }
            try check(theirs, against: plan, folder: path)
        }
        _ = try AtomicFile.create(plan.source, at: absolute + "/" + planFile)
        return ResultsFolder(path: absolute, plan: plan, stamp: stamp)
    }

    /// Opens an existing folder from its own stamp and plan copy (for
    /// reports, which get only the folder).
    public static func existing(_ path: String) throws -> ResultsFolder {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDir) else {
            throw CampaignError("results folder '\(path)' does not exist")
        }
        guard isDir.boolValue else {
            throw CampaignError("'\(path)' is a file; give the results folder (the --results of campaign run or slurm)")
        }
        guard let stamp = try readStamp(absolute + "/" + stampFile, shown: path) else {
            throw CampaignError("'\(path)' holds no campaign (no \(stampFile))")
        }
        // A plan without a "name" took its file's name when the folder was
        // stamped; the copy is called plan.json, so it takes the stamp's.
        guard let planData = BoundedRead.data(absolute + "/" + planFile, limit: BoundedRead.planLimit) else {
            throw CampaignError("results folder '\(path)' has no readable \(planFile)")
        }
        let plan: CampaignPlan
        do {
            plan = try CampaignPlan(json: planData, label: absolute + "/" + planFile, defaultName: stamp.campaign)
        } catch let e as CampaignError {
            throw CampaignError("results folder '\(path)': its \(planFile) is damaged: \(e.message)")
        }
        guard plan.id == stamp.planId else {
            throw CampaignError("results folder '\(path)': \(planFile) no longer matches the stamp in \(stampFile) (plan \(shortPlanId(plan.id)) vs \(shortPlanId(stamp.planId)))")
        }
        // plan.json is the first plan given, never replaced: its name and
        // size are the stamp's, or one of the two was edited.
        guard stamp.cells == plan.cellCount, stamp.campaign == plan.name else {
            throw CampaignError("results folder '\(path)': \(stampFile) says campaign '\(stamp.campaign)' of \(stamp.cells) cells, but \(planFile) is '\(plan.name)' of \(plan.cellCount) cells")
        }
        return ResultsFolder(path: absolute, plan: plan, stamp: stamp)
    }

    /// The stamp, read strictly: a damaged or edited stamp stops everything
    /// (a wrong one would let cells of another plan into this folder).
    private static func readStamp(_ stampPath: String, shown: String) throws -> CampaignStamp? {
        guard FileManager.default.fileExists(atPath: stampPath) else { return nil }
        func bad(_ why: String) -> CampaignError {
            CampaignError("results folder '\(shown)' has a damaged \(stampFile) (\(why)); not touching it")
        }
        guard let data = BoundedRead.data(stampPath, limit: BoundedRead.planLimit) else { throw bad("unreadable, or not a small regular file") }
        if data.isEmpty { throw bad("empty") }
        if let p = StrictJSON.problem(data) { throw bad(p) }
        let stamp: CampaignStamp
        do { stamp = try CellRecord.decoder.decode(CampaignStamp.self, from: data) } catch {
            throw bad(CellAudit.decodingSummary(error))
        }
        if let k = CellAudit.unknownKey(data, (try? CellRecord.encoder.encode(stamp)) ?? Data()) { throw bad(k) }
        guard stamp.format == 1 else { throw bad("format \(stamp.format), this build reads format 1") }
        guard stamp.cells >= 1, stamp.cells <= CampaignPlan.maxCells else { throw bad("\(stamp.cells) cells") }
        guard stamp.planId.count == 64, stamp.planId.allSatisfy(\.isHexDigit) else { throw bad("plan_id is not a SHA-256") }
        return stamp
    }

    private static func check(_ stamp: CampaignStamp, against plan: CampaignPlan, folder: String) throws {
        guard stamp.planId == plan.id else {
            throw CampaignError("results folder '\(folder)' holds campaign '\(stamp.campaign)' (plan \(shortPlanId(stamp.planId))), not '\(plan.name)' (plan \(shortPlanId(plan.id))); use another folder")
        }
        guard stamp.cells == plan.cellCount else {
            throw CampaignError("results folder '\(folder)': \(stampFile) says \(stamp.cells) cells, but plan \(shortPlanId(plan.id)) has \(plan.cellCount); the stamp was edited")
        }
    }

    /// Root can write almost anywhere, so ask the file system, not access(2).
    private static func probeWritable(_ dir: String, shown: String) throws {
        // Array tasks on many nodes probe at once, and pids repeat across nodes.
        let probe = "\(dir)/\(AtomicFile.temporaryPrefix)probe.\(hostName()).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = Glibc.open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw CampaignError("results folder '\(shown)' is not writable: \(String(cString: strerror(errno)))") }
        close(fd)
        unlink(probe)
    }

    // MARK: Cells

    /// Width of cell folder numbers, enough for the largest index.
    var digits: Int { max(5, String(max(plan.cellCount - 1, 0)).count) }

    public func cellFolder(_ index: Int) -> String {
        let n = String(index)
        return "\(path)/cells/\(String(repeating: "0", count: max(0, digits - n.count)))\(n)"
    }

    public func recordPath(_ index: Int) -> String { cellFolder(index) + "/cell.json" }
    public func resultPath(_ index: Int) -> String { cellFolder(index) + "/result.json" }
    public func logPath(_ index: Int) -> String { cellFolder(index) + "/output.log" }

    public func record(_ index: Int) -> CellRecord? {
        guard let data = BoundedRead.data(recordPath(index), limit: BoundedRead.planLimit) else { return nil }
        return try? CellRecord.decoder.decode(CellRecord.self, from: data)
    }

    public func result(_ index: Int) -> CellResult? { CellResult.load(path: resultPath(index)) }

    /// The cell's record and result, read strictly and checked against each
    /// other and the plan (CellAudit).
    public func files(_ index: Int) -> CellFiles { CellAudit.read(self, plan.cell(index)) }

    /// Finished with a result that holds up: resuming leaves the cell
    /// alone, and runs a corrupt one again (its files kept as attempt-N).
    public func isFinished(_ index: Int) -> Bool {
        let f = files(index)
        guard f.corrupt == nil, let r = f.record, r.state.isFinished else { return false }
        return f.result?.verdict != nil
    }

    public func write(_ record: CellRecord) throws {
        try AtomicFile.write(CellRecord.encoder.encode(record), to: recordPath(record.index))
    }

    /// Moves the files of an earlier attempt into attempt-N and returns the
    /// number of the attempt about to start.
    func retire(_ index: Int) throws -> Int {
        let fm = FileManager.default
        let dir = cellFolder(index)
        let files = ["cell.json", "result.json", "output.log"].filter { fm.fileExists(atPath: dir + "/" + $0) }
        var n = 1
        while fm.fileExists(atPath: "\(dir)/attempt-\(n)") { n += 1 }
        guard !files.isEmpty else { return n }
        let keep = "\(dir)/attempt-\(n)"
        try makeFolder(keep)
        for f in files where rename(dir + "/" + f, keep + "/" + f) != 0 {
            throw CampaignError("cannot keep cell \(index)'s earlier attempt in '\(keep)': \(String(cString: strerror(errno)))")
        }
        return n + 1
    }

    /// Records of earlier attempts, oldest first.
    public func earlierAttempts(_ index: Int) -> [CellRecord] {
        var out: [CellRecord] = []
        var n = 1
        while FileManager.default.fileExists(atPath: "\(cellFolder(index))/attempt-\(n)") {
            if let data = BoundedRead.data("\(cellFolder(index))/attempt-\(n)/cell.json", limit: BoundedRead.planLimit),
               let r = try? CellRecord.decoder.decode(CellRecord.self, from: data) { out.append(r) }
            n += 1
        }
        return out
    }

    /// Takes the cell's lock (an flock on cells/N/.lock, released when the
    /// holder exits however it exits); nil when another runner holds it.
    func lock(_ index: Int) throws -> CellLock? {
        let dir = cellFolder(index)
        try makeFolder(dir)
        let fd = Glibc.open(dir + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CampaignError("cannot create '\(dir)/.lock': \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EWOULDBLOCK {
                close(fd)
                return nil
            }
            // A cluster file system mounted without lock support (Lustre
            // without -o flock): run unlocked rather than not at all.
        }
        return CellLock(fd: fd)
    }

    /// True while some runner holds the cell's lock.
    public func isHeld(_ index: Int) -> Bool {
        let fd = Glibc.open(cellFolder(index) + "/.lock", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) != 0 { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }
}

/// A held cell lock; unlocked by `release` or when the process exits.
final class CellLock {
    private var fd: Int32
    init(fd: Int32) { self.fd = fd }
    func release() {
        if fd >= 0 { close(fd); fd = -1 }
    }
    deinit { release() }
}

/// The first 12 hex digits of a plan id, as shown to people.
func shortPlanId(_ id: String) -> String { String(id.prefix(12)) }
