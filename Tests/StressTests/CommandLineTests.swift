import ConcurrentRmap
import Foundation
import XCTest
@testable import Measurement
@testable import RunEngine
@testable import StressSupport

/// The command line itself: exit statuses, one-line usage errors for every
/// hostile value, signals, result files, build identity, compare's honesty.
final class CommandLineTests: XCTestCase {
    static func stressBinary() throws -> URL {
        // SwiftPM builds the executable next to the test runner (.build/debug).
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let bundle = Bundle(for: CommandLineTests.self).bundleURL
        for dir in [runner, bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("stress")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw XCTSkip("stress executable not built next to the tests")
    }

    struct Ran {
        var status: Int32
        var signaled: Bool
        var out: String
        var err: String
    }

    /// Runs the stress binary to completion.
    func run(_ args: [String], cwd: String? = nil) throws -> Ran {
        let p = Process()
        p.executableURL = try CommandLineTests.stressBinary()
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
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

    /// Starts the binary with output into files (for signal tests).
    func start(_ args: [String], dir: String) throws -> Process {
        let p = Process()
        p.executableURL = try CommandLineTests.stressBinary()
        p.arguments = args
        _ = FileManager.default.createFile(atPath: dir + "/out", contents: nil)
        _ = FileManager.default.createFile(atPath: dir + "/err", contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: dir + "/out")
        p.standardError = FileHandle(forWritingAtPath: dir + "/err")
        try p.run()
        return p
    }

    func tempDir(_ name: String) -> String {
        let d = NSTemporaryDirectory() + "crmap-cli-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: d)
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    func wait(for p: Process, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < end { usleep(20_000) }
        return !p.isRunning
    }

    func waitUntil(_ seconds: Double, _ cond: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while !cond() && Date() < end { usleep(20_000) }
        return cond()
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func result(_ path: String) throws -> StressResult {
        try ResultFile.decoder().decode(StressResult.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// A quick, small run's options.
    let small = ["--threads", "2", "--frames", "1024", "--processes", "32"]

    // MARK: Hostile input

    /// Every hostile value is a usage error: exit 2, exactly one line on
    /// standard error, nothing on standard output, never a signal.
    func testHostileInputIsAOneLineUsageError() throws {
        let dir = tempDir("hostile")
        try Data("[]".utf8).write(to: URL(fileURLWithPath: dir + "/empty.json"))
        try Data("not json".utf8).write(to: URL(fileURLWithPath: dir + "/bad.json"))
        var cases: [[String]] = []
        // run: numbers out of range, malformed, non-finite, hex, empty, huge.
        for v in ["0", "-1", "4097", "99999999999999999999999", "", "abc", "1.5", "0x10"] { cases.append(["run", "--threads", v]) }
        for v in ["0", "-1", "nan", "inf", "1e308", "1e-300", "0x1p3", "", "abc", "604801"] { cases.append(["run", "--duration", v]) }
        for v in ["0", "-5", "1e3", "1000000000001", "99999999999999999999999"] { cases.append(["run", "--ops", v]) }
        for v in ["-1", "nan", "3601"] { cases.append(["run", "--warmup", v]) }
        for v in ["-1", "18446744073709551616", "x"] { cases.append(["run", "--seed", v]) }
        for v in ["1.9e10", "1e308", "0.01", "-1", "nan"] { cases.append(["run", "--audit-interval", v]) }
        for v in ["1e19", "0.001", "0", "inf"] { cases.append(["run", "--stall-timeout", v]) }
        for v in ["1e-9", "61"] { cases.append(["run", "--gp-probe-interval", v]) }
        for v in ["-1", "1000001"] { cases.append(["run", "--latency-sample", v]) }
        for v in ["0", "63", "16777217"] { cases.append(["run", "--frames", v]) }
        cases += [["run", "--swap-slots", "0"], ["run", "--processes", "0"], ["run", "--processes", "65537"],
                  ["run", "--vma-pages", "7"], ["run", "--vma-pages", "0"], ["run", "--vma-pages", "1024"],
                  ["run", "--vmas-per-process", "0"], ["run", "--vmas-per-process", "9"],
                  ["run", "--population", "100000"], ["run", "--family-size", "70000"], ["run", "--sample-interval", "0"],
                  ["run", "--pin-first", "1"], ["run", "--pin", "--pin-first", "-1"], ["run", "--pin", "--pin-first", "4097"],
                  ["run", "--libraries", "5"], ["run", "--libraries", "-1"], ["run", "--libraries", "x"], ["run", "--i-mmap", "heap"],
                  ["run", "--i-mmap", ""], ["run", "--inodes", "65537"], ["run", "--inodes", "-1"], ["run", "--inodes", "0"],
                  ["run", "--shmem-inodes", "4097"], ["run", "--shmem-inodes", "x"], ["run", "--inject", "i-mmap-tree-stale-max"]]
        for v in ["", "foo=1", "fault=-1", "fault=1,fault=2", "fault=0"] { cases.append(["run", "--mix", v]) }
        cases += [["run", "--workload", "aim8"], ["run", "--workload", ""], ["run", "--workload", "aim7", "--population", "4"],
                  ["run", "--workload", "zygote", "--family-size", "2"], ["run", "--workload", "fork-heavy", "--mix", "fault=1"],
                  ["run", "--workload", "aim7", "--workload", "zygote"]]
        cases += [["run", "--scheme", "anon_vma"], ["run", "--scheme", ""], ["run", "--scheme", "anongroup", "--scheme", "anon-vma"],
                  ["run", "--scheme", "anon-vma", "--inject", "mremap-no-copy"], ["run", "--inject", "anon-vma-split-unlinked"],
                  ["selftest", "--scheme", "x"], ["selftest", "--scheme", "anon-vma", "--only", "mremap-no-copy"],
                  ["bench", "--scheme", "x"], ["compare", "--scheme", "x", dir + "/missing", dir + "/missing"],
                  ["scale", "--scheme", "x"] + ["--out", dir + "/scale"]]
        cases += [["run", "--rcu", "x"], ["run", "--sync", "x"], ["run", "--checks", "x"], ["run", "--inject", "nosuch"],
                  ["run", "--threads", "2", "--threads", "3"], ["run", "--perturb", "--perturb"],
                  ["--threads=2", "--threads=3"], ["run", "--json", ""], ["run", "--json", dir + "/no/such/dir/x.json"],
                  ["run", "--json", dir], ["run", "--options-from", dir + "/missing.json"],
                  ["run", "--options-from", dir + "/bad.json"], ["run", "--bogus"], ["help", "nosuch"]]
        // selftest
        for v in ["0", "1e308", "nan"] { cases.append(["selftest", "--time-per-injection", v]) }
        cases += [["selftest", "--clean-duration", "1e308"], ["selftest", "--clean-duration", "-1"],
                  ["selftest", "--threads", "0"], ["selftest", "--only", ""], ["selftest", "--only", "nosuch"],
                  ["selftest", "--only", "mremap-no-copy,"], ["selftest", "--only", "none"], ["selftest", "--seed", "-1"]]
        // scale
        let out = ["--out", dir + "/scale"]
        cases += [["scale", "--threads", ""] + out, ["scale", "--threads", "0"] + out, ["scale", "--threads", "1,1"] + out,
                  ["scale", "--sync", "x"] + out, ["scale", "--rcu", "x"] + out, ["scale", "--repeat", "0"] + out,
                  ["scale", "--repeat", "101"] + out, ["scale", "--audit-interval", "1e308"] + out,
                  ["scale", "--duration", "1e308"] + out, ["scale", "--group-sizes", "0"] + out, ["scale"],
                  ["scale", "--out", "/proc/crmap-cannot-exist"],
                  ["scale", "--per-thread-size", "--threads", "1,4096", "--frames", "8192"] + out]
        // compare
        cases += [["compare"], ["compare", dir + "/missing", dir + "/missing"], ["compare", dir + "/empty.json", dir + "/empty.json"],
                  ["compare", dir + "/bad.json", dir + "/bad.json"]]
        // bench
        for v in ["1e308", "1e-300", "0", "nan", "inf", "0x1p3"] { cases.append(["bench", "--work", v]) }
        cases += [["bench", "--repeat", "0"], ["bench", "--pages", "3"], ["bench", "--group", "0"], ["bench", "--checks", "x"],
                  ["bench", "--json", dir + "/no/such/dir/b.json"]]
        XCTAssertGreaterThanOrEqual(cases.count, 60)
        for args in cases {
            let r = try run(args)
            XCTAssertFalse(r.signaled, "\(args): killed by signal \(r.status)")
            XCTAssertEqual(r.status, 2, "\(args): \(r.err)")
            XCTAssertTrue(r.out.isEmpty, "\(args): stdout \(r.out.prefix(200))")
            let lines = r.err.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
            XCTAssertEqual(lines.count, 1, "\(args): \(r.err)")
            XCTAssertTrue(r.err.hasPrefix("stress: error:"), "\(args): \(r.err)")
        }
    }

    func testUsageErrorsNameTheRange() throws {
        XCTAssertTrue(try run(["run", "--duration", "1e308"]).err.contains("0.1...604800 seconds"))
        XCTAssertTrue(try run(["run", "--stall-timeout", "0.001"]).err.contains("1...3600 seconds"))
        XCTAssertTrue(try run(["bench", "--work", "1e-300"]).err.contains("0.0001...100"))
        let sch = try run(["run", "--scheme", "nosuch"]).err
        XCTAssertTrue(sch.contains("anongroup, anon-vma"), "an unknown scheme lists the schemes: \(sch)")
        XCTAssertTrue(try run(["run", "--inject", "anon-vma-no-recheck"]).err.contains("bug of the anon-vma scheme"))
        XCTAssertTrue(try run(["run", "--libraries", "9"]).err.contains("0...4"))
        XCTAssertTrue(try run(["run", "--i-mmap", "heap"]).err.contains("list, tree"))
        XCTAssertTrue(try run(["run", "--inject", "i-mmap-tree-stale-max"]).err.contains("bug of i_mmap tree"))
        let inj = try run(["run", "--inject", "nosuch"]).err
        for i in Injection.allCases { XCTAssertTrue(inj.contains(i.rawValue), "the whole list of names: \(i.rawValue)") }
    }

    // MARK: Exit statuses and verdicts

    func testPlantedViolationExits1WithDump() throws {
        let r = try run(small + ["--duration", "5", "--seed", "7", "--quiet", "--perturb", "--inject", "mremap-no-copy",
                                 "--mix", "fault=40,fork=10,exit=5,mremap=20,migrate=25"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.out.contains("first violation"))
        XCTAssertTrue(r.out.contains("reproduce with: stress run --scheme anongroup --threads 2"), r.out)
        XCTAssertTrue(r.out.contains("--seed 7"))
        XCTAssertTrue(r.out.contains("last operations per worker"))
        XCTAssertTrue(r.out.contains("FAILURE:"))
    }

    /// A stall names the stuck worker, what it was doing and for how long,
    /// and the table keeps the counts reached (they are not all zero).
    func testStallExits3NamingTheWorker() throws {
        let dir = tempDir("stall")
        let r = try run(small + ["--duration", "30", "--quiet", "--stall-timeout", "1", "--inject", "rcu-reader-stall",
                                 "--json", dir + "/r.json"])
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.out.contains("STALL"), r.out)
        XCTAssertTrue(r.out.contains("worker 0"), r.out)
        XCTAssertTrue(r.out.contains("stuck workers"), r.out)
        let j = try result(dir + "/r.json")
        XCTAssertEqual(j.verdict, Verdict.stall)
        XCTAssertGreaterThan(j.totalCompleted, 0, "the other worker's counts are kept")
        XCTAssertEqual(j.stalledWorkers?.first?.worker, 0)
        XCTAssertTrue(j.stalledWorkers?.first?.operation.hasPrefix("migrate") == true
                      || j.stalledWorkers?.first?.operation.hasPrefix("reclaim") == true, "\(j.stalledWorkers ?? [])")
    }

    /// The planted teardown-corrupting bug ends with a verdict and a
    /// readable, non-empty result file, run after run.
    func testTeardownCorruptingBugAlwaysEndsInAVerdict() throws {
        let dir = tempDir("teardown")
        for seed in 1...20 {
            let path = dir + "/r\(seed).json"
            let r = try run(small + ["--duration", "10", "--seed", "\(seed)", "--quiet", "--perturb",
                                     "--inject", "mm-pin-no-zero-check", "--json", path,
                                     "--mix", "fault=30,fork=20,exit=20,exec=10,migrate=10,reclaim=10"])
            XCTAssertFalse(r.signaled, "seed \(seed): killed by signal \(r.status)")
            XCTAssertEqual(r.status, 1, "seed \(seed): \(r.out.suffix(300))")
            XCTAssertTrue(r.out.contains("FAILURE"), "seed \(seed)")
            let j = try result(path)
            XCTAssertEqual(j.verdict, Verdict.failure, "seed \(seed)")
            XCTAssertFalse(j.violations.isEmpty, "seed \(seed)")
        }
    }

    // MARK: Signals

    func testSIGINTAndSIGTERMStopTheRunWithATableAVerdictAndTheJSON() throws {
        for (sig, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let dir = tempDir("signal-\(sig)")
            let json = dir + "/r.json"
            let p = try start(small + ["--duration", "60", "--quiet", "--json", json], dir: dir)
            XCTAssertTrue(waitUntil(20) { FileManager.default.fileExists(atPath: json) }, "the first snapshot is written at start")
            usleep(500_000)
            kill(p.processIdentifier, sig)
            XCTAssertTrue(wait(for: p, seconds: 20), "the run stops")
            XCTAssertEqual(p.terminationReason, .exit)
            XCTAssertEqual(p.terminationStatus, status)
            let out = read(dir + "/out")
            XCTAssertTrue(out.contains("operation    completed"), out)
            XCTAssertTrue(out.contains("INTERRUPTED by signal \(sig)"), out)
            let j = try result(json)
            XCTAssertEqual(j.verdict, Verdict.interrupted)
            XCTAssertEqual(j.exitStatus, status)
            XCTAssertGreaterThan(j.totalCompleted, 0)
        }
    }

    /// A second signal exits at once, even while the first is still being
    /// handled (here: a stuck worker keeps the stop waiting for 60 s).
    func testSecondSignalExitsAtOnce() throws {
        let dir = tempDir("second")
        let p = try start(small + ["--duration", "60", "--quiet", "--stall-timeout", "60", "--inject", "rcu-reader-stall",
                                   "--json", dir + "/r.json"], dir: dir)
        XCTAssertTrue(waitUntil(20) { FileManager.default.fileExists(atPath: dir + "/r.json") })
        usleep(300_000)
        kill(p.processIdentifier, SIGINT)
        usleep(300_000)
        XCTAssertTrue(p.isRunning, "the first signal waits for the stuck worker")
        let t0 = Date()
        kill(p.processIdentifier, SIGINT)
        XCTAssertTrue(wait(for: p, seconds: 5))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5)
        XCTAssertEqual(p.terminationStatus, 130)
    }

    /// selftest passes the signal on to its child, keeps its rows, leaves
    /// no orphan and no temporary file behind.
    func testSelftestPassesTheSignalOnAndLeavesNoOrphan() throws {
        let dir = tempDir("selftest-signal")
        let p = try start(["selftest", "--threads", "2", "--clean-duration", "2", "--time-per-injection", "30",
                           "--only", "rcu-reader-stall,mremap-no-copy", "--seed", "5"], dir: dir)
        // The clean row is printed after 2 s; the next child hangs (a stall
        // that its 5 s stall timeout will end) when we interrupt it.
        XCTAssertTrue(waitUntil(60) { read(dir + "/out").contains("(none: correct model)") }, read(dir + "/out"))
        usleep(1_000_000)
        kill(p.processIdentifier, SIGINT)
        XCTAssertTrue(wait(for: p, seconds: 30))
        XCTAssertEqual(p.terminationStatus, 130, read(dir + "/out") + read(dir + "/err"))
        let out = read(dir + "/out")
        XCTAssertTrue(out.contains("INTERRUPTED by signal 2"), out)
        XCTAssertTrue(out.contains("clean"), out)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
        XCTAssertFalse(leftovers.contains { $0.hasPrefix("crmap-\(p.processIdentifier)-") }, "temporary files removed")
        // No `stress run` child of it is left running.
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for pid in procs where Int32(pid) != nil {
            let cmd = read("/proc/\(pid)/cmdline").replacingOccurrences(of: "\0", with: " ")
            XCTAssertFalse(cmd.contains("crmap-\(p.processIdentifier)-selftest"), "orphan: \(pid) \(cmd)")
        }
    }

    /// scale passes the signal on and writes the points it finished.
    func testScaleKeepsItsPointsWhenInterrupted() throws {
        let dir = tempDir("scale-signal")
        let p = try start(["scale", "--threads", "1,2", "--sync", "rcu", "--repeat", "3", "--duration", "1", "--warmup", "0",
                           "--no-ceiling", "--frames", "1024", "--processes", "32", "--out", dir + "/sweep"], dir: dir)
        XCTAssertTrue(waitUntil(60) { read(dir + "/out").contains("[  2/6]") }, read(dir + "/out"))
        kill(p.processIdentifier, SIGINT)
        XCTAssertTrue(wait(for: p, seconds: 30))
        XCTAssertEqual(p.terminationStatus, 130, read(dir + "/out") + read(dir + "/err"))
        let runs = try ScaleFiles.decoder().decode([ScaleRun].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/sweep/runs.json")))
        XCTAssertGreaterThanOrEqual(runs.count, 2, "the points finished are kept")
        // The report says what it is: interrupted, n of 6 runs, its commit.
        let html = read(dir + "/sweep/report.html")
        XCTAssertTrue(html.contains(">INTERRUPTED</span>"), "the report is marked INTERRUPTED")
        XCTAssertTrue(html.contains("of 6 planned runs finished"))
        XCTAssertTrue(html.contains("<b>Commit:</b> <code>\(StressVersion.gitCommit)</code>"))
        XCTAssertTrue(read(dir + "/out").contains("INTERRUPTED"))
    }

    /// Result files are never truncated before a result exists: an earlier
    /// file of the name survives a run killed at start-up (or holds a
    /// complete snapshot), and a crashed run leaves a readable snapshot.
    func testResultFilesAreWrittenAtomically() throws {
        let dir = tempDir("atomic")
        let json = dir + "/r.json"
        for delay in [0, 20_000, 100_000, 300_000] {
            try Data("old".utf8).write(to: URL(fileURLWithPath: json))
            let p = try start(small + ["--duration", "60", "--quiet", "--json", json], dir: dir)
            usleep(useconds_t(delay))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let text = read(json)
            XCTAssertTrue(text == "old" || (try? result(json)) != nil, "after \(delay) us: \(text.prefix(100))")
        }
        let crash = ChildRun.run(small + ["--duration", "60", "--debug-crash-after", "1.5"], deadline: 60, tag: "crash",
                                 executable: try CommandLineTests.stressBinary())
        XCTAssertEqual(crash.ending, .signaled(SIGSEGV))
        XCTAssertEqual(crash.result?.verdict, Verdict.running, "the last snapshot says how far it got")
        let (status, _, what) = SelftestScore.score(.mremapNoCopy, crash)
        XCTAssertEqual(status, "crashed")
        XCTAssertTrue(what.contains("crashed (signal 11)"), what)
    }

    func testJSONToStandardOutput() throws {
        let r = try run(small + ["--duration", "0.3", "--json", "-"])
        XCTAssertEqual(r.status, 0)
        let j = try ResultFile.decoder().decode(StressResult.self, from: Data(r.out.utf8))
        XCTAssertEqual(j.verdict, Verdict.success)
        XCTAssertTrue(r.err.contains("SUCCESS"), "the report goes to standard error")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "-"))
    }

    func testOptionsFromRebuildsTheRun() throws {
        let dir = tempDir("options")
        let a = try run(small + ["--duration", "0.3", "--seed", "99", "--mix", "fault=50,migrate=50", "--family-size", "3",
                                 "--quiet", "--json", dir + "/a.json"])
        XCTAssertEqual(a.status, 0)
        let b = try run(["run", "--options-from", dir + "/a.json", "--quiet", "--json", dir + "/b.json"])
        XCTAssertEqual(b.status, 0)
        XCTAssertEqual(try result(dir + "/a.json").settings, try result(dir + "/b.json").settings)
        let c = try run(["run", "--options-from", dir + "/a.json", "--duration", "0.2", "--quiet", "--json", dir + "/c.json"])
        XCTAssertEqual(c.status, 0)
        var expect = try result(dir + "/a.json").settings
        expect.durationS = 0.2
        XCTAssertEqual(try result(dir + "/c.json").settings, expect)
        // Only a result file or a bare settings object, with known keys.
        let text = try String(contentsOfFile: dir + "/a.json", encoding: .utf8)
        for (name, bad) in [("misspelt", text.replacingOccurrences(of: "\"family_size\"", with: "\"familysize\"")),
                            ("schedule", #"{"format": "concurrent-rmap-schedule", "settings": {"threads": 2}}"#),
                            ("array", "[1, 2]")] {
            try bad.write(toFile: dir + "/\(name).json", atomically: true, encoding: .utf8)
            let r = try run(["run", "--options-from", dir + "/\(name).json", "--quiet"])
            XCTAssertEqual(r.status, 2, "\(name): \(r.err)")
            XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
        }
        try #"{"threads": 2, "duration_s": 0.2}"#.write(toFile: dir + "/bare.json", atomically: true, encoding: .utf8)
        XCTAssertEqual(try run(["run", "--options-from", dir + "/bare.json", "--quiet", "--frames", "512", "--processes", "16"]).status, 0)
    }

    // MARK: Build identity

    func testVersionRecordsTheCommitItWasBuiltFrom() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: repo.appendingPathComponent(".git").path) else {
            throw XCTSkip("not a git checkout")
        }
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        git.arguments = ["git", "-C", repo.path, "rev-parse", "--short=12", "HEAD"]
        let pipe = Pipe()
        git.standardOutput = pipe
        try git.run()
        git.waitUntilExit()
        let head = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // From another directory (no repository there): the same commit.
        let v = try run(["--version"], cwd: "/")
        XCTAssertEqual(v.status, 0)
        XCTAssertTrue(v.out.contains("commit \(head)"), "\(v.out) vs \(head)")
    }

    // MARK: compare

    func testCompareRefusesDifferentSettingsAndExplainsItsFigures() throws {
        let dir = tempDir("compare")
        XCTAssertEqual(try run(small + ["--duration", "0.3", "--seed", "1", "--quiet", "--json", dir + "/a.json"]).status, 0)
        XCTAssertEqual(try run(small + ["--duration", "0.3", "--seed", "2", "--quiet", "--json", dir + "/b.json"]).status, 0)
        XCTAssertEqual(try run(small + ["--duration", "0.3", "--mix", "fault=1", "--quiet", "--json", dir + "/c.json"]).status, 0)
        let same = try run(["compare", dir + "/a.json", dir + "/b.json"])
        XCTAssertEqual(same.status, 0, same.err)
        XCTAssertTrue(same.out.contains("± is the standard deviation"))
        XCTAssertTrue(same.out.contains("idle/s"))
        let differ = try run(["compare", dir + "/a.json", dir + "/c.json"])
        XCTAssertEqual(differ.status, 2)
        XCTAssertTrue(differ.err.contains("mix"), differ.err)
        let forced = try run(["compare", "--force", dir + "/a.json", dir + "/c.json"])
        XCTAssertEqual(forced.status, 0)
        XCTAssertTrue(forced.out.contains("FORCED"))
        XCTAssertTrue(forced.out.contains("ops/s (!)"))
    }

    func testListInjections() throws {
        let r = try run(["--list-injections"])
        XCTAssertEqual(r.status, 0)
        for i in Injection.allCases where i != .none { XCTAssertTrue(r.out.contains(i.rawValue), i.rawValue) }
    }
}
