import RmapTrace

/// The 2004 claims judged on real programs: each verdict computed from one
/// recorded workload's exact statistics (`TraceStats`, see
/// docs/trace-format.md), by the rule its row states. The synthetic mix's
/// verdicts (`SchemeClaims`) say what the stress mix does; these say what
/// a program did.
public enum TraceClaims {
    /// Writable private mappings a workload created (anonymous, and file
    /// mappings whose written pages become anonymous), and the most mms
    /// alive at once: what anon_vma and anongroup pay per VMA and per mm.
    public struct Mappings: Sendable, Equatable, Codable {
        public var writablePrivateMappings = 0
        public var anonymousMappings = 0
        public var peakLiveMMs = 0
    }

    public static func mappings(_ records: [TraceRecord]) -> Mappings {
        var m = Mappings()
        var live = 0
        for r in records {
            switch r.event {
            // An own exec replaces its mm (one ends, one starts); a vfork
            // child's exec makes a new one and leaves the lender's alone.
            case .start, .fork, .exec(_, _, true):
                live += 1
                m.peakLiveMMs = max(m.peakLiveMMs, live)
            case .exit:
                live -= 1
            case .mmap(_, _, _, let prot, let shared, let backing, _):
                guard !shared else { break }
                if backing == .anon { m.anonymousMappings += 1 }
                if prot.contains(.write) { m.writablePrivateMappings += 1 }
            default:
                break
            }
        }
        return m
    }

    /// Time-weighted mean size of the live groups (group-microseconds over
    /// microseconds in which some group was alive).
    static func meanGroupSize(_ s: TraceStats) -> Double {
        var weighted = 0.0, time = 0.0
        for (size, us) in s.groupSizeTimeUS { weighted += Double(size) * Double(us); time += Double(us) }
        return time > 0 ? weighted / time : 0
    }

    public static func judge(workload: String, _ s: TraceStats, _ m: Mappings) -> [ClaimRow] {
        var rows: [ClaimRow] = []
        func f(_ x: Double) -> String { String(format: "%.2f", x) }

        let mean = meanGroupSize(s)
        rows.append(ClaimRow(
            who: "Linus Torvalds (the seed)",
            claim: "In most cases an anongroup is very small, and even a large one costs only one address per mm.",
            figure: "time-weighted mean group size \(f(mean)), largest live group \(s.maxLiveGroupSize), longest fork chain without exec \(s.longestForkChain); group size at each fork: \(histogram(s.groupSizeAtFork))",
            workload: workload,
            verdict: mean <= 4 && s.maxLiveGroupSize <= 16 ? "supports" : (mean <= 16 ? "partly" : "refutes"),
            why: "rule: mean at most 4 and largest at most 16 supports; mean at most 16 partly; else refutes"))

        let inChildren = s.mremapMoved > 0 ? Double(s.mremapMovedInForkChildren) / Double(s.mremapMoved) : 0
        let cowVerdict = s.mremapMoved == 0 || s.mremapMovedSharedBytesBound == 0 ? "supports"
            : (inChildren < 0.05 ? "supports" : (inChildren < 0.25 ? "partly" : "refutes"))
        rows.append(ClaimRow(
            who: "Linus Torvalds",
            claim: "The extra COW in mremap is benign and should usually not trigger.",
            figure: "\(s.mremapMoved) of \(s.mremapCalls) mremap calls moved; \(s.mremapMovedInForkChildren) of the moves by a fork child that had not exec'd; at most \(s.mremapMovedSharedBytesBound) bytes moved while a fork relative could still share them",
            workload: workload,
            verdict: cowVerdict,
            why: "rule: no move, or no byte a relative could share (the bound is 0), supports; else the share of moves made by fork children: under 5% supports, under 25% partly, else refutes. The bound counts mapped bytes, not touched pages, so it can only overstate the copies"))

        let callShare = s.mremapCalls > 0 ? Double(s.mremapMovedInForkChildren) / Double(s.mremapCalls) : 0
        rows.append(ClaimRow(
            who: "William Lee Irwin III",
            claim: "mremap of shared anonymous memory is rare.",
            figure: "\(s.mremapMovedInForkChildren) of \(s.mremapCalls) mremap calls (\(f(callShare * 100))%) moved a range in a fork child that had not exec'd; shared-bytes bound \(s.mremapMovedSharedBytesBound)",
            workload: workload,
            verdict: s.mremapMovedSharedBytesBound == 0 || callShare < 0.05 ? "supports" : (callShare < 0.25 ? "partly" : "refutes"),
            why: "rule: no byte that could be shared was moved, or under 5% of the calls were such moves, supports; under 25% partly; else refutes"))

        let tasks = s.forks + s.threads
        let forkShare = tasks > 0 ? Double(s.forks) / Double(tasks) : 0
        rows.append(ClaimRow(
            who: "Linus Torvalds",
            claim: "A high-performance server would use threads anyway, so big fork groups do not matter.",
            figure: "\(s.forks) forks (new address spaces) against \(s.threads) threads (tasks sharing one), \(s.vforks) vforks; largest group \(s.maxLiveGroupSize)",
            workload: workload,
            verdict: s.forks == 0 || forkShare < 0.5 || s.maxLiveGroupSize <= 4 ? "supports" : (s.maxLiveGroupSize <= 16 ? "partly" : "refutes"),
            why: "rule: a workload that makes no forks, makes more threads than forks, or keeps groups at 4 or fewer supports; one that forks into groups of at most 16 partly; larger groups refute. It speaks for this workload only, server or not"))

        rows.append(ClaimRow(
            who: "Hugh Dickins",
            claim: "anon_vma costs about 24 bytes more per VMA.",
            figure: "\(m.writablePrivateMappings) writable private mappings created (\(m.anonymousMappings) of them anonymous): at most \(m.writablePrivateMappings * 24) bytes of anon_vma links if every one got a page; anongroup pays one link per mm instead (peak \(m.peakLiveMMs) mms alive)",
            workload: workload,
            verdict: "by construction",
            why: "the 24 bytes are the layout of the link (three pointer fields); the workload sets only how many VMAs pay them, which the figure gives"))
        return rows
    }

    static func histogram(_ h: [Int: Int]) -> String {
        h.isEmpty ? "none" : h.keys.sorted().map { "\($0):\(h[$0]!)" }.joined(separator: " ")
    }

    /// A Markdown table: one row per (workload, claim).
    public static func markdown(_ rows: [ClaimRow]) -> String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        var out = "| workload | who | claim | verdict | figure | rule |\n|---|---|---|---|---|---|\n"
        for r in rows {
            out += "| \(cell(r.workload)) | \(cell(r.who)) | \(cell(r.claim)) | **\(cell(r.verdict))** | \(cell(r.figure)) | \(cell(r.why)) |\n"
        }
        return out
    }
}
