import ConcurrentRmap
import Foundation
import XCTest
@testable import Measurement
@testable import RunEngine
@testable import StressSupport

/// Issue 23 at the command line: result files read back (compare inputs,
/// --options-from) and the small frictions. Every hostile input is one
/// line on standard error and exit 2, before any run starts.
final class ResultInputCommandLineTests: XCTestCase {
    struct Ran {
        var status: Int32
        var signaled: Bool
        var out: String
        var err: String
    }

    func run(_ args: [String]) throws -> Ran {
        let p = Process()
        p.executableURL = try CommandLineTests.stressBinary()
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Ran(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal,
                   out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    func tempDir(_ name: String) -> String {
        let d = NSTemporaryDirectory() + "crmap-results-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: d)
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    func assertUsageError(_ args: [String], contains: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try run(args)
        XCTAssertFalse(r.signaled, "\(args): signal", file: file, line: line)
        XCTAssertEqual(r.status, 2, "\(args): \(r.err)", file: file, line: line)
        XCTAssertTrue(r.out.isEmpty, "\(args): stdout \(r.out.prefix(200))", file: file, line: line)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, "\(args): \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.hasPrefix("stress: error:") && r.err.contains(contains), "\(args): \(r.err)", file: file, line: line)
    }

    let small = ["--threads", "2", "--frames", "1024", "--processes", "32", "--duration", "0.3", "--quiet"]

    func testHostileCompareInputs() throws {
        let dir = tempDir("compare")
        XCTAssertEqual(try run(small + ["--seed", "1", "--json", dir + "/a.json"]).status, 0)
        XCTAssertEqual(try run(small + ["--seed", "2", "--json", dir + "/b.json"]).status, 0)
        let good = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/a.json"))) as? [String: Any])
        func write(_ name: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
            var o = good
            edit(&o)
            try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: dir + "/" + name))
            return dir + "/" + name
        }
        let cases: [(String, String)] = [
            (try write("neg.json") { $0["ops_per_s"] = -1 }, "is not a positive number"),
            (try write("zero.json") { $0["ops_per_s"] = 0 }, "is not a positive number"),
            (try write("huge.json") { $0["ops_per_s"] = 1e308 }, "is absurd"),
            (try write("fail.json") { $0["verdict"] = "FAILURE" }, "only SUCCESS runs are compared"),
            (try write("unknown.json") { $0["frobnicate"] = true }, "unknown key 'frobnicate'"),
            (try write("type.json") { $0["elapsed_s"] = "long" }, "key 'elapsed_s': expected a number"),
            (try write("sync.json") { o in var s = o["settings"] as! [String: Any]; s["sync"] = "spinlock"; o["settings"] = s },
             "key 'settings.sync': not a value this build knows"),
        ]
        for (path, message) in cases {
            try assertUsageError(["compare", path, dir + "/b.json"], contains: message)
            try assertUsageError(["compare", dir + "/b.json", path], contains: message)
        }
        // Duplicated runs, and a duplicated key.
        let a = try String(contentsOfFile: dir + "/a.json", encoding: .utf8)
        try "[\(a), \(a)]".write(toFile: dir + "/twice.json", atomically: true, encoding: .utf8)
        try assertUsageError(["compare", dir + "/twice.json", dir + "/b.json"], contains: "is a copy of run 1")
        let trimmed = a.trimmingCharacters(in: .whitespacesAndNewlines)
        try (String(trimmed.dropLast()) + ", \"verdict\": \"SUCCESS\"}").write(toFile: dir + "/dupkey.json", atomically: true, encoding: .utf8)
        try assertUsageError(["compare", dir + "/dupkey.json", dir + "/b.json"], contains: "duplicate key \"verdict\"")
        try assertUsageError(["compare", dir, dir + "/b.json"], contains: "folder without runs.json")
        // Good inputs: the decision comes first, with its significance.
        let ok = try run(["compare", dir + "/a.json", dir + "/b.json"])
        XCTAssertEqual(ok.status, 0, ok.err)
        let decision = try XCTUnwrap(ok.out.range(of: "Decision on total ops/s"))
        let table = try XCTUnwrap(ok.out.range(of: "Every figure:"))
        XCTAssertLessThan(decision.lowerBound, table.lowerBound)
        XCTAssertTrue(ok.out.contains("too few repeats"), ok.out)
    }

    func testOptionsFromRefusesDuplicateKeysAndNamesBadValues() throws {
        let dir = tempDir("options")
        XCTAssertEqual(try run(small + ["--seed", "5", "--json", dir + "/a.json"]).status, 0)
        let text = try String(contentsOfFile: dir + "/a.json", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try (String(text.dropLast()) + ", \"verdict\": \"SUCCESS\"}").write(toFile: dir + "/dup.json", atomically: true, encoding: .utf8)
        try assertUsageError(["run", "--options-from", dir + "/dup.json"], contains: "duplicate key")
        try text.replacingOccurrences(of: "\"scheme\" : \"anongroup\"", with: "\"scheme\" : \"nosuch\"")
            .write(toFile: dir + "/scheme.json", atomically: true, encoding: .utf8)
        let r = try run(["run", "--options-from", dir + "/scheme.json"])
        XCTAssertEqual(r.status, 2, r.err)
        XCTAssertFalse(r.err.contains("SchemeKind") || r.err.contains("Cannot initialize"), "no Swift type names: \(r.err)")
        XCTAssertTrue(r.err.contains("settings do not decode: key 'scheme'"), r.err)
    }

    func testSmallFrictions() throws {
        try assertUsageError(["run", "--threads", "-1"], contains: "--threads takes a whole number 1...4096 (got '-1')")
        try assertUsageError(["run", "--seed", "-3"], contains: "--seed takes a whole number")
        try assertUsageError(["run", "--duration", "-0.5"], contains: "--duration")
        // Unwritable result file: refused before the run, not after it.
        let start = Date()
        try assertUsageError(["run", "--duration", "30", "--json", "/proc/version"], contains: "cannot write JSON file")
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "refused up front")
        try assertUsageError(["schemes"], contains: "--out")
        for mix in ["default", "walk-heavy", "fault-only"] {
            let r = try run(small + ["--mix", mix])
            XCTAssertEqual(r.status, 0, "\(mix): \(r.err)")
        }
        try assertUsageError(["run", "--mix", "walkheavy"], contains: "walk-heavy")
    }
}
