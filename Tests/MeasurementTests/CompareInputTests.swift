import ConcurrentRmap
import Foundation
import XCTest
@testable import Measurement
@testable import RunEngine
@testable import StressSupport

/// Issue 23: every input of `stress compare` is checked. A file the tool
/// wrote loads; every corruption of one is refused with one line naming
/// the key or the run, and a FAILURE run is never compared.
final class CompareInputTests: XCTestCase {
    nonisolated(unsafe) static var real: StressResult?

    /// A real result of a tiny run, so the fixtures have the tool's shape.
    static func result() throws -> StressResult {
        if let r = real { return r }
        var o = RunSettings()
        o.threads = 1
        o.durationS = 0.1
        o.seed = 7
        o.auditIntervalS = 0
        o.frames = 1024
        o.processes = 16
        let r = try StressEngine.run(o)
        real = r
        return r
    }

    func json(_ r: StressResult) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: ResultFile.encoder().encode(r)) as? [String: Any])
    }

    func data(_ o: Any) throws -> Data { try JSONSerialization.data(withJSONObject: o) }

    /// The message `CompareInput.parse` refuses `d` with.
    func refusal(_ d: Data, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let runs = try CompareInput.parse(d, name: "x.json")
            XCTFail("accepted \(runs.count) run(s)", file: file, line: line)
            return ""
        } catch {
            let m = "\(error)"
            XCTAssertFalse(m.contains("\n"), "one line: \(m)", file: file, line: line)
            XCTAssertTrue(m.hasPrefix("'x.json': "), m, file: file, line: line)
            return m
        }
    }

    func testWhatTheToolWritesLoads() throws {
        let r = try Self.result()
        XCTAssertEqual(r.verdict, Verdict.success)
        XCTAssertNil(ResultFileCheck.sanity(r))
        let one = try CompareInput.parse(ResultFile.encoder().encode(r), name: "one")
        XCTAssertEqual(one.count, 1)
        var r2 = r
        r2.settings.seed = 8
        let list = try CompareInput.parse(ResultFile.encoder().encode([r, r2]), name: "list")
        XCTAssertEqual(list.map(\.repeatIndex), [0, 1], "results of one point given as a list are its repeats")
        let runs = list.map { ScaleRun(sync: $0.sync, rcu: $0.rcu, threads: $0.threads, repeatIndex: $0.repeatIndex,
                                       oversubscribed: false, result: $0.result) }
        XCTAssertEqual(try CompareInput.parse(ResultFile.encoder().encode(runs), name: "runs").count, 2)
    }

    func testImpossibleFiguresAreRefused() throws {
        let base = try json(try Self.result())
        func with(_ key: String, _ v: Any) throws -> Data { var o = base; o[key] = v; return try data(o) }
        XCTAssertTrue(refusal(try with("ops_per_s", -5)).contains("ops_per_s -5.0 is not a positive number"))
        XCTAssertTrue(refusal(try with("ops_per_s", 0)).contains("not a positive number"))
        XCTAssertTrue(refusal(try with("ops_per_s", 1e308)).contains("is absurd for 1 thread(s)"))
        XCTAssertTrue(refusal(try with("ops_per_s", "inf")).contains("not a positive number"))
        XCTAssertTrue(refusal(try with("ops_per_s", "nan")).contains("not a positive number"))
        XCTAssertTrue(refusal(try with("elapsed_s", -1)).contains("elapsed_s -1.0 is not a duration"))
        XCTAssertTrue(refusal(try with("elapsed_s", 0)).contains("is not a duration"))
        let doubled = (base["ops_per_s"] as! Double) * 2
        XCTAssertTrue(refusal(try with("ops_per_s", doubled)).contains("disagrees with total_completed / elapsed_s"))
        XCTAssertTrue(refusal(try with("total_completed", 1)).contains("disagrees"))
    }

    func testFailedAndUnfinishedRunsAreNeverCompared() throws {
        let base = try json(try Self.result())
        for v in [Verdict.failure, Verdict.stall, Verdict.interrupted, Verdict.running] {
            var o = base
            o["verdict"] = v
            let m = refusal(try data(o))
            XCTAssertTrue(m.contains("ended \(v): only SUCCESS runs are compared"), m)
        }
        var o = base
        o["verdict"] = "PASSED"
        XCTAssertTrue(refusal(try data(o)).contains("verdict 'PASSED' is not one the tool writes"))
    }

    func testUnknownDuplicateAndWrongKeysAreRefused() throws {
        let r = try Self.result()
        var o = try json(r)
        o["opsPerS"] = 5
        XCTAssertTrue(refusal(try data(o)).contains("unknown key 'opsPerS'"))
        o = try json(r)
        var s = o["settings"] as! [String: Any]
        s["frobnicate"] = 1
        o["settings"] = s
        XCTAssertTrue(refusal(try data(o)).contains("unknown key 'settings.frobnicate'"))
        o = try json(r)
        s = o["settings"] as! [String: Any]
        s["scheme"] = "nosuch"
        o["settings"] = s
        let scheme = refusal(try data(o))
        XCTAssertTrue(scheme.contains("key 'settings.scheme': not a value this build knows (found 'nosuch')"), scheme)
        XCTAssertFalse(scheme.contains("SchemeKind") || scheme.contains("Cannot initialize"), "no Swift type names: \(scheme)")
        o = try json(r)
        o["ops_per_s"] = "fast"
        XCTAssertTrue(refusal(try data(o)).contains("key 'ops_per_s': expected a number (found 'fast')"))
        o = try json(r)
        o.removeValue(forKey: "elapsed_s")
        XCTAssertTrue(refusal(try data(o)).contains("key 'elapsed_s' is missing"))
        let text = String(decoding: try ResultFile.encoder().encode(r), as: UTF8.self)
        let dup = String(text.dropLast(2)) + ",\n  \"verdict\" : \"SUCCESS\"\n}"
        XCTAssertTrue(refusal(Data(dup.utf8)).contains("duplicate key \"verdict\""))
        XCTAssertTrue(refusal(Data((String(text.dropLast(2)) + ",}").utf8)).contains("not valid JSON"))
        XCTAssertTrue(refusal(Data(String(repeating: "[", count: 100_000).utf8)).contains("nested deeper"))
        XCTAssertTrue(refusal(Data("\"x\"".utf8)).contains("not a runs.json"))
        XCTAssertTrue(refusal(Data("[]".utf8)).contains("holds no runs"))
        XCTAssertTrue(refusal(Data("{} x".utf8)).contains("text after the end"))
    }

    func testDuplicatedAndInconsistentRunsAreRefused() throws {
        let r = try Self.result()
        let copy = refusal(try ResultFile.encoder().encode([r, r]))
        XCTAssertTrue(copy.contains("is a copy of run 1"), copy)
        let run = ScaleRun(sync: "rcu", rcu: "memb", threads: 1, repeatIndex: 0, oversubscribed: false, result: r)
        var again = run
        again.result.settings.seed = 99
        XCTAssertTrue(refusal(try ResultFile.encoder().encode([run, again])).contains("same point and repeat as run 1"))
        var lie = run
        lie.threads = 8
        XCTAssertTrue(refusal(try ResultFile.encoder().encode([lie])).contains("disagrees with its own settings"))
    }

    /// The folder forms: a folder without runs.json is named as such.
    func testFolders() throws {
        let dir = NSTemporaryDirectory() + "compare-input-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertThrowsError(try CompareInput.load(dir)) { XCTAssertTrue("\($0)".contains("folder without runs.json"), "\($0)") }
        XCTAssertThrowsError(try CompareInput.load(dir + "/none")) { XCTAssertTrue("\($0)".contains("no such file")) }
        let run = ScaleRun(sync: "rcu", rcu: "memb", threads: 1, repeatIndex: 0, oversubscribed: false, result: try Self.result())
        try ResultFile.write([run], to: dir + "/runs.json")
        XCTAssertEqual(try CompareInput.load(dir).count, 1)
    }

    /// --options-from's strict reader: the same checks on a settings object.
    func testSettingsDecodeStrictly() throws {
        let s = try ResultFileCheck.decode(RunSettings.self, from: ResultFile.encoder().encode(RunSettings()))
        XCTAssertEqual(s.threads, RunSettings().threads)
        XCTAssertThrowsError(try ResultFileCheck.decode(RunSettings.self, from: Data(#"{"threads": "two"}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("key 'threads': expected a whole number (found 'two')"), "\($0)")
        }
    }
}
