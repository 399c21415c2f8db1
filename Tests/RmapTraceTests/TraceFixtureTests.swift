import Foundation
import RmapTrace
import XCTest

/// Where the fixtures live: next to this file (they are excluded from the target, not bundled).
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

/// The expected figures of a fixture, counted by hand from the log.
struct Expected {
    var forks = 0, vforks = 0, threads = 0, execs = 0, execsFromVfork = 0, exits = 0
    var mremapCalls = 0, mremapMoved = 0, mremapMovedInForkChildren = 0
    var sharedBytesBound: UInt64 = 0
    var maxLiveGroupSize = 1, longestForkChain = 0
    var groupSizeAtFork: [Int: Int] = [:]
    var addressSpaces = 0
}

/// Statistics of small cut-outs of the shared real logs (the first lines of
/// each, unchanged) and of hand-written snippets in the same format for what
/// the shared logs lack (pid reuse; exec by a multi-threaded process with a
/// `superseded` line; mremap of ranges shared with a fork relative).
final class TraceFixtureTests: XCTestCase {
    func check(_ name: String, _ e: Expected, file: StaticString = #filePath, line: UInt = #line) throws {
        let (s, counts) = try TraceTools.stats(of: fixture(name))
        XCTAssertNotNil(counts, "a raw log", file: file, line: line)
        XCTAssertEqual(s.forks, e.forks, "forks", file: file, line: line)
        XCTAssertEqual(s.vforks, e.vforks, "vforks", file: file, line: line)
        XCTAssertEqual(s.threads, e.threads, "threads", file: file, line: line)
        XCTAssertEqual(s.execs, e.execs, "execs", file: file, line: line)
        XCTAssertEqual(s.execsFromVfork, e.execsFromVfork, "execs from vfork", file: file, line: line)
        XCTAssertEqual(s.exits, e.exits, "exits", file: file, line: line)
        XCTAssertEqual(s.mremapCalls, e.mremapCalls, "mremap_calls", file: file, line: line)
        XCTAssertEqual(s.mremapMoved, e.mremapMoved, "mremap_moved", file: file, line: line)
        XCTAssertEqual(s.mremapMovedInForkChildren, e.mremapMovedInForkChildren, "mremap_moved_in_fork_children", file: file, line: line)
        XCTAssertEqual(s.mremapMovedSharedBytesBound, e.sharedBytesBound, "shared bytes bound", file: file, line: line)
        XCTAssertEqual(s.maxLiveGroupSize, e.maxLiveGroupSize, "max_live_group_size", file: file, line: line)
        XCTAssertEqual(s.longestForkChain, e.longestForkChain, "longest_fork_chain", file: file, line: line)
        XCTAssertEqual(s.groupSizeAtFork, e.groupSizeAtFork, "group_size_at_fork", file: file, line: line)
        XCTAssertEqual(s.addressSpaces, e.addressSpaces, "address spaces", file: file, line: line)
    }

    /// w1b (make -j2 of Lua), its first 123 lines. Hand count: 15451 execs make
    /// (start mm1, exec -> mm2); make posix_spawns sh with clone3(CLONE_VM|CLONE_VFORK)
    /// = 15452 (line 37-39; the child's execve, line 38, comes before the clone
    /// returns), sh vforks 15453 (vfork(), line 58-60) which execs make, that make
    /// clone3-vforks 15454 (sh), which vforks 15455 (make). 4 vforks, 5 execs of
    /// which 4 by vfork children, 6 mms, no fork, no exit; every group has one
    /// member. The log ends inside four wait4 calls (left unfinished).
    func testVforkPosixSpawn() throws {
        try check("w1b_vfork_spawn.st", Expected(vforks: 4, execs: 5, execsFromVfork: 4, addressSpaces: 6))
        let (_, c) = try TraceTools.importAll(fixture("w1b_vfork_spawn.st"))
        XCTAssertEqual(c.unfinishedAtEnd, 4)
    }

    /// w5 (swift build), its first 130 lines. Hand count: swift starts (mm1, exec ->
    /// mm2), creates thread 14868 with clone3(CLONE_VM|...|CLONE_THREAD) at line 119,
    /// then execs swift-build (line 124, unfinished); the thread's '+++ exited'
    /// (line 125) comes before the execve returns (line 126): texit, then exec -> mm3.
    func testThreadsAndExecOfAThreadedProcess() throws {
        try check("w5_threads.st", Expected(threads: 1, execs: 2, addressSpaces: 3))
        let (records, _) = try TraceTools.importAll(fixture("w5_threads.st"))
        let lifecycle = records.map(\.event).filter {
            switch $0 {
            case .start, .exec, .thread, .threadExit, .exit, .fork, .vfork, .vforkReturn: true
            default: false
            }
        }
        XCTAssertEqual(lifecycle, [.start(mm: 1), .exec(old: 1, new: 2, fromVfork: false), .thread(mm: 2),
                                   .threadExit(mm: 2), .exec(old: 2, new: 3, fromVfork: false)])
    }

    /// w4c (forking HTTP server), its first 330 lines. Hand count from the clone
    /// and '+++' lines: 23 forks that returned a pid (lines 181 ... 328), 3 clone
    /// calls ended in ERESTARTNOINTR (lines 289, 297, 313: nothing created),
    /// 17 children exited. The server's group, followed fork by fork and exit by
    /// exit, reaches 7 members (after lines 206, 269, 277, 320, 328); the group size
    /// right after each fork: 2,2,3,3,4,5,6,6,7,6,5,6,6,5,6,7,7,5,6,6,7,6,7. One exec
    /// (the first line): 1 + 1 + 23 mms.
    func testForksWithRestartedClones() throws {
        try check("w4c_restarted_forks.st", Expected(
            forks: 23, execs: 1, exits: 17, maxLiveGroupSize: 7, longestForkChain: 1,
            groupSizeAtFork: [2: 2, 3: 2, 4: 1, 5: 4, 6: 9, 7: 5], addressSpaces: 25))
        let (_, c) = try TraceTools.importAll(fixture("w4c_restarted_forks.st"))
        XCTAssertEqual(c.restarted, ["clone": 3])
    }

    /// Hand-written (the shared logs reuse no pid): pid 101 is forked, exits, and
    /// is forked again; the second child's first line (mmap) comes before the
    /// clone returns. mm1 start, mm2 exec, mm3 first fork (exits), mm4 second fork
    /// (execs to mm5, exits), mm2 exits: 2 forks, 2 execs, 3 exits; the group of
    /// mm2 has 2 members at each fork.
    func testPidReuse() throws {
        try check("hand_pid_reuse.st", Expected(forks: 2, execs: 2, exits: 3, maxLiveGroupSize: 2, longestForkChain: 1,
                                                 groupSizeAtFork: [2: 2], addressSpaces: 5))
        let (records, c) = try TraceTools.importAll(fixture("hand_pid_reuse.st"))
        XCTAssertEqual(c.seenBeforeClone, 1)
        XCTAssertEqual(records.map(\.line), [
            "0 start 1", "0 exec 1 2 own", "200 mmap 2 0x7f3a10000000 8192 rw- private anon 0x0",
            "300 fork 2 3", "500 exit 3",
            "900 fork 2 4",  // at the child's first line, before the clone's return (line 11)
            "900 mmap 4 0x7f3a10010000 4096 rw- private anon 0x0", "1100 exec 4 5 own", "1300 exit 5", "1500 exit 2",
        ])
    }

    /// Hand-written: a process with two clone3 threads (one seen before its
    /// clone3 returns); one thread posix_spawns with clone(CLONE_VM|CLONE_VFORK)
    /// a child whose execve fails (ENOENT, nothing emitted) and which exits
    /// (vret); the other thread exits; the spawning thread execs, the leader's
    /// line says '+++ superseded by execve in pid 201 +++' (the leader's task is
    /// gone: texit) and the exec is applied there; the execve line ends under the
    /// leader's pid (already applied: nothing more); killed by SIGTERM.
    func testThreadExecSupersededAndFailedSpawn() throws {
        try check("hand_thread_exec.st", Expected(vforks: 1, threads: 2, execs: 2, exits: 1, addressSpaces: 3))
        let (records, c) = try TraceTools.importAll(fixture("hand_thread_exec.st"))
        XCTAssertEqual(c.failed, ["execve": 1])
        XCTAssertEqual(c.seenBeforeClone, 2)  // thread 202 and spawned child 203
        XCTAssertEqual(records.map(\.line), [
            "0 start 1", "0 exec 1 2 own", "100 mmap 2 0x7f0000000000 8392704 --- private anon 0x0",
            "200 thread 2", "400 thread 2", "400 mmap 2 0x7e0000000000 134217728 --- private anon 0x0",
            "900 vfork 2", "900 vret 2", "1200 texit 2", "1400 texit 2", "1400 exec 2 3 own",
            "1700 brk 3 0x5600aa000000 0x5600aa021000", "1900 exit 3",
        ])
    }

    /// Hand-written: 1 MiB mapped, its first 64 KiB marked MADV_DONTFORK, fork.
    /// The child moves the other 960 KiB (shared with the parent: 983040 bytes
    /// counted), maps 64 KiB and moves it (mapped after the fork: 0), fails one
    /// mremap (ENOMEM: not a call). The parent moves the same 960 KiB while the
    /// child lives (983040 more), the child exits, the parent moves it again
    /// (group of one: 0) and grows it in place (not moved). 5 calls, 4 moved,
    /// 2 of them in the fork child; bound 2 x 983040 = 1966080.
    func testMremapAfterFork() throws {
        try check("hand_mremap_fork.st", Expected(
            forks: 1, execs: 1, exits: 2, mremapCalls: 5, mremapMoved: 4, mremapMovedInForkChildren: 2,
            sharedBytesBound: 1_966_080, maxLiveGroupSize: 2, longestForkChain: 1, groupSizeAtFork: [2: 1], addressSpaces: 3))
    }
}
