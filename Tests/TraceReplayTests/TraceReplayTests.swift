import ConcurrentRmap
import Foundation
import RmapTrace
import TraceReplay
import XCTest

/// Fixtures: this target's own, and the real cut-outs of RmapTraceTests (read in place).
let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
func fixture(_ name: String) -> String { here.appendingPathComponent("Fixtures").appendingPathComponent(name).path }
func traceFixture(_ name: String) -> String {
    here.deletingLastPathComponent().appendingPathComponent("RmapTraceTests/Fixtures").appendingPathComponent(name).path
}

/// Settings for fast, quiet test replays: no periodic audit (the final one
/// always runs), a short stall timeout.
func testSettings(_ scheme: SchemeKind, inject: Injection = .none) -> ReplaySettings {
    var s = ReplaySettings()
    s.scheme = scheme
    s.injection = inject
    s.auditIntervalS = 0
    s.stallTimeoutS = 10
    s.processes = 64  // small tables: a machine per replay is built fast
    return s
}

final class TraceReplayTests: XCTestCase {
    /// Real cut-outs (make's vfork spawns, a forking server's restarted
    /// forks, swift build's threads) and hand-written ones replay clean under
    /// both schemes, with the trace's own counts of processes, forks, execs,
    /// exits and mremap moves.
    func testCutOutsReplayCleanWithTheTraceCounts() throws {
        let names = ["w1b_vfork_spawn.st", "w4c_restarted_forks.st", "w5_threads.st", "hand_mremap_fork.st",
                     "hand_thread_exec.st", "hand_pid_reuse.st"]
        for name in names {
            let path = traceFixture(name)
            let (stats, _) = try TraceTools.stats(of: path)
            let plan = try ReplayPlan.load(path: path)
            XCTAssertEqual(plan.counts.events, stats.events, name)
            XCTAssertEqual(plan.counts.forks, stats.forks, name)
            XCTAssertEqual(plan.counts.mremapMoved, stats.mremapMoved, name)
            for scheme in SchemeKind.allCases {
                let r = try TraceReplay.run(plan, settings: testSettings(scheme))
                let what = "\(name) \(scheme.rawValue)"
                XCTAssertEqual(r.verdict, "SUCCESS", "\(what): \(r.violations)")
                XCTAssertEqual(r.exitStatus, 0, what)
                XCTAssertEqual(r.leakCheck, "clean", what)
                XCTAssertEqual(r.eventsReplayed, stats.events, what)
                XCTAssertEqual(r.processes.forks, stats.forks, what)
                XCTAssertEqual(r.processes.execs + r.count(.spawnedByVforkExec), stats.execs, what)
                XCTAssertEqual(r.processes.exits, stats.exits, what)
                XCTAssertEqual(r.processes.spawned, 1 + stats.execsFromVfork, what)
                XCTAssertEqual(r.mremap.moves, stats.mremapMoved, what)
                XCTAssertEqual(r.count(.stepsSkipped), 0, what)
                XCTAssertEqual(r.processes.groupSizeAtFork.values.reduce(0, +), stats.forks, what)
            }
            // One thread replays in the trace's order: the model's fork
            // families are then exactly the trace's anon groups.
            var s = testSettings(.anongroup)
            s.threads = 1
            let r = try TraceReplay.run(plan, settings: s)
            let expected = Dictionary(uniqueKeysWithValues: stats.groupSizeAtFork.map { ("\($0.key)", $0.value) })
            XCTAssertEqual(r.processes.groupSizeAtFork, expected, name)
        }
    }

    /// Whole recorded traces of the repository (docs/traces): Redis forking
    /// for BGSAVE, a multiprocessing pool whose workers move buffers. With
    /// one thread the replay follows the trace's order, so the group sizes at
    /// fork are the trace's too.
    func testRecordedTracesReplayClean() throws {
        let traces = here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs/traces")
        for name in ["redis_bgsave.trace.gz", "mp_pool.trace.gz"] {
            let path = traces.appendingPathComponent(name).path
            let (stats, _) = try TraceTools.stats(of: path)
            let plan = try ReplayPlan.load(path: path)
            XCTAssertFalse(plan.imported)
            for scheme in SchemeKind.allCases {
                var s = testSettings(scheme)
                s.threads = 1
                let r = try TraceReplay.run(plan, settings: s)
                let what = "\(name) \(scheme.rawValue)"
                XCTAssertEqual(r.verdict, "SUCCESS", "\(what): \(r.violations)")
                XCTAssertEqual(r.eventsReplayed, stats.events, what)
                XCTAssertEqual(r.processes.forks, stats.forks, what)
                XCTAssertEqual(r.processes.exits, stats.exits, what)
                XCTAssertEqual(r.mremap.moves, stats.mremapMoved, what)
                XCTAssertEqual(r.mremap.pagesCopied, 0, "\(what): no moved page was shared (bound 0)")
                let expected = Dictionary(uniqueKeysWithValues: stats.groupSizeAtFork.map { ("\($0.key)", $0.value) })
                XCTAssertEqual(r.processes.groupSizeAtFork, expected, what)
            }
        }
    }

    /// A cut-out of a forking program whose child moves a buffer it shares
    /// with its parent (and the processes still run at the cut): the scheme's
    /// mremap rule at work, and the counts of the trace.
    func testForkThenMremapOfSharedPages() throws {
        let plan = try ReplayPlan.load(path: fixture("fork_mremap_cutout.st"))
        XCTAssertTrue(plan.imported)
        for scheme in SchemeKind.allCases {
            // No migration: a page under migration when it moves is counted apart.
            var s = testSettings(scheme)
            s.background = false
            s.migrateEvery = 0
            let r = try TraceReplay.run(plan, settings: s)
            XCTAssertEqual(r.verdict, "SUCCESS", "\(scheme.rawValue): \(r.violations)")
            XCTAssertEqual(r.processes.forks, 1)
            XCTAssertEqual(r.processes.execs, 1)
            XCTAssertEqual(r.mremap.moves, 1)
            XCTAssertEqual(r.count(.madviseDrops), 1)
            XCTAssertEqual(r.metadata.finalProcesses, 2, "the cut-out ends with both processes alive")
            // 1 MiB at scale 16 is 16 model pages, 8 faulted, of which the
            // child writes 2; of the stack's 32 faulted pages, 8; of the
            // 256 KiB buffer's 2 and the heap's 3, none (25% rounds down).
            XCTAssertEqual(r.count(.cowWrites), 2 + 8)
            if scheme == .anongroup {
                XCTAssertEqual(r.mremap.pagesCopied, 6, "\(scheme.rawValue) copies the pages still shared")
            } else if scheme == .cowContext {
                XCTAssertEqual(r.mremap.pagesCopied, 0, "a remap record finds the shared pages at their new address")
                XCTAssertEqual(r.mremap.pagesKept, 6, "the pages still shared stay on the parent's context")
            } else {
                XCTAssertEqual(r.mremap.pagesCopied, 0, "anon_vma keeps page.index: nothing copied")
                XCTAssertGreaterThan(r.mremap.pagesKept, 0)
            }
            XCTAssertTrue(r.report.hasSuffix("SUCCESS\n"))
        }
    }

    /// A planted bug a replay reaches is found as in a plain run: FAILURE,
    /// exit status 1, with the classes the bug is known to break.
    func testInjectedBugsAreFound() throws {
        let plan = try ReplayPlan.load(path: fixture("fork_mremap_cutout.st"))
        for (scheme, bug) in [(SchemeKind.anongroup, Injection.mremapNoCopy), (.anonVma, .anonVmaMremapPgoff)] {
            let r = try TraceReplay.run(plan, settings: testSettings(scheme, inject: bug))
            XCTAssertEqual(r.verdict, "FAILURE", bug.rawValue)
            XCTAssertEqual(r.exitStatus, 1, bug.rawValue)
            XCTAssertGreaterThan(r.violationCount, 0)
            let kinds = Set(r.violationsByKind.keys.compactMap(ViolationKind.init(rawValue:)))
            XCTAssertFalse(kinds.isEmpty)
            XCTAssertTrue(kinds.isSubset(of: bug.caughtBy), "\(bug.rawValue): \(kinds) not in \(bug.caughtBy)")
            XCTAssertTrue(r.report.contains("FAILURE: "), r.report)
        }
    }

    /// A read-side section left open (a forgotten rcu_read_unlock) holds up
    /// every grace period: the replay ends as a STALL, exit status 3.
    func testForgottenUnlockIsAStall() throws {
        let plan = try ReplayPlan.load(path: fixture("fork_mremap_cutout.st"))
        var s = testSettings(.anongroup, inject: .rcuUnlockForgotten)
        s.threads = 1  // worker 0 runs every step, and the walks of its migrations
        s.stallTimeoutS = 1
        let r = try TraceReplay.run(plan, settings: s)
        XCTAssertEqual(r.verdict, "STALL", r.report)
        XCTAssertEqual(r.exitStatus, 3)
        XCTAssertEqual(r.violationsByKind, ["stall": 1])
        XCTAssertTrue(r.report.hasSuffix("STALL: 1 violation (stall=1)\n"), r.report)
    }

    /// A shared anonymous region mapped before forks (a database's shared
    /// buffers): one shmem inode, written by the parent, inherited by every
    /// child; the replay is clean under every scheme and the last exit
    /// evicts the inode.
    func testSharedAnonymousMappingIsAShmemInodeSharedByForks() throws {
        var records: [TraceRecord] = [
            TraceRecord(time: 0, event: .start(mm: 1)),
            TraceRecord(time: 1, event: .mmap(mm: 1, address: 0x7200_0000_0000, length: 64 << 12, protection: [.read, .write],
                                              shared: true, backing: .anon, offset: 0)),
        ]
        for c in 2...5 { records.append(TraceRecord(time: UInt64(c), event: .fork(parent: 1, child: MMID(c)))) }
        for c in 2...5 { records.append(TraceRecord(time: UInt64(10 + c), event: .exit(mm: MMID(c)))) }
        records.append(TraceRecord(time: 20, event: .exit(mm: 1)))
        let plan = ReplayPlan.make(records)
        for scheme in SchemeKind.allCases {
            let r = try TraceReplay.run(plan, settings: testSettings(scheme))
            XCTAssertEqual(r.verdict, "SUCCESS", "\(scheme): \(r.violations)")
            XCTAssertEqual(r.count(.mmapShared), 1)
            XCTAssertEqual(r.count(.mmapSharedFailed), 0)
            XCTAssertEqual(r.count(.shmemWrites), 2, "half of its 4 model pages (64 trace pages, scaled) written at mmap")
            XCTAssertTrue(r.leaks.isEmpty, "\(r.leaks)")
        }
    }

    /// A mapping far larger than the model's memory is scaled down to one VMA.
    func testHugeMappingsAreScaledAndUnmodelledOnesCounted() throws {
        let records: [TraceRecord] = [
            TraceRecord(time: 0, event: .start(mm: 1)),
            TraceRecord(time: 1, event: .mmap(mm: 1, address: 0x7000_0000_0000, length: 100 << 30, protection: [.read, .write],
                                              shared: false, backing: .anon, offset: 0)),
            TraceRecord(time: 2, event: .mmap(mm: 1, address: 0x7100_0000_0000, length: 8192, protection: [.read],
                                              shared: false, backing: .file(nil), offset: 0)),
            TraceRecord(time: 3, event: .mmap(mm: 1, address: 0x7200_0000_0000, length: 8192, protection: [.read, .write],
                                              shared: true, backing: .anon, offset: 0)),
            TraceRecord(time: 4, event: .munmap(mm: 1, address: 0x7000_0000_0000, length: 50 << 30)),
            TraceRecord(time: 5, event: .mprotect(mm: 1, address: 0x7000_0000_0000 + (50 << 30), length: 4096, protection: [.read])),
            TraceRecord(time: 6, event: .munmap(mm: 1, address: 0x7000_0000_0000, length: 100 << 30)),
            TraceRecord(time: 7, event: .munmap(mm: 1, address: 0x7100_0000_0000, length: 8192)),
            TraceRecord(time: 8, event: .exit(mm: 1)),
        ]
        let plan = ReplayPlan.make(records)
        for scheme in SchemeKind.allCases {
            var s = testSettings(scheme)
            s.inodes = 0  // no inodes: the file mapping stays out of the model
            let r = try TraceReplay.run(plan, settings: s)
            XCTAssertEqual(r.verdict, "SUCCESS", "\(r.violations)")
            XCTAssertEqual(r.count(.mmapModelled), 1)
            // 100 GiB is 64 model pages at any scale; half of them faulted.
            XCTAssertEqual(r.count(.mapFaults), 32)
            XCTAssertEqual(r.count(.mmapFile), 1)
            XCTAssertEqual(r.count(.mmapShared), 1, "a shared anonymous mapping is a shmem inode")
            XCTAssertEqual(r.count(.mmapSharedFailed), 0)
            XCTAssertEqual(r.count(.munmapPartial), 1, "the first munmap covers half of it")
            XCTAssertEqual(r.count(.munmapWhole), 1)
            XCTAssertEqual(r.count(.munmapNotModelled), 1, "the file mapping's munmap")
            XCTAssertEqual(r.count(.mprotects), 1)
            XCTAssertEqual(r.eventsReplayed, records.count)
        }
    }

    /// More mappings than an mm's 16 VMAs: evicted (least recently used) or
    /// left out, counted either way.
    func testFullTableEvictsOrSkips() throws {
        var records = [TraceRecord(time: 0, event: .start(mm: 1))]
        for i in 0..<20 {
            records.append(TraceRecord(time: UInt64(i + 1), event: .mmap(mm: 1, address: 0x7000_0000_0000 + UInt64(i) << 24, length: 65536,
                                                                          protection: [.read, .write], shared: false, backing: .anon, offset: 0)))
        }
        let plan = ReplayPlan.make(records)
        var s = testSettings(.anongroup)
        let evict = try TraceReplay.run(plan, settings: s)
        XCTAssertEqual(evict.verdict, "SUCCESS")
        XCTAssertEqual(evict.count(.mmapModelled), 20)
        XCTAssertEqual(evict.count(.mmapEvicted), 5, "15 fit beside the stack")
        s.evictWhenFull = false
        let skip = try TraceReplay.run(plan, settings: s)
        XCTAssertEqual(skip.verdict, "SUCCESS")
        XCTAssertEqual(skip.count(.mmapModelled), 15)
        XCTAssertEqual(skip.count(.mmapTableFull), 5)
    }

    /// Bad input: one error naming the file (and the line when a line is at fault).
    func testBadInputsAreRefusedWithFileAndLine() throws {
        let dir = NSTemporaryDirectory() + "trace-replay-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func refused(_ path: String) -> TraceError? {
            do { _ = try ReplayPlan.load(path: path); return nil } catch { return error }
        }
        let missing = dir + "/missing.trace.gz"
        XCTAssertTrue(refused(missing)?.description.hasPrefix(missing) ?? false)

        let malformed = dir + "/malformed.trace"
        try "#rmap-trace 1\n0 start 1\n5 mmap 1 0x1000 notanumber rw- private anon 0x0\n".write(toFile: malformed, atomically: true, encoding: .utf8)
        let e = refused(malformed)
        XCTAssertEqual(e?.line, 3)
        XCTAssertTrue(e?.description.hasPrefix(malformed + ":3: ") ?? false, "\(String(describing: e))")

        // A gzip file cut in half.
        let whole = dir + "/whole.trace.gz"
        let w = try TraceWriter(path: whole)
        try w.write(TraceRecord(time: 0, event: .start(mm: 1)))
        for i in 0..<2000 {
            try w.write(TraceRecord(time: UInt64(i), event: .mmap(mm: 1, address: UInt64(i) << 20, length: 4096, protection: [.read],
                                                                  shared: false, backing: .anon, offset: 0)))
        }
        try w.close()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = dir + "/cut.trace.gz"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        XCTAssertTrue(refused(cut)?.description.hasPrefix(cut) ?? false)
        XCTAssertNotNil(try? ReplayPlan.load(path: whole))
    }

    func testSettingsAreRangeChecked() {
        var s = ReplaySettings()
        XCTAssertNil(s.validate())
        s.threads = 0
        XCTAssertEqual(s.validate(), "threads must be 1...256 (got 0)")
        s = ReplaySettings()
        s.faultPercent = 101
        XCTAssertEqual(s.validate(), "fault percent must be 0...100% (got 101)")
        s = ReplaySettings()
        s.scale = 0
        XCTAssertNotNil(s.validate())
        s = ReplaySettings()
        s.injection = .anonVmaMremapPgoff
        XCTAssertNotNil(s.validate(), "a bug of the other scheme")
    }
}
