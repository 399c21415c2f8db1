import ConcurrentRmap

/// The outcome of one replay: the verdict as `stress run` gives it, and what
/// the replay did to the model. Encodable (the command line writes it as
/// JSON with snake_case keys).
public struct ReplayResult: Sendable, Encodable {
    public struct Settings: Sendable, Encodable {
        public var threads: Int
        public var seed: UInt64
        public var faultPercent: Int
        public var cowPercent: Int
        public var scale: Int
        public var vmaPages: Int
        public var frames: Int
        public var swapSlots: Int
        public var processes: Int
        public var checks: String
        public var sync: String
        /// anon-vma only (nil for the other schemes).
        public var anonVmaWalk: String?
        public var anonVmaMerge: Bool?
        public var inject: String
        public var background: Bool
        public var fullTable: String
        public var window: Int
        public var migrateEvery: Int
        public var backgroundPauseUs: Int
        public var auditIntervalS: Double
        public var stallTimeoutS: Double
        public var keepGoing: Bool
        public var inodes: Int
    }

    public struct Processes: Sendable, Encodable {
        public var spawned = 0, forks = 0, forkFailed = 0, execs = 0, execFailed = 0, exits = 0
        public var forkMeanNs = 0.0, exitMeanNs = 0.0
        /// Fork family (anon group) size just after each fork: {size: forks}.
        public var groupSizeAtFork: [String: Int] = [:]
    }

    public struct Walks: Sendable, Encodable {
        public var count: UInt64 = 0
        /// Objects visited (mms for anongroup, VMAs for anon-vma), and those without the page.
        public var visited: UInt64 = 0
        public var wasted: UInt64 = 0
        public var visitedPerWalk = 0.0
        public var wastedPerWalk = 0.0
        public var trylockFailures: UInt64 = 0
    }

    public struct Mremap: Sendable, Encodable {
        public var moves = 0
        public var pagesCopied: UInt64 = 0
        public var pagesReindexed: UInt64 = 0
        public var pagesKept: UInt64 = 0
        public var swapEntriesMoved: UInt64 = 0
    }

    public struct Metadata: Sendable, Encodable {
        public var bytesPerVma = 0, bytesPerMm = 0
        public var peakContexts = 0, peakVmas = 0, peakMms = 0, peakBytes = 0, peakProcesses = 0, peakFramesInUse = 0
        public var finalContexts = 0, finalVmas = 0, finalMms = 0, finalProcesses = 0
    }

    /// The trace's file mappings on the model's inodes (from the trace and
    /// `--inodes`; the same for every scheme and run).
    public struct Files: Sendable, Encodable {
        /// The trace's files (paths) and those past the named inodes.
        public var paths = 0, pathsWithoutInode = 0
        /// Inodes that some mapping uses: named files', and spares.
        public var inodesUsed = 0, spareInodes = 0
        /// File mmaps of a named file with an inode, without one, and of a
        /// file the log did not name (on a spare inode when there is one).
        public var mappingsWithInode = 0, mappingsWithoutInode = 0, unknownFdMappings = 0
        /// Page cache pages at the peak (sampled).
        public var peakPageCachePages = 0
        /// Page cache pages when the replay ended (files outlive processes:
        /// every page read and not reclaimed), before the teardown.
        public var pageCachePagesAtEnd = 0
    }

    /// Anonymous pages made, by origin: zero-filled at a first touch, a
    /// copy of an anonymous page (COW after fork), a copy of a page cache
    /// page (a write to a private file mapping: do_cow_fault and the like).
    public struct AnonBirths: Sendable, Encodable {
        public var total: UInt64 = 0, zeroFill: UInt64 = 0, anonCopy: UInt64 = 0, fileCopy: UInt64 = 0
    }

    /// The mappings that got a first anonymous page (in Linux, where
    /// anon_vma_prepare gives the VMA its anon_vma), by origin, and the
    /// child VMAs fork gave one (anon_vma_fork). The same for every scheme.
    public struct AnonVmaBirths: Sendable, Encodable {
        public var firstTouch = 0, privateFileWrite = 0, fork = 0
        /// privateFileWrite / (firstTouch + privateFileWrite); 0 with none.
        public var privateFileShare = 0.0
    }

    public var source: String
    public var imported: Bool
    public var scheme: String
    public var settings: Settings
    public var verdict = "RUNNING"
    public var exitStatus: Int32 = -1
    public var violationCount = 0
    public var violationsByKind: [String: Int] = [:]
    /// The first violations in full (at most 10).
    public var violations: [String] = []
    public var leakCheck = "pending"
    public var leaks: [String] = []
    public var trace: TraceCounts
    public var loadS: Double
    public var replaySeconds = 0.0
    /// Trace events replayed (every event of the trace unless the replay
    /// stopped early) and their rate over the replay's wall time.
    public var eventsReplayed = 0
    public var eventsPerS = 0.0
    public var processes = Processes()
    public var walks = Walks()
    public var mremap = Mremap()
    public var metadata = Metadata()
    public var files = Files()
    public var anonBirths = AnonBirths()
    /// The share of anonymous pages born from private file mappings
    /// (`anonBirths.fileCopy / anonBirths.total`; 0 with none).
    public var privateFileShare = 0.0
    public var anonVmaBirths = AnonVmaBirths()
    public var audits = 0
    /// Every replay counter (`ReplayCounter`), by name.
    public var counts: [String: Int] = [:]
    /// The model's per-CPU event counters, summed, by name.
    public var modelEvents: [String: UInt64] = [:]
    /// Each thread's last operations (oldest first), when the replay failed.
    public var recentOperations: [[String]]?

    init(plan: ReplayPlan, settings s: ReplaySettings) {
        source = plan.source
        imported = plan.imported
        scheme = s.scheme.rawValue
        trace = plan.counts
        loadS = plan.loadSeconds
        settings = Settings(threads: s.threads, seed: s.seed, faultPercent: s.faultPercent, cowPercent: s.cowPercent,
                            scale: s.scale, vmaPages: s.vmaPages, frames: s.frames, swapSlots: s.swapSlots,
                            processes: s.processes, checks: s.checks.rawValue, sync: s.sync.rawValue,
                            anonVmaWalk: s.scheme.hasAnonVMAWalk ? s.anonVmaWalk.rawValue : nil,
                            anonVmaMerge: s.scheme == .anonVma ? s.anonVmaMerge : nil,
                            inject: s.injection.rawValue, background: s.background,
                            fullTable: s.evictWhenFull ? "evict" : "skip", window: s.window, migrateEvery: s.migrateEvery,
                            backgroundPauseUs: s.backgroundPauseUs, auditIntervalS: s.auditIntervalS,
                            stallTimeoutS: s.stallTimeoutS, keepGoing: s.keepGoing, inodes: s.inodes)
        files.paths = trace.fileEvents
        files.spareInodes = s.spareInodes
        for (id, n) in plan.mappingsOfFile.enumerated() where n > 0 {
            if s.inode(file: UInt64(id), unknown: 0) != 0 {
                files.inodesUsed += 1
                files.mappingsWithInode += n
            } else {
                files.mappingsWithoutInode += n
            }
        }
        files.pathsWithoutInode = max(0, trace.fileEvents - s.namedInodes)
        files.unknownFdMappings = trace.unknownFileMappings
        if s.spareInodes == 0 { files.mappingsWithoutInode += trace.unknownFileMappings }
        if trace.unknownFileMappings > 0 { files.inodesUsed += min(Int(plan.unknownFiles), s.spareInodes) }
    }

    public func count(_ c: ReplayCounter) -> Int { counts[c.name] ?? 0 }
    public func event(_ e: Event) -> UInt64 { modelEvents[e.name] ?? 0 }

    /// Sums the threads' counters and their CPUs' model events.
    mutating func collect(_ all: [WorkerCounters], cpus: [CPU]) {
        var sum = [Int](repeating: 0, count: ReplayCounter.allCases.count)
        var groups = [Int](repeating: 0, count: WorkerCounters.maxGroup + 1)
        for w in all {
            for i in sum.indices { sum[i] &+= w.values[i] }
            for i in groups.indices { groups[i] += w.groupSizeAtFork[i] }
        }
        for c in ReplayCounter.allCases { counts[c.name] = sum[c.rawValue] }
        processes.groupSizeAtFork = [:]
        for (size, n) in groups.enumerated() where n > 0 {
            processes.groupSizeAtFork[size == WorkerCounters.maxGroup ? "\(size)+" : "\(size)"] = n
        }
        for e in Event.allCases {
            var n: UInt64 = 0
            for cpu in cpus { n &+= cpu.pointee.eventCount(e) }
            modelEvents[e.name] = n
        }
    }

    /// The verdict and the figures derived from the counters.
    mutating func finish(machine: Machine, stalled: Bool) {
        eventsReplayed = count(.events) + trace.fileEvents
        eventsPerS = replaySeconds > 0 ? Double(eventsReplayed) / replaySeconds : 0
        processes.spawned = count(.spawned)
        processes.forks = count(.forks)
        processes.forkFailed = count(.forkFailed)
        processes.execs = count(.execs)
        processes.execFailed = count(.execFailed)
        processes.exits = count(.exits)
        let forkCalls = count(.forks) + count(.forkFailed)
        processes.forkMeanNs = forkCalls > 0 ? Double(count(.forkNs)) / Double(forkCalls) : 0
        processes.exitMeanNs = count(.exits) > 0 ? Double(count(.exitNs)) / Double(count(.exits)) : 0
        walks.count = event(.rmapWalk)
        walks.visited = event(.walkVisited)
        walks.wasted = event(.walkWasted)
        walks.trylockFailures = event(.walkTrylockFail)
        walks.visitedPerWalk = walks.count > 0 ? Double(walks.visited) / Double(walks.count) : 0
        walks.wastedPerWalk = walks.count > 0 ? Double(walks.wasted) / Double(walks.count) : 0
        mremap.moves = count(.mremapMoves)
        mremap.pagesCopied = event(.mremapCopy)
        mremap.pagesReindexed = event(.mremapMove)
        mremap.pagesKept = event(.mremapKeep)
        mremap.swapEntriesMoved = event(.mremapSwapMove)
        anonBirths = AnonBirths(total: event(.firstTouch) + event(.cowCopy) + event(.fileCow), zeroFill: event(.firstTouch),
                                anonCopy: event(.cowCopy), fileCopy: event(.fileCow))
        privateFileShare = anonBirths.total > 0 ? Double(anonBirths.fileCopy) / Double(anonBirths.total) : 0
        anonVmaBirths.firstTouch = count(.anonVmaFirstTouch)
        anonVmaBirths.privateFileWrite = count(.anonVmaFileWrite)
        anonVmaBirths.fork = count(.anonVmaFork)
        let prepared = anonVmaBirths.firstTouch + anonVmaBirths.privateFileWrite
        anonVmaBirths.privateFileShare = prepared > 0 ? Double(anonVmaBirths.privateFileWrite) / Double(prepared) : 0
        violationCount = machine.violationCount
        violationsByKind = [:]
        for k in ViolationKind.allCases where machine.violationCount(k) > 0 { violationsByKind[k.rawValue] = machine.violationCount(k) }
        violations = machine.violations.prefix(10).map(\.description)
        if stalled {
            verdict = "STALL"; exitStatus = 3
        } else if violationCount > 0 || !leaks.isEmpty {
            verdict = "FAILURE"; exitStatus = 1
        } else {
            verdict = "SUCCESS"; exitStatus = 0
        }
    }

    /// The mappings and calls the model does not represent, by name (> 0 only).
    public var notModelled: [(String, Int)] {
        let kinds: [(String, ReplayCounter)] = [
            ("file-backed mappings without an inode", .mmapFile), ("shared anonymous mappings without a shmem inode or a VMA slot", .mmapSharedFailed),
            ("mappings beyond the 16 VMAs of an mm", .mmapTableFull),
            ("mappings evicted from a full table (least recently used)", .mmapEvicted), ("empty mappings", .mmapEmpty),
            ("heaps (brk) not modelled", .heapNotModelled), ("munmaps of unmodelled ranges", .munmapNotModelled),
            ("mremaps of unmodelled ranges", .mremapNotModelled), ("mremaps that could not move", .mremapMoveFailed),
            ("madvise drops of unmodelled ranges", .madviseNotModelled), ("other madvise advice", .madviseOther),
            ("steps of mms not modelled", .stepsSkipped), ("spawns refused", .spawnFailed),
        ]
        return kinds.compactMap { count($0.1) > 0 ? ($0.0, count($0.1)) : nil }
    }

    /// The report `stress trace run` prints, ending with the verdict line.
    public var report: String {
        var out = ""
        func line(_ s: String) { out += s + "\n" }
        let objects = SchemeKind(rawValue: scheme)?.walkObjects ?? "objects"
        line("replay         \(eventsReplayed) of \(trace.events) events in \(fixed(replaySeconds, 3)) s = \(Int(eventsPerS)) events/s (\(count(.steps)) steps on \(settings.threads) threads; read in \(fixed(loadS, 3)) s\(imported ? ", imported from strace" : ""))")
        line("processes      \(processes.spawned) started (\(count(.spawnedByVforkExec)) of them by a vfork child's exec), \(processes.forks) forks (\(processes.forkFailed) refused), \(processes.execs) execs (\(processes.execFailed) refused), \(processes.exits) exits; trace: \(trace.forks) forks, \(trace.execs) execs, \(trace.exits) exits")
        line("costs          fork \(fixed(processes.forkMeanNs / 1000, 1)) us, exit \(fixed(processes.exitMeanNs / 1000, 1)) us (mean)")
        let groups = processes.groupSizeAtFork.sorted { (Int($0.key.filter(\.isNumber)) ?? 0) < (Int($1.key.filter(\.isNumber)) ?? 0) }
        line("group at fork  " + (groups.isEmpty ? "no forks" : groups.map { "\($0.key):\($0.value)" }.joined(separator: " ")))
        line("mappings       \(count(.mmapModelled)) modelled, \(count(.munmapWhole)) unmapped, \(count(.munmapPartial)) partly unmapped; heap: \(count(.heapMapped)) mapped, \(count(.heapGrowths)) growths, \(count(.heapShrinks)) shrinks; \(count(.mmapShared)) shared anonymous (shmem inodes, \(count(.shmemWrites)) pages written); \(count(.madviseDrops)) madvise drops, \(count(.mprotects)) mprotects (\(count(.mprotectMadeWritable)) made a mapping writable)")
        line("mremap         \(mremap.moves) moves of \(trace.mremapMoved) in the trace (\(count(.mremapPartialMoves)) of part of a mapping), \(count(.mremapResized)) in-place resizes; \(mremap.pagesCopied) shared pages copied, \(mremap.pagesReindexed) re-indexed, \(mremap.pagesKept) kept, \(mremap.swapEntriesMoved) swap entries moved")
        line("files          \(files.paths) paths (\(files.pathsWithoutInode) without an inode of \(settings.inodes)), \(files.inodesUsed) inodes used; mmaps: \(files.mappingsWithInode) with an inode, \(files.mappingsWithoutInode) without, \(files.unknownFdMappings) of an unknown file (\(files.spareInodes) spare inodes); \(count(.mmapFileNamed) + count(.mmapFileSpare)) modelled, \(count(.fileReads)) pages read, \(count(.fileWrites)) written; page cache: peak \(files.peakPageCachePages) pages, \(files.pageCachePagesAtEnd) at the end")
        line("anon births    \(anonBirths.total): \(anonBirths.zeroFill) zero-filled, \(anonBirths.anonCopy) copies of anonymous pages, \(anonBirths.fileCopy) copies of file pages (private file share \(fixed(privateFileShare * 100, 1))%)")
        line("anon_vmas      mappings given a first anonymous page: \(anonVmaBirths.firstTouch) by a touch of anonymous memory, \(anonVmaBirths.privateFileWrite) by a write to a private file mapping (\(fixed(anonVmaBirths.privateFileShare * 100, 1))%); \(anonVmaBirths.fork) copied to fork children")
        line("touches        \(count(.mapFaults)) at mmap, \(count(.stackFaults)) stack, \(count(.heapFaults)) heap, \(count(.mprotectFaults)) after mprotect, \(count(.cowWrites)) COW writes after fork, \(count(.moveReads)) reads after mremap; \(count(.touchFailed)) did not complete")
        line("faults         \(event(.firstTouch)) first touch, \(event(.cowCopy)) COW copies, \(event(.cowReuse)) COW reuses, \(event(.swapIn)) swap-ins, \(event(.faultOOM)) out of memory")
        line("rmap walks     \(walks.count)  (\(fixed(walks.visitedPerWalk, 2)) \(objects) visited per walk, \(fixed(walks.wastedPerWalk, 2)) of them without the page; \(walks.trylockFailures) trylock failures)")
        line("reclaim        peak \(metadata.peakFramesInUse)/\(settings.frames) frames in use; \(event(.reclaimScanned)) scanned, \(event(.swapOut)) swapped out, \(event(.directReclaim)) direct; \(event(.migrated)) pages migrated (\(count(.workerMigrations)) by the workers, \(count(.backgroundMigrations)) in the background)")
        line("rmap metadata  peak \(metadata.peakContexts) \(scheme == SchemeKind.anongroup.rawValue ? "anongroups" : "anon_vmas"), \(metadata.peakVmas) VMAs, \(metadata.peakMms) mms, \(metadata.peakBytes) bytes (\(metadata.bytesPerVma) per VMA, \(metadata.bytesPerMm) per mm); at the end \(metadata.finalProcesses) processes, \(metadata.finalContexts) contexts, \(metadata.finalVmas) VMAs, \(metadata.finalMms) mms")
        let nm = notModelled
        line("not modelled   " + (nm.isEmpty ? "nothing" : nm.map { "\($0.1) \($0.0)" }.joined(separator: ", ")))
        line("audits         \(audits) (the last one with every thread stopped)")
        line("leak check     \(leakCheck)")
        for l in leaks.prefix(10) { line("  leak: \(l)") }
        if let first = violations.first {
            line("")
            line("first violation: \(first)")
            for v in violations.dropFirst() { line("  then \(v)") }
        }
        if let recent = recentOperations, recent.contains(where: { !$0.isEmpty }) {
            line("last operations per thread (oldest first; arg: the step's index):")
            for (i, ops) in recent.enumerated() where !ops.isEmpty { line("  thread \(i): " + ops.suffix(8).joined(separator: " ")) }
        }
        line("")
        let kinds = violationsByKind.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        if verdict == "SUCCESS" {
            line("SUCCESS")
        } else {
            line("\(verdict): \(violationCount) violation\(violationCount == 1 ? "" : "s") (\(kinds))" + (leaks.isEmpty ? "" : ", \(leaks.count) leaks"))
        }
        return out
    }
}

/// `x` with `digits` decimals, without Foundation.
func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let v = (abs(x) * scale).rounded()
    let whole = Int(v / scale)
    var frac = String(Int(v - Double(whole) * scale))
    while frac.count < digits { frac = "0" + frac }
    return (x < 0 && v > 0 ? "-" : "") + "\(whole)" + (digits > 0 ? "." + frac : "")
}
