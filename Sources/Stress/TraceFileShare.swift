import RmapTrace
import TraceReplay

/// `stress schemes --trace`'s section beside the claims: per trace, a
/// replay with the defaults and what it says of anonymous pages born from
/// private file mappings (docs/trace-replay.md). The figures do not depend
/// on the scheme; the replay's checks apply, and a replay that is not a
/// SUCCESS is an error.
struct TraceFileShare: Encodable {
    var workload: String
    var verdict: String
    var paths: Int
    var fileMappingsWithInode: Int
    var unknownFileMappings: Int
    var anonPagesBorn: UInt64
    var fileCopies: UInt64
    var privateFileShare: Double
    var anonVmaFirstTouch: Int
    var anonVmaPrivateFileWrite: Int
    var anonVmaFork: Int
    var anonVmaPrivateFileShare: Double

    /// Replays `path` with the default settings (final audit only).
    static func measure(workload: String, path: String) throws -> TraceFileShare {
        let plan = try ReplayPlan.load(path: path)
        var s = ReplaySettings()
        s.auditIntervalS = 0
        let r = try TraceReplay.run(plan, settings: s)
        return TraceFileShare(
            workload: workload, verdict: r.verdict, paths: r.files.paths, fileMappingsWithInode: r.files.mappingsWithInode,
            unknownFileMappings: r.files.unknownFdMappings, anonPagesBorn: r.anonBirths.total, fileCopies: r.anonBirths.fileCopy,
            privateFileShare: r.privateFileShare, anonVmaFirstTouch: r.anonVmaBirths.firstTouch,
            anonVmaPrivateFileWrite: r.anonVmaBirths.privateFileWrite, anonVmaFork: r.anonVmaBirths.fork,
            anonVmaPrivateFileShare: r.anonVmaBirths.privateFileShare)
    }

    static func percent(_ x: Double) -> String {
        let tenths = Int((x * 1000).rounded())
        return "\(tenths / 10).\(tenths % 10)%"
    }

    /// The markdown section: one row per trace.
    static func markdown(_ rows: [TraceFileShare]) -> String {
        var md = """
            ## Anonymous pages born from private file mappings

            A replay of each trace with the defaults (`stress trace run TRACE`; the figures do not depend on the \
            scheme): anonymous pages born and the share that were copies of a private file mapping's page cache page; \
            the mappings given a first anonymous page (where Linux's anon_vma_prepare gives a VMA its anon_vma) by \
            origin, and fork's copies into children. A log without openat names no file: its file mappings are of an \
            unknown file, on spare inodes (docs/trace-replay.md).

            | workload | paths | file mmaps: named / unknown file | anonymous pages born | copies of file pages | share | mappings given a first anonymous page: anonymous / private file (share) / fork copies |
            |---|---|---|---|---|---|---|

            """
        for r in rows {
            md += "| \(r.workload) | \(r.paths) | \(r.fileMappingsWithInode) / \(r.unknownFileMappings) | \(r.anonPagesBorn) | \(r.fileCopies) | "
                + "\(percent(r.privateFileShare)) | \(r.anonVmaFirstTouch) / \(r.anonVmaPrivateFileWrite) (\(percent(r.anonVmaPrivateFileShare))) / \(r.anonVmaFork) |\n"
        }
        return md
    }
}
