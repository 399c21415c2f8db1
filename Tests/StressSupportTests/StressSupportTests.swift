import Foundation
import XCTest
@testable import StressSupport

/// The shared plumbing: the atomic writer, the launcher, the small helpers.
final class StressSupportTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "crmap-support-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testAtomicWriteReplacesCreateRefusesAndNoTemporaryIsLeft() throws {
        let path = dir + "/a.json"
        try AtomicFile.write(Data("one".utf8), to: path)
        try AtomicFile.write(Data("two".utf8), to: path)
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("two".utf8))
        XCTAssertFalse(try AtomicFile.create(Data("three".utf8), at: path))
        XCTAssertTrue(try AtomicFile.create(Data("four".utf8), at: dir + "/b.json"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["a.json", "b.json"])
        XCTAssertThrowsError(try AtomicFile.write(Data(), to: dir + "/missing/c.json"))
    }

    func testCheckWritableNamesTheProblem() throws {
        XCTAssertNoThrow(try AtomicFile.checkWritable(dir + "/new.json"))
        XCTAssertThrowsError(try AtomicFile.checkWritable(dir)) { XCTAssertTrue("\($0)".contains("is a folder")) }
        XCTAssertThrowsError(try AtomicFile.checkWritable(dir + "/no/x.json")) { XCTAssertTrue("\($0)".contains("does not exist")) }
        XCTAssertThrowsError(try AtomicFile.checkWritable("")) { XCTAssertEqual("\($0)", "empty file name") }
    }

    func testMakeFolderCreatesParentsAndRefusesAFile() throws {
        try makeFolder(dir + "/x/y/z")
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/x/y/z", isDirectory: &isDir) && isDir.boolValue)
        try AtomicFile.write(Data(), to: dir + "/f")
        XCTAssertThrowsError(try makeFolder(dir + "/f")) { XCTAssertTrue("\($0)".contains("a file is in the way")) }
    }

    func testChildProcessExitsSignalsOutputAndCapture() throws {
        let log = dir + "/log"
        let echo = try ChildProcess.spawn(executable: "/bin/sh", arguments: ["-c", "echo out; echo err >&2; exit 3"], output: .file(log))
        XCTAssertEqual(echo.wait(), .exited(3))
        XCTAssertEqual(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self), "out\nerr\n")
        let sleeper = try ChildProcess.spawn(executable: "/bin/sleep", arguments: ["30"])
        XCTAssertNil(sleeper.poll())
        XCTAssertEqual(getpgid(sleeper.pid), sleeper.pid, "a child leads its own process group")
        sleeper.signal(SIGTERM)
        XCTAssertEqual(sleeper.wait(), .signaled(SIGTERM))
        let r = try ChildProcess.capture("/bin/sh", ["-c", "echo hello; echo oops >&2; exit 2"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "hello\n")
        XCTAssertEqual(r.stderr, "oops\n")
        XCTAssertThrowsError(try ChildProcess.spawn(executable: dir + "/nothing", arguments: [])) {
            XCTAssertTrue("\($0)".hasPrefix("cannot start"), "\($0)")
        }
    }

    func testSmallHelpers() {
        XCTAssertEqual(htmlEscaped(#"<a href="x">&</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;")
        XCTAssertEqual(signalName(SIGSEGV), "SIGSEGV")
        XCTAssertEqual(signalName(SIGHUP), "SIGHUP")
        XCTAssertNil(signalName(0))
        XCTAssertEqual(ToolError("one\n  two \n\n").message, "one; two")
        XCTAssertGreaterThanOrEqual(HostInfo.cpuCount, 1)
        XCTAssertEqual(Digest.sha256Hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
