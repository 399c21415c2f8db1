import ConcurrentRmap
import Foundation
import XCTest
@testable import Exploration
@testable import RunEngine
@testable import StressSupport

/// Controlled schedules: determinism, exact replay, shrinking, schedule
/// files, and the controlled platform's model of locks and RCU.
final class ControlledScheduleTests: XCTestCase {
    func base(_ scheme: SchemeKind = .anongroup, _ inject: Injection = .none, threads: Int = 3) -> RunSettings {
        ControlledSpec.testSettings(scheme: scheme, threads: threads, seed: 11, inject: inject)
    }

    func find(_ scheme: SchemeKind, _ inject: Injection, steps: Int = 3000, budget: Int = 2000) throws -> Explorer.Found {
        let sum = try Explorer.explore(base: base(scheme, inject), strategy: .random, steps: steps, schedules: budget)
        return try XCTUnwrap(sum.found, "\(inject.rawValue) not found in \(budget) schedules")
    }

    /// Lockdep for the model: a planted inversion is reported as lock-order,
    /// naming both classes and both call sites, in a schedule that need not
    /// deadlock; a walk without its ptl as lock-not-held.
    func testLockOrderAndLockHeldChecks() throws {
        let f = try find(.anonVma, .prepareLockInversion, budget: 50)
        let v = try XCTUnwrap(f.outcome.violation)
        XCTAssertEqual(v.kind, .lockOrder, v.description)
        XCTAssertTrue(v.detail.contains("rmap_list_lock") && v.detail.contains("ptl"), v.detail)
        XCTAssertEqual(v.detail.components(separatedBy: "AnonVMARmap.swift:").count, 3, "both call sites: \(v.detail)")
        XCTAssertNil(f.outcome.abandoned, "reported without a deadlock")
        let g = try find(.anongroup, .walkNoPageTableLock, budget: 50)
        XCTAssertEqual(g.outcome.violation?.kind, .lockNotHeld, g.outcome.violation?.description ?? "")
        // The correct model under the locking modes that take list locks.
        for scheme in SchemeKind.allCases {
            for sync in [ListSync.mutex, .rwlock] {
                var s = base(scheme)
                s.sync = sync
                let sum = try Explorer.explore(base: s, strategy: .random, steps: 3000, schedules: 30)
                XCTAssertNil(sum.found, "\(scheme)/\(sync): \(sum.found?.outcome.violation?.description ?? "")")
            }
        }
    }

    /// anon-vma-chain under controlled schedules: its fork-order and
    /// grace-period bugs are found with their classes; the correct model,
    /// reuse on and off, under every list protection, is clean.
    func testAnonVMAChainBugsFoundAndCorrectModelClean() throws {
        let f = try find(.anonVMAChain, .avcForkLinkAfterCopy, budget: 200)
        XCTAssertTrue(Injection.avcForkLinkAfterCopy.caughtBy.contains(try XCTUnwrap(f.outcome.violation).kind))
        // A grace-period bug: the root lock masks it, the RCU-only walk meets it.
        var gs = base(.anonVMAChain, .avcFreeNoGrace)
        gs.anonVmaWalk = Injection.avcFreeNoGrace.selftestAnonVmaWalk
        XCTAssertEqual(gs.anonVmaWalk, .rcuOnly)
        let g = try XCTUnwrap(try Explorer.explore(base: gs, strategy: .random, steps: 3000, schedules: 200).found)
        XCTAssertEqual(g.outcome.violation?.kind, .lifetime, g.outcome.violation?.description ?? "")
        let walks: [(ListSync, AnonVMAWalk)] = [(.rcu, .locked), (.rcu, .rcuOnly), (.mutex, .locked), (.rwlock, .locked)]
        for reuse in [true, false] {
            for (sync, walk) in walks {
                var s = base(.anonVMAChain)
                s.sync = sync
                s.anonVmaWalk = walk
                s.anonVmaReuse = reuse
                let sum = try Explorer.explore(base: s, strategy: .random, steps: 3000, schedules: 20)
                XCTAssertNil(sum.found, "reuse \(reuse) \(sync) \(walk): \(sum.found?.outcome.violation?.description ?? "")")
            }
        }
    }

    /// The same spec twice: the same steps, decisions and operations.
    func testAnExecutionIsAFunctionOfItsSpec() throws {
        for scheme in SchemeKind.allCases {
            for strategy in [ScheduleStrategy.random, .pct(depth: 3)] {
                let spec = ControlledSpec(settings: base(scheme), strategy: strategy, scheduleSeed: 99, steps: 1500)
                let a = try ControlledRun.execute(spec)
                let b = try ControlledRun.execute(spec)
                XCTAssertNil(a.violation, "\(scheme) \(strategy): \(a.violation?.description ?? "")")
                XCTAssertEqual(a.steps, b.steps)
                XCTAssertEqual(a.switches, b.switches)
                XCTAssertEqual(a.operations, b.operations)
                XCTAssertGreaterThan(a.operations, 50, "the schedule ran operations")
                XCTAssertGreaterThan(a.gracePeriods, 0, "workers waited for grace periods and freed their slots")
                XCTAssertEqual(a.gracePeriods, b.gracePeriods)
                // Replaying its own decisions gives the same execution.
                var r = spec
                r.strategy = .replay
                r.switches = a.switches
                let c = try ControlledRun.execute(r, strict: true)
                XCTAssertNil(c.divergence)
                XCTAssertEqual(c.steps, a.steps)
                XCTAssertEqual(c.switches, a.switches)
            }
        }
    }

    /// Three bugs (two schemes): each found schedule, replayed 20 times,
    /// ends in the identical violation at the identical step.
    func testReplayIsExactForThreeBugs() throws {
        for (scheme, inject) in [(SchemeKind.anongroup, Injection.mremapNoCopy), (.anongroup, .forkLinkAfterCopy),
                                 (.anonVma, .anonVmaNoRecheck)] {
            let f = try find(scheme, inject)
            var spec = f.spec
            spec.strategy = .replay
            spec.switches = f.outcome.switches
            spec.steps = f.spec.steps
            let want = try XCTUnwrap(f.outcome.violation)
            for _ in 0..<20 {
                let o = try ControlledRun.execute(spec, strict: true)
                XCTAssertNil(o.divergence)
                XCTAssertEqual(o.violation?.description, want.description, inject.rawValue)
                XCTAssertEqual(o.step, f.outcome.step, inject.rawValue)
            }
        }
    }

    /// Shrinking keeps the violation kind, never grows the schedule, and
    /// its result replays strictly to the same end.
    func testShrinkKeepsTheKindAndReplaysStrictly() throws {
        let f = try find(.anongroup, .forkLinkAfterCopy)
        let r = try Shrinker.shrink(f.spec, f.outcome, maxAttempts: 150)
        XCTAssertEqual(r.outcome.violation?.kind, f.outcome.violation?.kind)
        XCTAssertLessThanOrEqual(r.spec.settings.threads, f.spec.settings.threads)
        XCTAssertLessThanOrEqual(r.outcome.switches.count, f.outcome.switches.count)
        let again = try ControlledRun.execute(r.spec, strict: true)
        XCTAssertNil(again.divergence)
        XCTAssertEqual(again.violation?.description, r.outcome.violation?.description)
        XCTAssertEqual(again.step, r.outcome.step)
    }

    /// A reader that never leaves its section and a forgotten unlock both
    /// end in a stall with a reason, not a hang.
    func testStuckReadersAreStalls() throws {
        for scheme in SchemeKind.allCases where Injection.rcuReaderStall.applies(to: scheme) {
            let parked = try find(scheme, .rcuReaderStall, steps: 2000, budget: 50)
            XCTAssertEqual(parked.outcome.violation?.kind, .stall)
            XCTAssertNotNil(parked.outcome.abandoned)
            // With one thread nothing else can run: the same verdict.
            var one = parked.spec
            one.settings.threads = 1
            let alone = try ControlledRun.execute(one)
            XCTAssertEqual(alone.violation?.kind, .stall)
            XCTAssertTrue(alone.abandoned?.contains("blocked for good") == true, alone.abandoned ?? "")
        }
        let open = try find(.anonVma, .rcuUnlockForgotten, steps: 2000, budget: 50)
        XCTAssertEqual(open.outcome.violation?.kind, .stall)
        XCTAssertTrue(open.outcome.violation!.detail.contains("read-side section"), open.outcome.violation!.detail)
    }

    /// synchronize_rcu in the scheduler: it returns only after every reader
    /// that was inside a read-side section when it began has left; readers
    /// that enter later do not hold it.
    func testSynchronizeWaitsForEarlierReadersOnly() throws {
        var waited = 0
        for seed in UInt64(0)..<40 {
            let s = ControlledScheduler(threads: 2, strategy: .random, seed: seed, stepBudget: 1000)
            ControlledScheduler.active = s
            defer { ControlledScheduler.active = nil }
            let reader = startThread {
                s.threadBegin(0)
                ControlledPlatform.rcuReadLock()
                for _ in 0..<5 { ControlledPlatform.schedulingPoint() }
                ControlledPlatform.rcuReadUnlock()
                s.threadEnd(0)
            }
            let updater = startThread {
                s.threadBegin(1)
                ControlledPlatform.synchronizeRCU()
                s.threadEnd(1)
            }
            s.runToCompletion()
            joinThread(reader)
            joinThread(updater)
            XCTAssertNil(s.aborted)
            // Positions in the trace, which is in the order things happened
            // (several events can share a step).
            let e = s.lastEvents
            let enter = try XCTUnwrap(e.firstIndex { $0.kind == .rcuEnter })
            let exit = try XCTUnwrap(e.firstIndex { $0.kind == .rcuExit })
            let begin = try XCTUnwrap(e.firstIndex { $0.kind == .gracePeriodBegin })
            let end = try XCTUnwrap(e.firstIndex { $0.kind == .gracePeriodEnd })
            if enter < begin && exit > begin {
                XCTAssertGreaterThanOrEqual(end, exit, "seed \(seed): the grace period ended inside a reader it must wait for")
                waited += 1
            }
            // Polled form: a snapshot taken now has not elapsed; the one
            // before the grace period has.
            XCTAssertTrue(ControlledPlatform.gracePeriodElapsed(since: 0))
            XCTAssertFalse(ControlledPlatform.gracePeriodElapsed(since: ControlledPlatform.gracePeriodSnapshot()))
        }
        XCTAssertGreaterThan(waited, 0, "some schedule had the grace period begin inside the read-side section")
    }

    /// A grace period that waits for a reader blocked for good is a
    /// deadlock with its reason, not a hang.
    func testSynchronizeOnAStuckReaderIsADeadlock() {
        // Default policy: worker 0 enters and blocks, then worker 1 waits.
        let s = ControlledScheduler(threads: 2, strategy: .replay, seed: 0, stepBudget: 1000)
        ControlledScheduler.active = s
        defer { ControlledScheduler.active = nil }
        _ = Unmanaged.passRetained(s)  // its two threads stay blocked on it
        for id in 0..<2 {
            pthread_detach(startThread {
                s.threadBegin(id)
                if id == 0 {
                    ControlledPlatform.rcuReadLock()
                    ControlledPlatform.park()
                }
                ControlledPlatform.synchronizeRCU()
                s.threadEnd(id)
            })
        }
        s.runToCompletion()
        let why = s.aborted ?? ""
        XCTAssertTrue(why.contains("worker 1 waits in synchronize_rcu"), why)
        XCTAssertTrue(why.contains("for the read-side section of worker 0"), why)
    }

    /// The correct model: a few hundred schedules of each scheme and sync
    /// mode run clean.
    func testCorrectModelRunsClean() throws {
        for scheme in SchemeKind.allCases {
            for sync in [ListSync.rcu, .rwlock, .mutex] {
                var s = base(scheme)
                s.sync = sync
                let sum = try Explorer.explore(base: s, strategy: sync == .rcu ? .random : .pct(depth: 3), steps: 1500, schedules: 60)
                XCTAssertNil(sum.found, "\(scheme) \(sync): \(sum.found?.outcome.violation?.description ?? "")")
            }
        }
    }

    // MARK: Schedule files

    func tempFile(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crm-sched-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    func testScheduleFileRoundTripsAndRefusesBadOrForeignFiles() throws {
        let f = try find(.anongroup, .mremapNoCopy)
        let file = ScheduleFile(spec: f.spec, strategy: .random, outcome: f.outcome, explored: f.schedules, shrunkFrom: nil)
        let path = tempFile("s.json")
        try file.write(to: path)
        let back = try ScheduleFile.load(path)
        XCTAssertEqual(back, file)
        XCTAssertEqual(try back.spec.switches, f.outcome.switches)

        func refuses(_ text: String, _ needle: String, line: UInt = #line) {
            let p = tempFile("bad.json")
            _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
            XCTAssertThrowsError(try ScheduleFile.load(p), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(e)", line: line)
                XCTAssertFalse("\(e)".contains("\n"), "one line", line: line)
            }
        }
        let json = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        // Any edit, however small or plausible, breaks the digest.
        let sum = try XCTUnwrap(json.range(of: #""digest" : ""#).map { String(json[$0.upperBound...].prefix(64)) })
        let edits: [(String, String)] = [
            ("\"schedule_seed\" : ", "\"schedule_seed\" : 1"), ("\"steps\" : ", "\"steps\" : 1000000000000000000, \"x\" : "),
            ("\"inject\" : \"mremap-no-copy\"", "\"inject\" : \"none\""), ("\"kind\" : \"", "\"kind\" : \"x"),
            ("\"format\"", "\"frmat\""), ("\"format\" :", "\"strategy\" : \"pct:2\", \"format\" :"),
            ("\"format\" :", "\"junk\" : \"" + String(repeating: "a", count: 1 << 20) + "\", \"format\" :"),
            ("\"switches\" : \"", "\"switches\" : \"1:0 "), ("{", "{ "),
        ]
        for (a, b) in edits {
            let edited = json.replacingOccurrences(of: a, with: b)
            XCTAssertNotEqual(edited, json, a)
            refuses(edited, "edited or damaged")
        }
        refuses(String(json.prefix(json.count / 2)), "edited or damaged")
        refuses(String(json.prefix(20)), "no single digest")
        refuses(json.replacingOccurrences(of: sum, with: String(repeating: "0", count: 64)), "edited or damaged")
        refuses("{}", "no single digest")
        // Edits re-signed (someone who recomputes the digest) still meet
        // every structural check.
        func signed(_ text: String) -> String {
            let parts = text.components(separatedBy: #""digest" : ""#)
            let body = parts[0] + #""digest" : """# + parts[1].dropFirst(65)
            return body.replacingOccurrences(of: #""digest" : """#, with: #""digest" : ""# + Digest.sha256Hex(Data(body.utf8)) + "\"")
        }
        XCTAssertNoThrow(try { let p = tempFile("ok.json"); try Data(signed(json).utf8).write(to: URL(fileURLWithPath: p)); _ = try ScheduleFile.load(p) }())
        refuses(signed(json.replacingOccurrences(of: StressVersion.gitCommit, with: "0123456789ab")), "commit")
        refuses(signed(json.replacingOccurrences(of: file.build.binary, with: "ffffffffffffffff")), "another build")
        refuses(signed(json.replacingOccurrences(of: "\"switches\" : \"", with: "\"switches\" : \"x:y ")), "STEP:THREAD")
        refuses(signed(json.replacingOccurrences(of: "\"switches\" : \"", with: "\"switches\" : \"1:9 ")), "names thread 9")
        refuses(signed(json.replacingOccurrences(of: "\"format\" : \"concurrent-rmap-schedule\"", with: "\"format\" : \"other\"")), "not a schedule file")
        refuses(signed(json.replacingOccurrences(of: "\"steps\" : \(file.steps)", with: "\"steps\" : 1000000000000000000")), "steps must be")
    }

    func testSwitchesEncodeAndDecode() throws {
        let s = [ScheduleSwitch(step: 3, thread: 1), ScheduleSwitch(step: 7, thread: 2), ScheduleSwitch(step: 9, thread: 0)]
        let text = ScheduleFile.encodeSwitches(s)
        XCTAssertEqual(text, "3:1 7:2 9:0")
        XCTAssertEqual(try ScheduleFile.decodeSwitches(text, threads: 3), s)
        XCTAssertThrowsError(try ScheduleFile.decodeSwitches("5:0 4:1", threads: 2))
        // Version 1's modelled call_rcu thread is gone.
        XCTAssertThrowsError(try ScheduleFile.decodeSwitches("3:1 7:r", threads: 2))
        XCTAssertEqual(try ScheduleFile.decodeSwitches("", threads: 2), [])
    }
}
