import Foundation
import XCTest

/// `--anon-vma-walk` and `--anon-vma-merge` on the command line: one-line
/// errors with exit 2 where they mean nothing, and `--options-from` keeps
/// them.
final class AnonVMAMergeCommandLineTests: XCTestCase {
    private func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
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
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testMisuseIsAOneLineErrorWithExit2() throws {
        let cases: [([String], String)] = [
            (["run", "--scheme", "anon-vma", "--anon-vma-walk", "rcu-only", "--sync", "mutex"], "needs --sync rcu"),
            (["run", "--scheme", "anon-vma", "--anon-vma-walk", "rcu-only", "--sync", "rwlock"], "needs --sync rcu"),
            (["run", "--anon-vma-walk", "locked"], "option of the anon-vma and anon-vma-chain schemes"),
            (["run", "--scheme", "anon-vma-chain", "--anon-vma-walk", "rcu-only", "--sync", "mutex"], "needs --sync rcu"),
            (["run", "--scheme", "anon-vma-chain", "--anon-vma-merge", "off"], "option of the anon-vma scheme"),
            (["run", "--scheme", "anongroup", "--anon-vma-merge", "off"], "option of the anon-vma scheme"),
            (["run", "--scheme", "anon-vma", "--anon-vma-walk", "rcu"], "known: locked, rcu-only"),
            (["run", "--scheme", "anon-vma", "--anon-vma-merge", "yes"], "must be on or off"),
            (["explore", "--anon-vma-walk", "rcu-only"], "option of the anon-vma and anon-vma-chain schemes"),
            (["explore", "--scheme", "anon-vma", "--sync", "mutex", "--anon-vma-walk", "rcu-only"], "needs --sync rcu"),
        ]
        for (args, words) in cases {
            let r = try run(args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.err)")
            let lines = r.err.split(separator: "\n").filter { !$0.isEmpty }
            XCTAssertEqual(lines.count, 1, "\(args): \(r.err)")
            XCTAssertTrue(r.err.contains(words), "\(args): \(r.err)")
        }
    }

    /// A result file of an RCU-only run rebuilds it; asking for a lock mode
    /// over it is refused rather than silently changing the walk.
    func testOptionsFromKeepsTheWalk() throws {
        let dir = NSTemporaryDirectory() + "crmap-avwalk-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/r.json"
        let first = try run(["run", "--scheme", "anon-vma", "--anon-vma-walk", "rcu-only", "--anon-vma-merge", "off",
                             "--threads", "1", "--ops", "2000", "--json", file])
        XCTAssertEqual(first.status, 0, first.err)
        XCTAssertTrue(first.out.contains("anon-vma-walk=rcu-only anon-vma-merge=off"), first.out)
        let again = try run(["run", "--options-from", file, "--ops", "1000"])
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertTrue(again.out.contains("anon-vma-walk=rcu-only anon-vma-merge=off"), again.out)
        let bad = try run(["run", "--options-from", file, "--sync", "mutex"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.err.contains("rcu-only needs sync rcu"), bad.err)
    }
}
