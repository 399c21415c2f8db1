import ConcurrentRmap
import Foundation
import XCTest
@testable import StressKit

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
    func testDefaultsAreValid() { XCTAssertNil(StressOptions().validate()) }

    func testBadOptions() {
        var o = StressOptions(); o.threads = 0
        XCTAssertNotNil(o.validate())
        o = StressOptions(); o.duration = -1
        XCTAssertNotNil(o.validate())
        o = StressOptions(); o.duration = .nan
        XCTAssertNotNil(o.validate())
        o = StressOptions(); o.machine.frames = 0
        XCTAssertNotNil(o.validate())
        o = StressOptions(); o.machine.vmaPages = 100
        XCTAssertNotNil(o.validate())
        o = StressOptions(); o.stallTimeout = 0
        XCTAssertNotNil(o.validate())
    }

    func testInjectionNamesParse() {
        for i in Injection.allCases { XCTAssertEqual(Injection(rawValue: i.rawValue), i) }
        XCTAssertNil(Injection(rawValue: "no-such-bug"))
        XCTAssertEqual(Injection.allCases.count, 12)
    }
}

final class VerdictTests: XCTestCase {
    func small(_ threads: Int, _ seconds: Double) -> StressOptions {
        var o = StressOptions()
        o.threads = threads
        o.duration = seconds
        o.seed = 42
        o.machine.frames = 1024
        o.machine.swapSlots = 8192
        o.machine.maxProcesses = 32
        o.auditInterval = 0.5
        return o
    }

    func testCleanRunSucceeds() throws {
        let r = try StressEngine.run(small(2, 1.0))
        XCTAssertEqual(r.verdict, "SUCCESS", "\(r.violations.prefix(3))")
        XCTAssertEqual(r.exitStatus, 0)
        XCTAssertTrue(r.leaks.isEmpty)
        XCTAssertGreaterThanOrEqual(r.audits, 2)
        for op in OpKind.allCases { XCTAssertGreaterThan(r.ops[op.name]?.count ?? 0, 0, op.name) }
        XCTAssertGreaterThan(r.walks.count, 0)
        XCTAssertNil(r.recentOperations)
    }

    func testPlantedBugFailsWithDump() throws {
        var o = small(2, 5)
        o.machine.injection = .mremapNoCopy
        o.machine.perturb = true
        o.mix = try OperationMix(parsing: "fault=40,fork=10,exit=5,mremap=20,migrate=25")
        let r = try StressEngine.run(o)
        XCTAssertEqual(r.verdict, "FAILURE")
        XCTAssertEqual(r.exitStatus, 1)
        XCTAssertFalse(r.violations.isEmpty)
        XCTAssertNotNil(r.firstViolationS)
        XCTAssertLessThan(r.durationS, 5, "the run stops at the first violation")
        XCTAssertEqual(r.recentOperations?.count, 2)
        XCTAssertFalse(r.recentOperations?[0].isEmpty ?? true)
    }

    func testEveryFlavorAndSyncRuns() throws {
        for flavor in RCUFlavor.allCases {
            var o = small(2, 0.3)
            o.rcu = flavor
            let r = try StressEngine.run(o)
            XCTAssertEqual(r.verdict, "SUCCESS", "\(flavor)")
        }
        for sync in ListSync.allCases {
            var o = small(2, 0.3)
            o.machine.sync = sync
            let r = try StressEngine.run(o)
            XCTAssertEqual(r.verdict, "SUCCESS", "\(sync)")
            XCTAssertEqual(r.sync, sync.rawValue)
        }
        _ = RCU.select(.memb)
    }

    func testJSONHasTheDocumentedKeys() throws {
        let r = try StressEngine.run(small(1, 0.3))
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        let obj = try JSONSerialization.jsonObject(with: enc.encode(r)) as! [String: Any]
        for key in ["threads", "duration_s", "seed", "rcu", "sync", "mix", "ops", "ops_per_s", "audits",
                    "violations", "leaks", "verdict", "version", "git_commit"] {
            XCTAssertNotNil(obj[key], key)
        }
        let fault = (obj["ops"] as! [String: Any])["fault"] as! [String: Any]
        for key in ["count", "per_s", "p50_ns", "p99_ns", "p999_ns", "max_ns"] { XCTAssertNotNil(fault[key], key) }
    }
}

/// The command line itself: exit statuses and one-line usage errors.
final class CommandLineTests: XCTestCase {
    func stressBinary() throws -> URL {
        // SwiftPM builds the executable next to the test runner (.build/debug).
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let bundle = Bundle(for: CommandLineTests.self).bundleURL
        for dir in [runner, bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("stress")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw XCTSkip("stress executable not built next to the tests")
    }

    func run(_ args: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = try stressBinary()
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testUsageErrorsExit2WithOneLine() throws {
        for args in [["--mix", "foo=1"], ["--duration", "abc"], ["--frames", "0"], ["--rcu", "x"],
                     ["--threads", "-3"], ["--inject", "nope"], ["--vma-pages", "7"], ["--bogus"]] {
            let (status, out, err) = try run(args)
            XCTAssertEqual(status, 2, "\(args)")
            XCTAssertTrue(out.isEmpty, "\(args)")
            XCTAssertEqual(err.split(separator: "\n").count, 1, "\(args): \(err)")
            XCTAssertTrue(err.hasPrefix("stress: error:"), "\(args): \(err)")
        }
    }

    func testPlantedViolationExits1WithDump() throws {
        let (status, out, _) = try run(["--threads", "2", "--duration", "5", "--seed", "7", "--quiet", "--perturb",
                                        "--inject", "mremap-no-copy", "--frames", "1024", "--processes", "32",
                                        "--mix", "fault=40,fork=10,exit=5,mremap=20,migrate=25"])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(out.contains("first violation"))
        XCTAssertTrue(out.contains("--seed 7"))
        XCTAssertTrue(out.contains("last operations per worker"))
        XCTAssertTrue(out.contains("FAILURE:"))
    }

    func testStallExits3() throws {
        let (status, out, _) = try run(["--threads", "2", "--duration", "30", "--quiet", "--stall-timeout", "1",
                                        "--inject", "rcu-reader-stall", "--frames", "1024", "--processes", "32"])
        XCTAssertEqual(status, 3)
        XCTAssertTrue(out.contains("STALL"), out)
        XCTAssertTrue(out.contains("stall:"), out)
    }

    func testListInjections() throws {
        let (status, out, _) = try run(["--list-injections"])
        XCTAssertEqual(status, 0)
        for i in Injection.allCases where i != .none { XCTAssertTrue(out.contains(i.rawValue), i.rawValue) }
    }
}
