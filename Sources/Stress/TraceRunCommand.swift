import ArgumentParser
import ConcurrentRmap
import Foundation
import RmapTrace
import RunEngine
import StressSupport
import TraceReplay

extension TraceCommand {
    /// `stress trace run FILE`: replays a trace (or a raw strace log) on the
    /// model with the checks of `stress run` (docs/trace-replay.md).
    struct ReplayRun: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Replay a trace (or a raw strace log) on the model, with the checks of `stress run`.",
            discussion: """
                Every address space of the trace is a process of the model; its events keep their order, a child's \
                events come after its fork, a new image's after its exec, and unrelated processes run at once on \
                the worker threads, at most --window steps apart in the trace. A trace has no page touches, so the replay makes them: --fault-percent of each \
                private anonymous writable mapping (and of each new image's stack) is written when it is mapped, \
                the heap grown by brk is written fully, a child writes --cow-percent of what it inherited right \
                after its fork, a move by mremap reads back what it had faulted, and a mapping made writable by \
                mprotect is faulted then. A background thread reclaims (below a quarter of the frames free) and \
                migrates random pages, so rmap walks happen. A mapping of B bytes gets \
                clamp(ceil(B / 4096 / scale), 1, vma-pages) model pages (the heap: one per --scale pages); a munmap of part of a mapping and madvise dontneed, free or remove \
                drop the covered pages, an mremap that moves moves the model VMA, in-place resizes and mprotect are \
                counted. A file mapping goes onto an inode: the trace's file k is inode k (the same path is the \
                same inode in every process) up to the last --inodes / 8 (1...16), which take the mappings of files \
                the log did not name; its pages are read (or, writable, written: private ones then get anonymous \
                copies of file pages, whose share of all anonymous pages is reported). Files past the inodes, shared \
                anonymous mappings, mappings \
                evicted from a full table of 16 VMAs (or, with --full-table skip, left out) and calls on ranges not \
                modelled are counted. Every --migrate-every steps of a process its worker migrates one of its pages. \
                Exit status: 0 SUCCESS, 1 FAILURE (a violation or a leak), 2 bad usage or a bad input file (one \
                line naming the file and line), 3 STALL.
                """)

        /// The replay's defaults for the options it shares with `stress run`.
        enum Defaults: CommandDefaults {
            static var settings: RunSettings {
                var r = RunSettings()
                let d = ReplaySettings()
                r.scheme = d.scheme
                r.checks = d.checks
                r.sync = d.sync
                r.inject = d.injection
                return r
            }
        }

        @Argument(help: "A trace file (docs/trace-format.md) or an strace -f -ttt log, plain or gzip.")
        var file: String
        @OptionGroup var scheme: SchemeOption<Defaults>
        @Option(help: "Worker threads replaying processes, 1...256 (default 2).")
        var threads: String?
        @Option(help: "Write the result as JSON to this file ('-' for standard output; the report then goes to standard error).")
        var json: String?
        @OptionGroup var inject: InjectOption<Defaults>
        @Option(help: "Seed of the CPUs' random streams (which pages migration picks), 0...\(UInt64.max) (default 1).")
        var seed: String?
        @Option(name: .customLong("fault-percent"), help: "Percent of each private anonymous writable mapping's model pages written at mmap, 0...100 (default 50).")
        var faultPercent: String?
        @Option(name: .customLong("cow-percent"), help: "Percent of the inherited (faulted) pages a child writes right after its fork, 0...100 (default 25).")
        var cowPercent: String?
        @Option(help: "Trace pages (4 KiB) per model page, 1...1048576 (default 16: a 64 KiB mapping is one model page, 4 MiB and more fill a 64-page VMA).")
        var scale: String?
        @Option(name: .customLong("vma-pages"), help: "Model pages of the largest VMA, a divisor of 512 (default 64).")
        var vmaPages: String?
        @Option(help: "Page frames, 64...16777216 (default 512: small, so that reclaim runs).")
        var frames: String?
        @Option(name: .customLong("swap-slots"), help: "Swap slots, 1...67108864 (default 65536).")
        var swapSlots: String?
        @Option(help: "Process-table entries, the most processes alive at once, 1...65536 (default 1024).")
        var processes: String?
        @OptionGroup var checks: ChecksOption<Defaults>
        @OptionGroup var sync: SyncOption<Defaults>
        @OptionGroup var anonVma: AnonVMAOptions<Defaults>
        @Option(name: .customLong("audit-interval"), help: "Seconds between stop-the-world audits: 0 (the final audit only) or 0.1...3600 (default 2).")
        var auditInterval: String?
        @Option(name: .customLong("stall-timeout"), help: "Seconds a thread may go without progress before the replay is a STALL, 1...3600 (default 10).")
        var stallTimeout: String?
        @Option(name: .customLong("background-pause"), help: "Microseconds the background thread sleeps between its reclaim-and-migrate steps, 0...1000000 (default 50).")
        var backgroundPause: String?
        @Option(help: "How far apart in the trace the workers may be, in steps (about events): none runs a step more than this past the earliest step another is at, 1...1073741824 (default 16; 1, or --threads 1: the trace's exact order).")
        var window: String?
        @Option(name: .customLong("migrate-every"), help: "Every N steps of a process, its worker migrates one random page of it (an rmap walk over its group), 0 (never) or 1...1000000 (default 4).")
        var migrateEvery: String?
        @Option(help: "Inodes of the model: the trace's file k is inode k while k <= inodes - spares (spares: inodes/8 clamped to 1...16, for mappings of unnamed files), 0...65536 (default 256; 0: no file mapping is modelled).")
        var inodes: String?
        @Option(name: .customLong("full-table"), help: "When an mm's 16 model VMAs are taken, a new mapping evicts the least recently used one (evict, counted) or is not modelled (skip, counted) (default evict).")
        var fullTable: String?
        @Flag(name: .customLong("no-background"), help: "No background reclaim and migration (walks then come from the workers' migrations and direct reclaim).")
        var noBackground = false
        @Flag(help: "Random short delays at race windows (seeded).")
        var perturb = false
        @Flag(name: .customLong("keep-going"), help: "Count violations instead of stopping at the first.")
        var keepGoing = false
        @Flag(help: "Print the verdict line only.")
        var quiet = false

        func settings() throws -> ReplaySettings {
            var s = ReplaySettings()
            if let v = try scheme.value() { s.scheme = v }
            if let v = threads { s.threads = try Parse.whole(v, "--threads", ReplaySettings.threadsRange) }
            if let v = seed { s.seed = try Parse.whole(v, "--seed", 0...UInt64.max) }
            if let v = faultPercent { s.faultPercent = try Parse.whole(v, "--fault-percent", ReplaySettings.percentRange, "%") }
            if let v = cowPercent { s.cowPercent = try Parse.whole(v, "--cow-percent", ReplaySettings.percentRange, "%") }
            if let v = scale { s.scale = try Parse.whole(v, "--scale", ReplaySettings.scaleRange, "trace pages per model page") }
            if let v = vmaPages {
                s.vmaPages = try Parse.whole(v, "--vma-pages", 1...512)
                if 512 % s.vmaPages != 0 { throw ValidationError("--vma-pages must divide 512: 1, 2, 4, ... 512 (got \(v))") }
            }
            if let v = frames { s.frames = try Parse.whole(v, "--frames", MachineConfig.framesRange) }
            if let v = swapSlots { s.swapSlots = try Parse.whole(v, "--swap-slots", MachineConfig.swapSlotsRange) }
            if let v = processes { s.processes = try Parse.whole(v, "--processes", MachineConfig.processesRange) }
            if let v = try checks.value() { s.checks = v }
            if let v = try sync.value() { s.sync = v }
            var r = RunSettings()
            r.scheme = s.scheme
            r.sync = s.sync
            try anonVma.apply(to: &r)
            s.anonVmaWalk = r.anonVmaWalk
            s.anonVmaMerge = r.anonVmaMerge
            if let v = try inject.value() { s.injection = v }
            if let v = auditInterval {
                s.auditIntervalS = try Parse.seconds(v, "--audit-interval", ReplaySettings.auditIntervalRange, zero: "the final audit only")
            }
            if let v = stallTimeout { s.stallTimeoutS = try Parse.seconds(v, "--stall-timeout", ReplaySettings.stallTimeoutRange) }
            if let v = backgroundPause {
                s.backgroundPauseUs = try Parse.whole(v, "--background-pause", ReplaySettings.backgroundPauseRange, "microseconds")
            }
            if let v = window { s.window = try Parse.whole(v, "--window", ReplaySettings.windowRange, "steps") }
            if let v = inodes { s.inodes = try Parse.whole(v, "--inodes", ReplaySettings.inodesRange, "inodes") }
            if let v = migrateEvery { s.migrateEvery = try Parse.whole(v, "--migrate-every", ReplaySettings.migrateEveryRange, "steps") }
            switch fullTable {
            case nil, "evict": s.evictWhenFull = true
            case "skip": s.evictWhenFull = false
            case let v?: throw ValidationError("unknown value '\(v)' for --full-table (known: evict, skip)")
            }
            s.background = !noBackground
            s.perturb = perturb
            s.keepGoing = keepGoing
            if let problem = s.validate() { throw ValidationError(problem) }
            return s
        }

        func run() throws {
            let s = try settings()
            let toStdout = json == "-"
            if let json, !toStdout {
                do { try AtomicFile.checkWritable(json) } catch { throw ValidationError("cannot write JSON file: \(error)") }
            }
            let plan = try TraceCommand.checked { () throws(TraceError) in try ReplayPlan.load(path: file) }
            let say: (String) -> Void = { text in
                if toStdout { FileHandle.standardError.write(Data(text.utf8)) } else { print(text, terminator: "") }
            }
            if !quiet {
                say("stress trace run \(file): scheme=\(s.scheme.rawValue) threads=\(s.threads) seed=\(s.seed) fault=\(s.faultPercent)% cow=\(s.cowPercent)% scale=\(s.scale) vma-pages=\(s.vmaPages) frames=\(s.frames) processes=\(s.processes) checks=\(s.checks.rawValue) sync=\(s.sync.rawValue) inject=\(s.injection.rawValue) background=\(s.background ? "\(s.backgroundPauseUs)us" : "off") window=\(s.window) migrate-every=\(s.migrateEvery) inodes=\(s.inodes) full-table=\(s.evictWhenFull ? "evict" : "skip")\n")
                say("trace          \(plan.counts.events) events, \(plan.mmCount) address spaces, \(plan.counts.forks) forks, \(plan.counts.execs) execs, \(plan.counts.exits) exits, \(plan.counts.mremapMoved) mremap moves\n")
            }
            let result: ReplayResult
            do {
                result = try TraceReplay.run(plan, settings: s)
            } catch let e as Machine.ConfigError {
                throw ValidationError(e.description)
            }
            if quiet {
                say(String(result.report.split(separator: "\n").last ?? "") + "\n")
            } else {
                say(result.report)
            }
            if let json {
                let enc = JSONEncoder()
                enc.keyEncodingStrategy = .convertToSnakeCase
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                let data = try enc.encode(result) + Data("\n".utf8)
                if toStdout {
                    FileHandle.standardOutput.write(data)
                } else {
                    do { try data.write(to: URL(fileURLWithPath: json), options: .atomic) } catch {
                        throw ValidationError("cannot write JSON file \(json): \(error.localizedDescription)")
                    }
                }
            }
            throw ExitRequest(status: result.exitStatus)
        }
    }
}
