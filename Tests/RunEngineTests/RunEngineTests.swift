import ConcurrentRmap
import Foundation
import XCTest
@testable import RunEngine
@testable import StressSupport

final class MixParsingTests: XCTestCase {
    func testDefaultMixRoundTrips() throws {
        let m = try OperationMix(parsing: OperationMix.default.description)
        XCTAssertEqual(m, OperationMix.default)
        XCTAssertEqual(m.weights[OpKind.fault.rawValue], 60)
        XCTAssertEqual(m.weights[OpKind.migrate.rawValue], 8)
    }

    func testOmittedOperationsGetZero() throws {
        let m = try OperationMix(parsing: "fault=1")
        XCTAssertEqual(m.weights.reduce(0, +), 1)
        XCTAssertTrue(m.table().allSatisfy { $0 == .fault })
    }

    func testTableFollowsWeights() throws {
        let t = try OperationMix(parsing: "fault=3,reclaim=1").table()
        XCTAssertEqual(t.count, 1024)
        XCTAssertEqual(t.filter { $0 == .fault }.count, 768)
        XCTAssertEqual(t.filter { $0 == .reclaim }.count, 256)
    }

    func testTinyWeightIsNotDropped() throws {
        let t = try OperationMix(parsing: "fault=1000000,exec=1,migrate=1").table()
        XCTAssertEqual(t.count, 1024)
        XCTAssertEqual(t.filter { $0 == .exec }.count, 1)
        XCTAssertEqual(t.filter { $0 == .migrate }.count, 1)
    }

    func testBadMixes() {
        XCTAssertThrowsError(try OperationMix(parsing: "foo=1")) {
            XCTAssertEqual($0 as? OperationMix.ParseError, .unknownOperation("foo"))
        }
        XCTAssertThrowsError(try OperationMix(parsing: "fault=-1")) {
            XCTAssertEqual($0 as? OperationMix.ParseError, .badWeight("fault=-1"))
        }
        XCTAssertThrowsError(try OperationMix(parsing: "fault=x")) {
            XCTAssertEqual($0 as? OperationMix.ParseError, .badWeight("fault=x"))
        }
        XCTAssertThrowsError(try OperationMix(parsing: "fault")) {
            XCTAssertEqual($0 as? OperationMix.ParseError, .malformed("fault"))
        }
        XCTAssertThrowsError(try OperationMix(parsing: "fault=1,fault=2")) {
            XCTAssertEqual($0 as? OperationMix.ParseError, .duplicate("fault"))
        }
        XCTAssertThrowsError(try OperationMix(parsing: "fault=0,fork=0")) {
            XCTAssertEqual($0 as? OperationMix.ParseError, .allZero)
        }
        XCTAssertThrowsError(try OperationMix(parsing: ""))
    }
}

final class ReplayTests: XCTestCase {
    /// The operation-kind stream depends on the seed and worker alone, not on
    /// how many random numbers the operations drew in between.
    func testOperationStreamFollowsFromSeedOnly() {
        var a = CPUState(id: 3, seed: 99)
        var b = CPUState(id: 3, seed: 99)
        var c = CPUState(id: 4, seed: 99)
        var sa: [UInt64] = [], sb: [UInt64] = [], sc: [UInt64] = []
        for i in 0..<100 {
            sa.append(a.randomOperation())
            for _ in 0..<(i % 7) { _ = b.random() }  // b's operations drew more numbers
            sb.append(b.randomOperation())
            sc.append(c.randomOperation())
        }
        XCTAssertEqual(sa, sb)
        XCTAssertNotEqual(sa, sc)
    }
}

final class OptionValidationTests: XCTestCase {
    func testDefaultsAreValid() { XCTAssertNil(RunSettings().validate()) }

    func testBadSettingsNameTheirRange() {
        func bad(_ f: (inout RunSettings) -> Void, _ needle: String) {
            var s = RunSettings()
            f(&s)
            let p = s.validate()
            XCTAssertNotNil(p, needle)
            XCTAssertTrue(p?.contains(needle) ?? false, "\(p ?? "nil") should mention \(needle)")
        }
        bad({ $0.threads = 0 }, "1...4096")
        bad({ $0.durationS = -1 }, "0.1...604800")
        bad({ $0.durationS = .nan }, "duration")
        bad({ $0.durationS = 1e308 }, "604800")
        bad({ $0.frames = 0 }, "frames")
        bad({ $0.vmaPages = 100 }, "divisor of 512")
        bad({ $0.stallTimeoutS = 0.001 }, "1...3600")
        bad({ $0.auditIntervalS = 1.9e10 }, "audit interval")
        bad({ $0.population = 10_000 }, "population")
        bad({ $0.mix = "fault=1,nosuch=2" }, "nosuch")
    }

    func testSettingsRoundTripThroughJSONWithSnakeCaseKeys() throws {
        var s = RunSettings()
        s.threads = 3; s.ops = 12345; s.seed = UInt64.max; s.inject = .walkNoPageTableLock; s.rcu = .qsbr
        let data = try ResultFile.encoder().encode(s)
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        for k in ["threads", "duration_s", "ops", "warmup_s", "seed", "mix", "rcu", "sync", "checks", "frames", "swap_slots",
                  "processes", "population", "family_size", "vma_pages", "vmas_per_process", "audit_interval_s",
                  "stall_timeout_s", "gp_probe_interval_s", "latency_sample", "sample_interval_s", "pin", "keep_going",
                  "inject", "perturb", "recycling"] {
            XCTAssertNotNil(obj[k], k)
        }
        XCTAssertEqual(try ResultFile.decoder().decode(RunSettings.self, from: data), s)
        // An older file without the newer keys still loads, with defaults.
        let old = try ResultFile.decoder().decode(RunSettings.self, from: Data(#"{"threads": 7}"#.utf8))
        XCTAssertEqual(old.threads, 7)
        XCTAssertEqual(old.durationS, RunSettings().durationS)
        // Files from before race hunting was the default ran without it.
        XCTAssertFalse(old.perturb)
        XCTAssertEqual(old.recycling, .throughput)
    }

    /// `stress run` hunts races by default; the machine gets the mode, and
    /// the child command line spells both settings out either way.
    func testRunHuntsByDefaultAndSaysSo() {
        let s = RunSettings()
        XCTAssertTrue(s.perturb)
        XCTAssertEqual(s.recycling, .hunt)
        XCTAssertEqual(s.machineConfig.recycling, .hunt)
        XCTAssertTrue(s.machineConfig.perturb)
        XCTAssertTrue(s.arguments.contains("--perturb"))
        XCTAssertEqual(s.arguments.split(separator: "--recycling").count, 2)
        var m = s
        m.perturb = false
        m.recycling = .throughput
        XCTAssertTrue(m.arguments.contains("--no-perturb"))
        XCTAssertEqual(m.arguments[m.arguments.firstIndex(of: "--recycling")! + 1], "throughput")
    }

    /// Libraries and the i_mmap structure: spelled out on every command
    /// line, carried into the machine, read back; an old file without the
    /// keys ran with no library and a list.
    func testLibrariesAndIMmapSettings() throws {
        var s = RunSettings()
        XCTAssertEqual(s.libraries, 1)
        XCTAssertEqual(s.arguments[s.arguments.firstIndex(of: "--libraries")! + 1], "1")
        XCTAssertEqual(s.arguments[s.arguments.firstIndex(of: "--i-mmap")! + 1], "list")
        s.libraries = 3
        s.iMmap = .tree
        XCTAssertEqual(s.machineConfig.libraries, 3)
        XCTAssertEqual(s.machineConfig.iMmap, .tree)
        let back = try ResultFile.decoder().decode(RunSettings.self, from: ResultFile.encoder().encode(s))
        XCTAssertEqual(back, s)
        let old = try ResultFile.decoder().decode(RunSettings.self, from: Data(#"{"scheme": "anongroup"}"#.utf8))
        XCTAssertEqual(old.libraries, 0)
        XCTAssertEqual(old.iMmap, .list)
        s.libraries = 7
        XCTAssertEqual(s.validate(), "libraries must be 0...4 (got 7)")
    }

    /// The inode counts: spelled out, carried into the machine, read back;
    /// a file without the keys ran with the machine's defaults.
    func testInodeCountSettings() throws {
        var s = RunSettings()
        XCTAssertEqual(s.arguments[s.arguments.firstIndex(of: "--inodes")! + 1], "\(MachineConfig().inodes)")
        XCTAssertEqual(s.arguments[s.arguments.firstIndex(of: "--shmem-inodes")! + 1], "\(MachineConfig().shmemInodes)")
        s.inodes = 5
        s.shmemInodes = 0
        XCTAssertEqual(s.machineConfig.inodes, 5)
        XCTAssertEqual(s.machineConfig.shmemInodes, 0)
        XCTAssertEqual(try ResultFile.decoder().decode(RunSettings.self, from: ResultFile.encoder().encode(s)), s)
        let old = try ResultFile.decoder().decode(RunSettings.self, from: Data(#"{"scheme": "anongroup"}"#.utf8))
        XCTAssertEqual(old.inodes, MachineConfig().inodes)
        XCTAssertEqual(old.shmemInodes, MachineConfig().shmemInodes)
        s.inodes = 0
        XCTAssertEqual(s.validate(), "libraries (1) must not outnumber inodes (0)")
    }

    func testInjectionNamesParse() {
        for i in Injection.allCases { XCTAssertEqual(Injection(rawValue: i.rawValue), i) }
        XCTAssertNil(Injection(rawValue: "no-such-bug"))
        XCTAssertEqual(Injection.allCases.count, 54)  // six of them the file branch's, one the i_mmap tree's, two shmem's, five pte-chains', nine cow-context's
        // Every planted bug says what may catch it.
        for i in Injection.allCases where i != .none { XCTAssertFalse(i.caughtBy.isEmpty, i.rawValue) }
        // Each scheme's catalogue: its own bugs and the shared ones, no other scheme's.
        for scheme in SchemeKind.allCases {
            let list = Injection.catalogue(for: scheme)
            XCTAssertFalse(list.contains(.none))
            XCTAssertTrue(list.allSatisfy { $0.scheme == nil || $0.scheme == scheme })
            XCTAssertEqual(list.count, Injection.allCases.filter { $0 != .none && ($0.scheme ?? scheme) == scheme && $0.applies(to: scheme) }.count)
        }
        XCTAssertEqual(Injection.catalogue(for: .anongroup).count, 24)
        XCTAssertEqual(Injection.catalogue(for: .anonVma).count, 24)
        XCTAssertEqual(Injection.catalogue(for: .anonVMAChain).count, 23)
        // Its five and the shared ones but the four that need an RCU reader of the rmap.
        XCTAssertEqual(Injection.catalogue(for: .pteChains).count, 17)
        XCTAssertEqual(Injection.catalogue(for: .cowContext).count, 25)
    }

    func testEventNamesAreSnakeCase() {
        XCTAssertEqual(Event.firstTouch.name, "first_touch")
        XCTAssertEqual(Event.walkVisited.name, "walk_visited")
        XCTAssertEqual(Event.faultOOM.name, "fault_oom")
        for e in Event.allCases { XCTAssertEqual(e.name, e.name.lowercased(), e.name) }
    }
}

final class VerdictTests: XCTestCase {
    func small(_ threads: Int, _ seconds: Double) -> RunSettings {
        var o = RunSettings()
        o.threads = threads
        o.durationS = seconds
        o.seed = 42
        o.frames = 1024
        o.swapSlots = 8192
        o.processes = 32
        o.auditIntervalS = 0.5
        return o
    }

    func testCleanRunSucceeds() throws {
        var o = small(2, 1.0)
        o.frames = 256  // short of demand, so reclaim has work
        o.sampleIntervalS = 0.2
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.success, "\(r.violations.prefix(3))")
        XCTAssertEqual(r.exitStatus, 0)
        XCTAssertTrue(r.leaks.isEmpty)
        XCTAssertEqual(r.leakCheck, "clean")
        XCTAssertEqual(r.phase, "done")
        XCTAssertGreaterThanOrEqual(r.audits, 2)
        for op in OpKind.allCases { XCTAssertGreaterThan(r.ops[op.name]?.completed ?? 0, 0, op.name) }
        XCTAssertEqual(r.totalCompleted, r.ops.values.reduce(0) { $0 + $1.completed })
        XCTAssertEqual(r.totalIdle, r.ops.values.reduce(0) { $0 + $1.idle })
        XCTAssertEqual(r.opsPerS, Double(r.totalCompleted) / r.elapsedS, accuracy: 1e-6 * r.opsPerS)
        XCTAssertGreaterThan(r.walks.count, 0)
        XCTAssertNil(r.recentOperations)
        XCTAssertFalse(r.samples.isEmpty)
    }

    /// The anon_vma scheme under the same load: every operation, split
    /// included, and the checks clean; the walks visit VMAs.
    func testCleanAnonVMARunSucceeds() throws {
        var o = small(2, 1.0)
        o.scheme = .anonVma
        o.frames = 256
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.success, "\(r.violations.prefix(3))")
        XCTAssertEqual(r.leakCheck, "clean")
        XCTAssertEqual(r.settings.scheme, .anonVma, "the result records the scheme")
        for op in OpKind.allCases { XCTAssertGreaterThan(r.ops[op.name]?.completed ?? 0, 0, op.name) }
        XCTAssertEqual(r.events["mremap_copy"] ?? 0, 0, "anon_vma never copies on mremap")
        XCTAssertGreaterThan(r.events["mremap_keep"] ?? 0, 0)
        XCTAssertGreaterThan(r.walks.count, 0)
    }

    /// anon-vma-chain under the same load, with reuse on and off: every
    /// operation and the checks clean; the setting is recorded, rebuilt by
    /// `arguments`, and refused for another scheme.
    func testCleanAnonVMAChainRunSucceeds() throws {
        for reuse in [true, false] {
            var o = small(2, 1.0)
            o.scheme = .anonVMAChain
            o.frames = 256
            o.anonVmaReuse = reuse
            let r = try StressEngine.run(o)
            XCTAssertEqual(r.verdict, Verdict.success, "reuse \(reuse): \(r.violations.prefix(3))")
            XCTAssertEqual(r.leakCheck, "clean")
            XCTAssertEqual(r.settings.anonVmaReuse, reuse)
            for op in OpKind.allCases { XCTAssertGreaterThan(r.ops[op.name]?.completed ?? 0, 0, op.name) }
            XCTAssertEqual(r.events["mremap_copy"] ?? 0, 0, "anon_vma_chain never copies on mremap")
            XCTAssertGreaterThan(r.walks.count, 0)
            XCTAssertEqual(o.arguments[o.arguments.firstIndex(of: "--avc-reuse")! + 1], reuse ? "on" : "off")
            let back = try JSONDecoder().decode(RunSettings.self, from: try JSONEncoder().encode(o))
            XCTAssertEqual(back.anonVmaReuse, reuse)
        }
        var bad = small(2, 1.0)
        bad.scheme = .anonVma
        bad.anonVmaReuse = false
        XCTAssertNotNil(bad.validate(), "reuse off is refused for anon-vma")
    }

    func testOpsBudgetEndsTheRunAtExactlyThatManyCompletedOperations() throws {
        var o = small(2, 60)
        o.ops = 20_000
        o.warmupS = 0.2
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.success)
        XCTAssertEqual(r.totalCompleted, 20_000, "the budget counts completed operations after the warm-up")
        XCTAssertLessThan(r.elapsedS, 30)
        XCTAssertGreaterThan(r.warmupS, 0.15)
    }

    func testPopulationIsStartedUpFrontAndHeld() throws {
        var o = small(2, 1.5)
        o.mix = "fault=100"
        o.population = 20
        o.sampleIntervalS = 0.25
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.success)
        XCTAssertTrue(r.samples.allSatisfy { $0.processes == 20 }, "\(r.samples.map(\.processes))")
    }

    func testTwoThreadRunsRecordTheCrossCoreRoundTrip() throws {
        var o = small(2, 0.5)
        o.mix = "fault=100"
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.success)
        if HostInfo.cpuCount >= 2 {
            // Before and after the workers; a round trip is two line moves.
            XCTAssertEqual(r.crossCoreRoundTripNs?.count, 2)
            XCTAssertTrue(r.crossCoreRoundTripNs?.allSatisfy { $0 > 1 && $0 < 1_000_000 } ?? false, "\(r.crossCoreRoundTripNs ?? [])")
        } else {
            XCTAssertNil(r.crossCoreRoundTripNs)
        }
        o.threads = 1
        XCTAssertNil(try StressEngine.run(o).crossCoreRoundTripNs, "a 1-thread run shares no line")
    }

    /// The named workloads' scripts run under both list schemes with every
    /// check on: AIM7 builds families and tears them down (walks of the
    /// shared pages scan the family), the chain forks and exits in turn
    /// (one process per worker at a time), the zygote keeps its children.
    func testNamedWorkloadsRunTheirScripts() throws {
        for scheme in [SchemeKind.anongroup, .anonVma] {
            for shape in [WorkloadShape.aim7, .forkChain, .zygote] {
                var o = small(2, 0.6)
                o.scheme = scheme
                o.workload = shape
                o.processes = 16
                o.sampleIntervalS = 0.1
                let r = try StressEngine.run(o)
                let what = "\(scheme.rawValue) \(shape.rawValue)"
                XCTAssertEqual(r.verdict, Verdict.success, "\(what): \(r.violations.prefix(3))")
                XCTAssertEqual(r.leakCheck, "clean", what)
                XCTAssertEqual(r.settings.workload, shape)
                XCTAssertGreaterThan(r.walks.count, 0, what)
                XCTAssertEqual(r.event(.forkExec), 0, "\(what): a script never execs")
                let processes = r.samples.map(\.processes)
                switch shape {
                case .forkChain:
                    // Each worker's chain holds one process between steps.
                    XCTAssertTrue(processes.allSatisfy { $0 <= o.threads * 2 }, "\(what): \(processes)")
                    XCTAssertGreaterThan(r.event(.pagesFreed), 0, what)
                case .aim7, .zygote:
                    // Families of a parent and up to 7 children per worker.
                    XCTAssertGreaterThan(processes.max() ?? 0, o.threads, "\(what): \(processes)")
                    XCTAssertLessThanOrEqual(processes.max() ?? 0, 16)
                    XCTAssertGreaterThan(r.walks.visitedPerWalk, 1, "\(what): walks of shared pages scan the family")
                default: break
                }
            }
        }
    }

    func testFamiliesStayWithinTheirBound() throws {
        var o = small(2, 1.5)
        o.mix = "fault=40,fork=20,exit=20,mremap=10,migrate=10"
        o.familySize = 4
        o.sampleIntervalS = 0.2
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.success)
        XCTAssertGreaterThan(r.event(.forkExec), 0, "forks beyond the bound exec the child")
        // A fork joins its parent's family before its child execs, so a
        // family can exceed the bound by one per fork in flight, never more.
        XCTAssertTrue(r.samples.allSatisfy { $0.maxFamilySize <= 4 + o.threads }, "\(r.samples.map(\.maxFamilySize))")
        XCTAssertLessThanOrEqual(r.samples.map(\.meanFamilySize).max() ?? 0, 4)
    }

    func testPlantedBugFailsWithDump() throws {
        var o = small(2, 5)
        o.inject = .mremapNoCopy
        o.perturb = true
        o.mix = "fault=40,fork=10,exit=5,mremap=20,migrate=25"
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.failure)
        XCTAssertEqual(r.exitStatus, 1)
        XCTAssertFalse(r.violations.isEmpty)
        XCTAssertNotNil(r.firstViolationS)
        XCTAssertLessThan(r.elapsedS, 5, "the run stops at the first violation")
        XCTAssertEqual(r.recentOperations?.count, 2)
        XCTAssertFalse(r.recentOperations?[0].isEmpty ?? true)
        XCTAssertTrue(r.leakCheck.hasPrefix("skipped"), "a failed model is not torn down: \(r.leakCheck)")
    }

    /// The planted teardown-corrupting bug (an mm pinned with a plain
    /// increment is torn down twice) is a violation, not a hang in
    /// rcu_barrier or a trap in the slot pool.
    func testDoubleTeardownIsAViolationNotACrash() throws {
        var o = small(2, 10)
        o.inject = .mmPinNoZeroCheck
        o.perturb = true
        o.mix = "fault=30,fork=20,exit=20,exec=10,migrate=10,reclaim=10"
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.failure)
        XCTAssertEqual(r.violationsByKind["lifetime", default: 0] > 0, true, "\(r.violationsByKind)")
    }

    /// A forgotten rcu_read_unlock stops grace periods while the worker goes
    /// on running: only the grace-period watchdog can see it, and it names
    /// the worker that holds the read-side section.
    func testForgottenUnlockIsNamedByTheGracePeriodWatchdog() throws {
        var o = small(2, 30)
        o.inject = .rcuUnlockForgotten
        o.stallTimeoutS = 1
        o.gpProbeIntervalS = 0.01
        o.mix = "fault=40,migrate=30,reclaim=30"
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, Verdict.stall)
        XCTAssertEqual(r.exitStatus, 3)
        let v = try XCTUnwrap(r.violations.first { $0.kind == "stall" })
        XCTAssertTrue(v.detail.contains("no RCU grace period"), v.detail)
        XCTAssertTrue(v.detail.contains("worker 0 has been inside one RCU read-side section"), v.detail)
        XCTAssertGreaterThan(r.totalCompleted, 0, "the table keeps the counts reached")
    }

    func testEveryFlavorAndSyncRuns() throws {
        for flavor in RCUFlavor.allCases {
            var o = small(2, 0.3)
            o.rcu = flavor
            let r = try StressEngine.run(o)
            XCTAssertEqual(r.verdict, Verdict.success, "\(flavor)")
        }
        for sync in ListSync.allCases {
            var o = small(2, 0.3)
            o.sync = sync
            let r = try StressEngine.run(o)
            XCTAssertEqual(r.verdict, Verdict.success, "\(sync)")
            XCTAssertEqual(r.settings.sync, sync)
        }
        _ = RCU.select(.memb)
    }

    func testInterruptionEndsWithAnInterruptedVerdict() throws {
        var hooks = EngineHooks()
        let start = ContinuousClock.now
        hooks.interruption = { ContinuousClock.now - start > .milliseconds(400) ? SIGINT : 0 }
        let r = try StressEngine.run(small(2, 30), hooks: hooks)
        XCTAssertEqual(r.verdict, Verdict.interrupted)
        XCTAssertEqual(r.exitStatus, 130)
        XCTAssertEqual(r.signal, SIGINT)
        XCTAssertGreaterThan(r.totalCompleted, 0)
        XCTAssertLessThan(r.elapsedS, 10)
    }

    func testJSONHasTheDocumentedKeys() throws {
        let r = try StressEngine.run(small(1, 0.3))
        let obj = try JSONSerialization.jsonObject(with: ResultFile.encoder().encode(r)) as! [String: Any]
        for key in ["settings", "elapsed_s", "ops", "ops_per_s", "total_completed", "total_idle", "audits", "violations",
                    "leaks", "leak_check", "verdict", "exit_status", "version", "git_commit", "git_dirty", "host", "samples",
                    "events", "phase", "wall_s"] {
            XCTAssertNotNil(obj[key], key)
        }
        let fault = (obj["ops"] as! [String: Any])["fault"] as! [String: Any]
        for key in ["completed", "idle", "per_s", "timed", "p50_ns", "p99_ns", "p999_ns", "max_ns"] { XCTAssertNotNil(fault[key], key) }
        let events = obj["events"] as! [String: Any]
        XCTAssertNotNil(events["first_touch"])
        for k in events.keys { XCTAssertEqual(k, k.lowercased(), "event keys are snake_case: \(k)") }
        let back = try ResultFile.decoder().decode(StressResult.self, from: ResultFile.encoder().encode(r))
        XCTAssertEqual(back.settings, r.settings)
    }

    func testSteadyStateJudgesDrift() {
        func sample(_ rate: Double, _ fam: Double) -> IntervalSample {
            IntervalSample(t: 0, opsPerS: rate, framesInUse: 100, processes: 10, families: 5, meanFamilySize: fam,
                           maxFamilySize: 4, visitedPerWalk: 2)
        }
        let flat = SteadyState.judge([sample(1, 2)] + (0..<8).map { _ in sample(100, 2) })!
        XCTAssertTrue(flat.steady)
        let rising = SteadyState.judge([sample(1, 2)] + (0..<8).map { sample(100 + Double($0) * 10, 2) })!
        XCTAssertFalse(rising.steady)
        XCTAssertGreaterThan(rising.rateDriftPercent, 10)
        let growing = SteadyState.judge([sample(1, 2)] + (0..<8).map { sample(100, 2 + Double($0)) })!
        XCTAssertFalse(growing.steady)
        XCTAssertNil(SteadyState.judge([sample(1, 1), sample(1, 1)]))
    }
}
