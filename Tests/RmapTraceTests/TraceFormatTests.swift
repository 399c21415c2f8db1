import Foundation
@testable import RmapTrace
import XCTest

/// The trace format: round trips, raw log against imported trace, and every
/// kind of bad input refused with FILE:LINE.
final class TraceFormatTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "rmap-trace-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func write(_ name: String, _ text: String) -> String {
        let p = dir + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    func gzip(_ name: String, _ text: String) throws -> String {
        let p = dir + "/" + name
        let w = try GzipWriter(path: p)
        try w.write(Array(text.utf8))
        try w.close()
        return p
    }

    let allFixtures = ["w1b_vfork_spawn.st", "w5_threads.st", "w4c_restarted_forks.st",
                       "hand_pid_reuse.st", "hand_thread_exec.st", "hand_mremap_fork.st"]

    /// import -> write -> read gives the same records; stats of the raw log equal stats of the trace.
    func testRoundTripAndStatsAgree() throws {
        for name in allFixtures {
            let (records, _) = try TraceTools.importAll(fixture(name))
            let out = dir + "/\(name).trace.gz"
            let summary = try TraceTools.importLog(fixture(name), to: out)
            XCTAssertEqual(summary.records, records.count, name)
            let back = try TraceTools.readAll(out)
            XCTAssertEqual(back, records, name)
            XCTAssertTrue(try TraceReader.isTrace(path: out))
            XCTAssertFalse(try TraceReader.isTrace(path: fixture(name)))
            let (raw, counts) = try TraceTools.stats(of: fixture(name))
            let (traced, none) = try TraceTools.stats(of: out)
            XCTAssertNotNil(counts)
            XCTAssertNil(none)
            XCTAssertEqual(raw, traced, name)
        }
    }

    /// Every event kind survives encode -> decode.
    func testEveryEventKindRoundTrips() throws {
        let events: [TraceEvent] = [
            .start(mm: 1), .fork(parent: 1, child: 2), .thread(mm: 2), .threadExit(mm: 2), .vfork(mm: 2),
            .exec(old: 2, new: 3, fromVfork: true), .vfork(mm: 1), .vforkReturn(mm: 1),
            .file(id: 1, path: "\"/usr/lib/libc.so.6\""),
            .mmap(mm: 3, address: 0x7f00_0000_0000, length: 12345, protection: [.read, .exec], shared: false, backing: .file(1), offset: 0x1000),
            .mmap(mm: 3, address: 0x1000, length: 4096, protection: [], shared: true, backing: .file(nil), offset: 0),
            .mmap(mm: 3, address: 0x2000, length: 4096, protection: [.read, .write], shared: false, backing: .anon, offset: 0),
            .munmap(mm: 3, address: 0x1000, length: 4096),
            .mremap(mm: 3, oldAddress: 0x2000, oldLength: 4096, newAddress: 0x9000, newLength: 8192, flags: [.mayMove, .fixed, .dontUnmap]),
            .mremap(mm: 3, oldAddress: 0x9000, oldLength: 8192, newAddress: 0x9000, newLength: 4096, flags: []),
            .brk(mm: 3, from: 0x5000_0000, to: 0x5002_1000), .mprotect(mm: 3, address: 0x9000, length: 4096, protection: [.read]),
        ] + Advice.allCases.map { .madvise(mm: 3, address: 0x9000, length: 4096, advice: $0) }
            + [.exit(mm: 3), .exec(old: 1, new: 4, fromVfork: false), .exit(mm: 4)]
        let records = events.enumerated().map { TraceRecord(time: UInt64($0.offset * 7), event: $0.element) }
        let p = dir + "/all.trace.gz"
        let w = try TraceWriter(path: p, metadata: [("note", "every kind")])
        for r in records { try w.write(r) }
        try w.close()
        let reader = try TraceReader(path: p)
        var back: [TraceRecord] = []
        while let r = try reader.next() { back.append(r) }
        XCTAssertEqual(back, records)
        XCTAssertEqual(reader.metadata.first?.0, "note")
    }

    /// A gzip log imports as its plain text does.
    func testGzipLogEqualsPlainLog() throws {
        let text = try String(contentsOfFile: fixture("w4c_restarted_forks.st"), encoding: .utf8)
        let gz = try gzip("w4c.st.gz", text)
        XCTAssertEqual(try TraceTools.importAll(gz).0, try TraceTools.importAll(fixture("w4c_restarted_forks.st")).0)
    }

    // MARK: Bad input

    func assertRefused(_ path: String, line: Int, containing fragment: String, file: StaticString = #filePath, at: UInt = #line,
                       _ body: (String) throws(TraceError) -> Void) {
        do {
            try body(path)
            XCTFail("accepted \(path)", file: file, line: at)
        } catch {
            XCTAssertEqual(error.file, path, file: file, line: at)
            XCTAssertEqual(error.line, line, "\(error)", file: file, line: at)
            XCTAssertTrue(error.description.hasPrefix(line > 0 ? "\(path):\(line): " : "\(path): "), error.description, file: file, line: at)
            XCTAssertTrue(error.message.contains(fragment), "\(error.message) lacks '\(fragment)'", file: file, line: at)
            XCTAssertFalse(error.description.contains("\n"), file: file, line: at)
        }
    }

    func importing(_ p: String) throws(TraceError) { _ = try TraceTools.importAll(p) }
    func reading(_ p: String) throws(TraceError) { _ = try TraceTools.readAll(p) }

    let good = """
        10 1.000000 execve("/bin/true", ["true"], 0x7ffd /* 1 vars */) = 0
        10 1.000100 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000

        """

    func testRawLogBadInput() throws {
        assertRefused(write("malformed.st", good + "10 1.000200 this is not strace\n"), line: 3, containing: "malformed", importing)
        assertRefused(write("notime.st", good + "10 mmap(NULL, 1, PROT_READ, MAP_PRIVATE, 3, 0) = 0x1000\n"), line: 3, containing: "timestamp", importing)
        assertRefused(write("backwards.st", good + "10 0.500000 munmap(0x7f0000000000, 4096) = 0\n"), line: 3, containing: "backwards", importing)
        assertRefused(write("unknownpid.st", good + "77 1.000300 munmap(0x7f0000000000, 4096) = 0\n"), line: 3, containing: "pid 77", importing)
        assertRefused(write("absurd.st", good + "10 1.000300 munmap(0xfffffffffffff000, 8192) = 0\n"), line: 3, containing: "implausible", importing)
        assertRefused(write("hugelen.st", good + "10 1.000300 mmap(NULL, 18446744073709547520, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x1000\n"),
                      line: 3, containing: "implausible", importing)
        assertRefused(write("resumed.st", good + "10 1.000300 <... mmap resumed>) = 0x1000\n"), line: 3, containing: "unfinished", importing)
        assertRefused(write("badresult.st", good + "10 1.000300 munmap(0x7f0000000000, 4096) = zero\n"), line: 3, containing: "result", importing)
        // Truncated gzip: a real fixture compressed, then cut short.
        let text = try String(contentsOfFile: fixture("w4c_restarted_forks.st"), encoding: .utf8)
        let gz = try gzip("whole.st.gz", text)
        let data = try Data(contentsOf: URL(fileURLWithPath: gz))
        let cut = dir + "/cut.st.gz"
        _ = FileManager.default.createFile(atPath: cut, contents: data.prefix(data.count * 2 / 3))
        do {
            _ = try TraceTools.importAll(cut)
            XCTFail("a truncated gzip log was accepted")
        } catch {
            XCTAssertTrue(error.description.hasPrefix("\(cut):"), error.description)
            XCTAssertTrue(error.message.contains("truncated"), error.message)
            XCTAssertGreaterThan(error.line, 1)
        }
    }

    func testMissingFile() {
        let p = dir + "/missing.st"
        assertRefused(p, line: 0, containing: "cannot open", importing)
        assertRefused(p, line: 0, containing: "cannot open", reading)
        XCTAssertThrowsError(try TraceTools.stats(of: p))
    }

    func testTraceBadInput() throws {
        let head = "#rmap-trace 1\n0 start 1\n0 mmap 1 0x1000 4096 rw- private anon 0x0\n"
        assertRefused(write("nohead.trace", "0 start 1\n"), line: 1, containing: "not a trace", reading)
        assertRefused(write("version.trace", "#rmap-trace 9\n0 start 1\n"), line: 1, containing: "version", reading)
        assertRefused(write("malformed.trace", head + "5 mmap 1 0x1000\n"), line: 4, containing: "malformed", reading)
        assertRefused(write("unknownevent.trace", head + "5 teleport 1\n"), line: 4, containing: "unknown event", reading)
        assertRefused(write("unknownmm.trace", head + "5 munmap 7 0x1000 4096\n"), line: 4, containing: "unknown mm 7", reading)
        assertRefused(write("dead.trace", head + "5 exit 1\n6 munmap 1 0x1000 4096\n"), line: 5, containing: "unknown mm 1", reading)
        assertRefused(write("reused.trace", head + "5 fork 1 1\n"), line: 4, containing: "not new", reading)
        assertRefused(write("backwards.trace", head + "9 thread 1\n8 texit 1\n"), line: 5, containing: "backwards", reading)
        assertRefused(write("absurd.trace", head + "5 munmap 1 0xfffffffffffff000 8192\n"), line: 4, containing: "implausible", reading)
        assertRefused(write("execthreads.trace", head + "5 thread 1\n6 exec 1 2 own\n"), line: 5, containing: "own tasks", reading)
        let records = (0..<3000).map { TraceRecord(time: UInt64($0), event: .mprotect(mm: 1, address: 0x1000, length: 4096, protection: [.read])) }
        let p = dir + "/long.trace.gz"
        let w = try TraceWriter(path: p)
        try w.write(TraceRecord(time: 0, event: .start(mm: 1)))
        for r in records { try w.write(r) }
        try w.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: p))
        let cut = write("cut.trace.gz", "")
        _ = FileManager.default.createFile(atPath: cut, contents: data.prefix(data.count / 2))
        do {
            _ = try TraceTools.readAll(cut)
            XCTFail("a truncated trace was accepted")
        } catch {
            XCTAssertTrue(error.description.hasPrefix("\(cut):"), error.description)
            XCTAssertTrue(error.message.contains("truncated"), error.message)
        }
    }

    /// Children seen before their clone returns, for many children at once.
    func testHeldLinesKeepFileOrder() throws {
        var log = "1 5.000000 execve(\"/bin/sh\", [\"sh\"], 0x1 /* 1 vars */) = 0\n"
        var t = 5_000_001
        func line(_ s: String) { log += s.replacingOccurrences(of: " @T ", with: " " +  String(format: "%d.%06d", t / 1_000_000, t % 1_000_000) + " ") + "\n"; t += 1 }
        line("1 @T clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>")
        line("2 @T mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x2000")
        line("1 @T <... clone resumed>) = 2")
        line("2 @T clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>")
        line("3 @T +++ exited with 0 +++")
        line("2 @T <... clone resumed>) = 3")
        line("2 @T +++ exited with 0 +++")
        let (records, _) = try TraceTools.importAll(write("held.st", log))
        XCTAssertEqual(records.map(\.event), [
            .start(mm: 1), .exec(old: 1, new: 2, fromVfork: false), .fork(parent: 2, child: 3),
            .mmap(mm: 3, address: 0x2000, length: 4096, protection: [.read], shared: false, backing: .anon, offset: 0),
            .fork(parent: 3, child: 4), .exit(mm: 4), .exit(mm: 3),
        ])
        var b = TraceStatsBuilder()
        records.forEach { b.add($0) }
        XCTAssertEqual(b.finish().longestForkChain, 2)
        XCTAssertEqual(b.finish().maxLiveGroupSize, 3)
    }

    /// openat gives mmap a file identity; the same path gets the same id in every process.
    func testOpenatNamesFiles() throws {
        let log = """
            1 1.000000 execve("/bin/sh", ["sh"], 0x1 /* 1 vars */) = 0
            1 1.000001 openat(AT_FDCWD, "/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3
            1 1.000002 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3, 0) = 0x7f0000000000
            1 1.000003 clone(child_stack=NULL, flags=SIGCHLD) = 2
            2 1.000004 execve("/bin/true", ["true"], 0x1 /* 1 vars */) = 0
            2 1.000005 openat(AT_FDCWD, "/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 4
            2 1.000006 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 4, 0x2000) = 0x7f1000000000
            2 1.000007 mmap(NULL, 8192, PROT_READ, MAP_SHARED, 9, 0) = 0x7f2000000000

            """
        let (records, _) = try TraceTools.importAll(write("open.st", log))
        XCTAssertEqual(records.map(\.line), [
            "0 start 1", "0 exec 1 2 own", "2 file 1 \"/lib/libc.so.6\"", "2 mmap 2 0x7f0000000000 8192 r-- private file:1 0x0",
            "3 fork 2 3", "4 exec 3 4 own", "6 mmap 4 0x7f1000000000 8192 r-- private file:1 0x2000",
            "7 mmap 4 0x7f2000000000 8192 r-- shared file:? 0x0",
        ])
    }

    /// fds followed through dup, dup2, dup3, fcntl, close, close_range and
    /// exec's close-on-exec; strace -y's FD</path> names the file outright.
    func testFdsFollowDupCloseAndCloseOnExec() throws {
        let log = """
            1 1.000000 execve("/bin/sh", ["sh"], 0x1 /* 1 vars */) = 0
            1 1.000001 openat(AT_FDCWD, "/lib/a.so", O_RDONLY|O_CLOEXEC) = 3
            1 1.000002 dup(3) = 4
            1 1.000003 dup3(3, 5, 0) = 5
            1 1.000004 fcntl(5, F_SETFD, FD_CLOEXEC) = 0
            1 1.000005 close(3) = 0
            1 1.000006 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3, 0) = 0x7f0000000000
            1 1.000007 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 4, 0) = 0x7f0000001000
            1 1.000008 openat(AT_FDCWD, "/lib", O_RDONLY|O_DIRECTORY) = 6
            1 1.000009 openat(6, "b.so", O_RDONLY) = 7
            1 1.000010 fcntl(7, F_DUPFD, 20) = 20
            1 1.000011 close_range(7, 7, 0) = 0
            1 1.000012 clone(child_stack=NULL, flags=SIGCHLD) = 2
            2 1.000013 execve("/bin/true", ["true"], 0x1 /* 1 vars */) = 0
            2 1.000014 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 4, 0) = 0x7f1000000000
            2 1.000015 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 5, 0) = 0x7f1000001000
            2 1.000016 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 20, 0) = 0x7f1000002000
            2 1.000017 openat(AT_FDCWD, "/lib/c.so", O_RDONLY|O_CLOEXEC) = 8</lib/c.so>
            2 1.000018 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 8</lib/c.so>, 0) = 0x7f1000003000
            2 1.000019 mmap(NULL, 4096, PROT_READ, MAP_SHARED, 9</memfd:jit>(deleted), 0) = 0x7f1000004000

            """
        let (records, _) = try TraceTools.importAll(write("fds.st", log))
        XCTAssertEqual(records.map(\.line), [
            "0 start 1", "0 exec 1 2 own",
            "6 mmap 2 0x7f0000000000 4096 r-- private file:? 0x0",
            "7 file 1 \"/lib/a.so\"", "7 mmap 2 0x7f0000001000 4096 r-- private file:1 0x0",
            "12 fork 2 3", "13 exec 3 4 own",
            // dup's fd 4 has no close-on-exec, 5 got it by fcntl and is closed at exec; 20 is b.so at /lib.
            "14 mmap 4 0x7f1000000000 4096 r-- private file:1 0x0",
            "15 mmap 4 0x7f1000001000 4096 r-- private file:? 0x0",
            "16 file 2 \"/lib/b.so\"", "16 mmap 4 0x7f1000002000 4096 r-- private file:2 0x0",
            "18 file 3 \"/lib/c.so\"", "18 mmap 4 0x7f1000003000 4096 r-- private file:3 0x0",
            "19 file 4 \"/memfd:jit\"", "19 mmap 4 0x7f1000004000 4096 r-- shared file:4 0x0",
        ])
    }

    /// strace -y names the working directory beside AT_FDCWD: relative
    /// paths are joined to it; raw open flags (-X raw) carry O_CLOEXEC as a
    /// bit; close_range to "every fd" closes them all.
    func testDecoratedDirectoriesRawFlagsAndCloseRange() throws {
        let log = """
            1 1.000000 execve("/bin/sh", ["sh"], 0x1 /* 1 vars */) = 0
            1 1.000001 openat(AT_FDCWD</home/u>, "lib/a.so", O_RDONLY) = 3</home/u/lib/a.so>
            1 1.000002 openat(AT_FDCWD, "/lib/b.so", 0x80000) = 4
            1 1.000003 openat(AT_FDCWD, "/lib/c.so", 0) = 5
            1 1.000004 clone(child_stack=NULL, flags=SIGCHLD) = 2
            2 1.000005 execve("/bin/true", ["true"], 0x1 /* 1 vars */) = 0
            2 1.000006 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3, 0) = 0x7f0000000000
            2 1.000007 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 4, 0) = 0x7f0000001000
            2 1.000008 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 5, 0) = 0x7f0000002000
            2 1.000009 close_range(3, 4294967295, 0) = 0
            2 1.000010 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 5, 0) = 0x7f0000003000

            """
        let (records, _) = try TraceTools.importAll(write("dirs.st", log))
        XCTAssertEqual(records.map(\.line).filter { $0.contains("mmap") || $0.contains("file") }, [
            "6 file 1 \"/home/u/lib/a.so\"", "6 mmap 4 0x7f0000000000 4096 r-- private file:1 0x0",
            "7 mmap 4 0x7f0000001000 4096 r-- private file:? 0x0",
            "8 file 2 \"/lib/c.so\"", "8 mmap 4 0x7f0000002000 4096 r-- private file:2 0x0",
            "10 mmap 4 0x7f0000003000 4096 r-- private file:? 0x0",
        ])
    }

    /// exec by a process with threads: the threads it kills are reported gone
    /// before the exec, and their '+++' lines after it are dropped.
    func testExecKillsThreads() throws {
        let log = """
            1 1.000000 execve("/p", ["p"], 0x1 /* 1 vars */) = 0
            1 1.000001 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0, stack=0x7f0000000000, stack_size=0x1000}, 88) = 2
            1 1.000002 execve("/q", ["q"], 0x1 /* 1 vars */) = 0
            2 1.000003 +++ exited with 0 +++
            1 1.000004 exit_group(0)     = ?
            1 1.000005 +++ exited with 0 +++

            """
        let (records, _) = try TraceTools.importAll(write("dethread.st", log))
        XCTAssertEqual(records.map(\.line), ["0 start 1", "0 exec 1 2 own", "1 thread 2", "2 texit 2", "2 exec 2 3 own", "5 exit 3"])
    }

    /// A task killed inside a call: the call never resumes, or resumes with no
    /// result ('= ?'); neither stops the import, and the pid can be reused.
    func testCallsCutShortByDeath() throws {
        let log = """
            1 1.000000 execve("/p", ["p"], 0x1 /* 1 vars */) = 0
            1 1.000001 clone(child_stack=NULL, flags=SIGCHLD) = 2
            2 1.000002 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0 <unfinished ...>
            1 1.000003 kill(2, SIGKILL) = 0
            2 1.000004 +++ killed by SIGKILL +++
            1 1.000005 clone(child_stack=NULL, flags=SIGCHLD) = 2
            2 1.000006 wait4(-1,  <unfinished ...>
            1 1.000007 exit_group(0 <unfinished ...>
            2 1.000008 <... wait4 resumed> <unfinished ...>) = ?
            2 1.000009 +++ exited with 0 +++
            1 1.000010 <... exit_group resumed>) = ?
            1 1.000011 +++ exited with 0 +++

            """
        let (records, c) = try TraceTools.importAll(write("death.st", log))
        XCTAssertEqual(records.map(\.line), ["0 start 1", "0 exec 1 2 own", "1 fork 2 3", "4 exit 3", "5 fork 2 4", "9 exit 4", "11 exit 2"])
        XCTAssertEqual(c.unfinishedAtExit, 1)
        XCTAssertEqual(c.noResult, ["wait4": 1])
        XCTAssertEqual(c.skipped, ["kill": 1])
    }

    /// Newer strace ends a non-leader thread's execve line with '<pid changed to N ...>';
    /// the exec may then show no resumed line at all.
    func testExecByThreadWithPidChanged() throws {
        let log = """
            1 1.000000 execve("/p", ["p"], 0x1 /* 1 vars */) = 0
            1 1.000001 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, exit_signal=0, stack=0x7f0000000000, stack_size=0x1000}, 88) = 2
            2 1.000002 execve("/p", ["/p", "0"], NULL <pid changed to 1 ...>
            1 1.000003 +++ superseded by execve in pid 2 +++
            1 1.000004 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
            1 1.000005 +++ exited with 0 +++

            """
        let (records, _) = try TraceTools.importAll(write("pidchanged.st", log))
        XCTAssertEqual(records.map(\.line), ["0 start 1", "0 exec 1 2 own", "1 thread 2", "3 texit 2", "3 exec 2 3 own",
                                              "4 mmap 3 0x7f0000000000 4096 r-- private anon 0x0", "5 exit 3"])
    }

    /// Less common spellings: raw hex clone flags, '-1 (errno N)', pkey_mprotect,
    /// '<detached ...>' when strace is interrupted, nanosecond timestamps.
    func testOtherSpellings() throws {
        let log = """
            1 1.000000000 execve("/p", ["p"], 0x1 /* 1 vars */) = 0
            1 1.000001000 clone(child_stack=0x7f0000001000, flags=0x3d0f00) = 2
            1 1.000002000 clone(child_stack=NULL, flags=CLONE_VM|0x4000|SIGCHLD) = 3
            3 1.000003000 +++ exited with 0 +++
            1 1.000004000 munmap(0x1000, 4096) = -1 (errno 22)
            1 1.000005000 pkey_mprotect(0x7f0000000000, 4096, PROT_READ, 1) = 0
            2 1.000006000 wait4(-1,  <detached ...>

            """
        let (records, c) = try TraceTools.importAll(write("spellings.st", log))
        XCTAssertEqual(records.map(\.line), ["0 start 1", "0 exec 1 2 own", "1 thread 2", "2 vfork 2", "3 vret 2",
                                              "5 mprotect 2 0x7f0000000000 4096 r--"])
        XCTAssertEqual(c.failed, ["munmap": 1])
        XCTAssertEqual(c.detached, 1)
    }
}
