import Foundation
import XCTest

/// `stress trace run` as a user runs it: verdict lines and exit statuses as
/// `stress run` (0, 1, 2), bad input and bad options in one line.
final class TraceRunCommandLineTests: XCTestCase {
    func stressBinary() throws -> URL {
        // SwiftPM builds the executable next to the test runner (.build/debug).
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let bundle = Bundle(for: TraceRunCommandLineTests.self).bundleURL
        for dir in [runner, bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("stress")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw XCTSkip("stress executable not built next to the tests")
    }

    func stress(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
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

    func testVerdictsAndExitStatuses() throws {
        let cutout = fixture("fork_mremap_cutout.st")
        let ok = try stress(["trace", "run", cutout, "--audit-interval", "0"])
        XCTAssertEqual(ok.status, 0, ok.out + ok.err)
        XCTAssertTrue(ok.out.hasSuffix("\nSUCCESS\n"), ok.out)

        let json = try stress(["trace", "run", cutout, "--scheme", "anon-vma", "--json", "-"])
        XCTAssertEqual(json.status, 0, json.err)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        XCTAssertEqual(object["verdict"] as? String, "SUCCESS")
        XCTAssertEqual(object["scheme"] as? String, "anon-vma")
        XCTAssertEqual((object["mremap"] as? [String: Any])?["moves"] as? Int, 1)
        XCTAssertTrue(json.err.hasSuffix("\nSUCCESS\n"), "the report goes to standard error")

        let bug = try stress(["trace", "run", cutout, "--inject", "mremap-no-copy", "--quiet"])
        XCTAssertEqual(bug.status, 1, bug.out + bug.err)
        XCTAssertTrue(bug.out.hasPrefix("FAILURE: "), bug.out)
    }

    func testBadInputAndOptionsAreOneLineWithStatus2() throws {
        let dir = NSTemporaryDirectory() + "trace-run-cli-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = dir + "/bad.trace"
        try "#rmap-trace 1\n0 start 1\n1 fork 1\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let cutout = fixture("fork_mremap_cutout.st")
        let cases: [([String], String)] = [
            (["trace", "run", dir + "/missing.st"], dir + "/missing.st: "),
            (["trace", "run", bad], bad + ":3: "),
            (["trace", "run", cutout, "--threads", "0"], "--threads"),
            (["trace", "run", cutout, "--fault-percent", "101"], "--fault-percent"),
            (["trace", "run", cutout, "--scale", "x"], "--scale"),
            (["trace", "run", cutout, "--full-table", "drop"], "--full-table"),
            (["trace", "run", cutout, "--inject", "anon-vma-mremap-pgoff"], "anon-vma"),
            (["trace", "run", cutout, "--scheme", "anon_vma"], "--scheme"),
            (["trace", "run", cutout, "--inodes", "65537"], "--inodes"),
            (["trace", "run", cutout, "--inodes", "-1"], "--inodes"),
        ]
        for (args, expected) in cases {
            let r = try stress(args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.err)")
            let lines = r.err.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(args): \(r.err)")
            XCTAssertTrue(r.err.hasPrefix("stress: error: ") || r.err.hasPrefix("Error: "), r.err)
            XCTAssertTrue(r.err.contains(expected), "\(args): \(r.err)")
        }
    }
}
