import Foundation
import XCTest

/// `stress trace` as a user runs it: bad input is one line naming FILE:LINE on
/// standard error and exit status 2; record without strace says how to get it.
final class TraceCommandLineTests: XCTestCase {
    func stressBinary() throws -> URL {
        // SwiftPM builds the executable next to the test runner (.build/debug).
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let bundle = Bundle(for: TraceCommandLineTests.self).bundleURL
        for dir in [runner, bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("stress")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw XCTSkip("stress executable not built next to the tests")
    }

    func run(_ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = try stressBinary()
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testBadLogIsOneLineWithFileAndLine() throws {
        let dir = NSTemporaryDirectory() + "rmap-trace-cli-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = dir + "/bad.st"
        _ = FileManager.default.createFile(atPath: bad, contents: Data("""
            10 1.000000 execve("/bin/true", ["true"], 0x1 /* 1 vars */) = 0
            10 0.900000 brk(NULL) = 0x1000

            """.utf8))
        for args in [["trace", "stats", bad], ["trace", "import", bad, "--out", dir + "/x.trace.gz"]] {
            let r = try run(args)
            XCTAssertEqual(r.status, 2, args.joined(separator: " "))
            XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
            XCTAssertTrue(r.err.hasPrefix("stress: error: \(bad):2: time goes backwards"), r.err)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["bad.st"], "a refused import leaves no trace file")
        let good = fixture("hand_pid_reuse.st")
        let r = try run(["trace", "stats", good, "--json", "-"])
        XCTAssertEqual(r.status, 0, r.err)
        let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        XCTAssertEqual(json?["forks"] as? Int, 2)
        XCTAssertEqual(json?["max_live_group_size"] as? Int, 2)
    }

    func testRecordWithoutStrace() throws {
        let r = try run(["trace", "record", "--out", "/nonexistent/x.trace.gz", "--", "true"], environment: ["PATH": "/nonexistent"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.err, "stress: error: strace not found: apt-get install strace\n")
    }

    /// A real recording, when strace can trace here (not in every container).
    func testRecordTrue() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else { throw XCTSkip("no strace") }
        let out = NSTemporaryDirectory() + "rmap-trace-record-\(getpid()).trace.gz"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try run(["trace", "record", "--out", out, "--", "/bin/sh", "-c", "/bin/true; /bin/true"])
        if r.status != 0 { throw XCTSkip("strace cannot trace here: \(r.err)") }
        let s = try run(["trace", "stats", out, "--json", "-"])
        let json = try JSONSerialization.jsonObject(with: Data(s.out.utf8)) as? [String: Any]
        XCTAssertGreaterThanOrEqual(json?["execs"] as? Int ?? 0, 2, s.out)
    }
}
