import StressSupport
import RmapTrace

/// What one replay step does. Steps of one mm are linked in trace order; a
/// few are synthetic (`cowAfterFork`, `imageStart`, `spawn`): the first step
/// of a new mm, placed right after the event that creates it.
enum StepKind: UInt8 {
    /// A new process for the mm: `start`, or an `exec` by a vfork child.
    case spawn
    /// `fork`: `other` is the child mm; the child becomes ready.
    case fork
    /// The child's first step: it writes `cowPercent` of what it inherited.
    case cowAfterFork
    /// `exec ... own`: the process gets a new image; `other` (the new mm)
    /// continues on it and becomes ready.
    case execOwn
    /// `exec ... vfork`: the borrow ends; `other` becomes ready (its first
    /// step is a `spawn`).
    case release
    /// The first step of an mm made by `exec ... own`: its stack is faulted.
    case imageStart
    case exit
    case mmap, munmap, mremap, brk, mprotect, madvise
    /// `thread`, `texit`, `vfork`, `vret`: kept in order, nothing to model.
    case tasks
}

/// One step, 48 bytes, in one contiguous array (no per-event object).
struct Step {
    var kind: StepKind
    /// mmap: bit 0 shared, bit 1 file-backed, bit 2 writable. madvise: 1 when
    /// the advice drops pages. mremap: bit 0 dontunmap. Bit 7: synthetic.
    var flags: UInt8 = 0
    var mm: UInt32
    /// fork: the child; exec: the new mm; a file mmap whose file the log
    /// did not name: its unknown file's number (`ReplayPlan.unknownFiles`).
    var other: UInt32 = 0
    /// Index of the mm's next step, or `Step.end`.
    var next: UInt32 = Step.end
    /// Addresses and lengths (mmap, munmap, madvise, mprotect: a, b; mremap:
    /// old, oldLength, new, newLength; brk: from, to). A file mmap: c the
    /// trace's file id (0: not named), d the offset in bytes.
    var a: UInt64 = 0
    var b: UInt64 = 0
    var c: UInt64 = 0
    var d: UInt64 = 0

    static let end = UInt32.max
    static let shared: UInt8 = 1, file: UInt8 = 2, writable: UInt8 = 4, dropsPages: UInt8 = 1, dontUnmap: UInt8 = 1
    /// A step no event of the trace stands for (a new mm's first step).
    static let synthetic: UInt8 = 0x80
}

/// The figures of the trace itself that a replay is checked against.
public struct TraceCounts: Sendable, Equatable, Encodable {
    public var events = 0
    public var addressSpaces = 0
    public var starts = 0
    public var forks = 0
    public var execs = 0
    public var execsFromVfork = 0
    public var exits = 0
    public var mmaps = 0
    public var munmaps = 0
    public var mremaps = 0
    public var mremapMoved = 0
    public var brks = 0
    public var mprotects = 0
    public var madvises = 0
    /// thread, texit, vfork, vret, file: kept in order, nothing to model.
    public var taskEvents = 0
    public var fileEvents = 0
    /// File mmaps whose file the trace names, and those it does not (`file:?`).
    public var fileMappings = 0
    public var unknownFileMappings = 0
    public init() {}
}

/// A trace compiled for replay: its events as steps, linked per mm, and the
/// mms that start ready. Built once, before the replay, from a trace file or
/// a raw strace log (imported on the fly).
public final class ReplayPlan: @unchecked Sendable {
    public let source: String
    /// Whether the file was a raw strace log (imported) or a trace.
    public let imported: Bool
    var steps: [Step] = []
    /// Per mm id (index; 0 unused): its first step, or `Step.end`.
    var head: [UInt32] = [0]
    /// mms ready at the start (their `start` events).
    var roots: [UInt32] = []
    public private(set) var counts = TraceCounts()
    /// Seconds the file took to read (and import).
    public internal(set) var loadSeconds: Double = 0

    private var tail: [UInt32] = [0]
    /// Per trace file id (index; 0 unused): its mmaps.
    var mappingsOfFile: [Int] = [0]
    /// Files behind `file:?` mappings, told apart by a guess: a mapping at
    /// offset 0 starts a new one (the dynamic loader maps a library's
    /// header first), any other joins its mm's latest.
    public private(set) var unknownFiles: UInt32 = 0
    private var latestUnknown: [MMID: UInt32] = [:]

    init(source: String, imported: Bool) {
        self.source = source
        self.imported = imported
    }

    /// mm ids of the trace: 1...mmCount.
    public var mmCount: Int { head.count - 1 }
    public var stepCount: Int { steps.count }

    /// Reads `path`: a trace (its header says so, after gzip decompression)
    /// or a raw strace log. Errors name the file and line.
    public static func load(path: String) throws(TraceError) -> ReplayPlan {
        let t0 = monotonicNanos()
        let isTrace = try TraceReader.isTrace(path: path)
        let plan = ReplayPlan(source: path, imported: !isTrace)
        if isTrace {
            let reader = try TraceReader(path: path)
            while let r = try reader.next() { plan.add(r.event) }
        } else {
            // The importer's records follow the reader's rules (docs/trace-format.md).
            let importer = try StraceImporter(path: path)
            try importer.run { plan.add($0.event) }
        }
        plan.loadSeconds = Double(monotonicNanos() - t0) / 1e9
        return plan
    }

    /// Builds a plan from records in memory (tests).
    public static func make(_ records: [TraceRecord], source: String = "records") -> ReplayPlan {
        let plan = ReplayPlan(source: source, imported: false)
        for r in records { plan.add(r.event) }
        return plan
    }

    private func ensure(_ m: MMID) {
        while head.count <= Int(m) {
            head.append(Step.end)
            tail.append(Step.end)
        }
    }

    private func append(_ s: Step) {
        ensure(s.mm)
        let i = UInt32(steps.count)
        steps.append(s)
        let m = Int(s.mm)
        if tail[m] == Step.end { head[m] = i } else { steps[Int(tail[m])].next = i }
        tail[m] = i
    }

    /// Adds one event (the reader has checked the history: mms live, ids fresh).
    func add(_ e: TraceEvent) {
        counts.events += 1
        switch e {
        case .start(let m):
            counts.starts += 1
            counts.addressSpaces += 1
            roots.append(m)
            append(Step(kind: .spawn, mm: m))
        case .fork(let p, let c):
            counts.forks += 1
            counts.addressSpaces += 1
            append(Step(kind: .fork, mm: p, other: c))
            append(Step(kind: .cowAfterFork, flags: Step.synthetic, mm: c))
        case .exec(let o, let n, let fromVfork):
            counts.execs += 1
            counts.addressSpaces += 1
            if fromVfork {
                counts.execsFromVfork += 1
                append(Step(kind: .release, mm: o, other: n))
                append(Step(kind: .spawn, flags: Step.synthetic, mm: n))
            } else {
                append(Step(kind: .execOwn, mm: o, other: n))
                append(Step(kind: .imageStart, flags: Step.synthetic, mm: n))
            }
        case .exit(let m):
            counts.exits += 1
            append(Step(kind: .exit, mm: m))
        case .vfork(let m), .vforkReturn(let m), .thread(let m), .threadExit(let m):
            counts.taskEvents += 1
            append(Step(kind: .tasks, mm: m))
        case .file:
            counts.fileEvents += 1
        case .mmap(let m, let a, let l, let prot, let shared, let backing, let offset):
            counts.mmaps += 1
            var f: UInt8 = shared ? Step.shared : 0
            if prot.contains(.write) { f |= Step.writable }
            var step = Step(kind: .mmap, flags: f, mm: m, a: a, b: l)
            if case .file(let id) = backing {
                step.flags |= Step.file
                step.d = offset
                if let id {
                    counts.fileMappings += 1
                    step.c = UInt64(id)
                    while mappingsOfFile.count <= Int(id) { mappingsOfFile.append(0) }
                    mappingsOfFile[Int(id)] += 1
                } else {
                    counts.unknownFileMappings += 1
                    if offset == 0 || latestUnknown[m] == nil {
                        unknownFiles += 1
                        latestUnknown[m] = unknownFiles
                    }
                    step.other = latestUnknown[m]!
                }
            }
            append(step)
        case .munmap(let m, let a, let l):
            counts.munmaps += 1
            append(Step(kind: .munmap, mm: m, a: a, b: l))
        case .mremap(let m, let oa, let ol, let na, let nl, let flags):
            counts.mremaps += 1
            if na != oa { counts.mremapMoved += 1 }
            append(Step(kind: .mremap, flags: flags.contains(.dontUnmap) ? Step.dontUnmap : 0, mm: m, a: oa, b: ol, c: na, d: nl))
        case .brk(let m, let from, let to):
            counts.brks += 1
            append(Step(kind: .brk, mm: m, a: from, b: to))
        case .mprotect(let m, let a, let l, let prot):
            counts.mprotects += 1
            append(Step(kind: .mprotect, flags: prot.contains(.write) ? Step.writable : 0, mm: m, a: a, b: l))
        case .madvise(let m, let a, let l, let advice):
            counts.madvises += 1
            let drops = advice == .dontneed || advice == .free || advice == .remove
            append(Step(kind: .madvise, flags: drops ? Step.dropsPages : 0, mm: m, a: a, b: l))
        }
    }
}
