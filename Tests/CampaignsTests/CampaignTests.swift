import Foundation
import XCTest
@testable import Campaigns
@testable import RunEngine
@testable import StressSupport

/// Campaigns: plans, signatures and result decoding on their own, then
/// campaigns run for real (`stress campaign` and `stress run` children).
final class CampaignTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "crmap-campaign-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func stressBinary() throws -> String {
        // SwiftPM builds the executable next to the test runner (.build/debug).
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let bundle = Bundle(for: CampaignTests.self).bundleURL
        for d in [runner, bundle, bundle.deletingLastPathComponent()] {
            let candidate = d.appendingPathComponent("stress").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw XCTSkip("stress executable not built next to the tests")
    }

    func stress(_ args: [String], path: String? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try stressBinary())
        p.arguments = args
        if let path {
            var env = ProcessInfo.processInfo.environment
            env["PATH"] = path
            p.environment = env
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func write(_ text: String, _ name: String, executable: Bool = false) -> String {
        let path = dir + "/" + name
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: executable ? [.posixPermissions: 0o755] : nil)
        return path
    }

    func report(_ results: String) throws -> CampaignReport {
        let data = try XCTUnwrap(FileManager.default.contents(atPath: results + "/report.json"))
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        return try dec.decode(CampaignReport.self, from: data)
    }

    /// Every file under `path` with its bytes, to show a refusal changed nothing.
    func snapshot(_ path: String) -> [String: Data] {
        var out: [String: Data] = [:]
        for f in FileManager.default.enumerator(atPath: path)?.compactMap({ $0 as? String }) ?? [] {
            out[f] = FileManager.default.contents(atPath: path + "/" + f) ?? Data()
        }
        return out
    }

    func waitForChildPid(_ results: String, cell: String = "00000", seconds: Double = 30) throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: "\(results)/cells/\(cell)/cell.json"),
               let r = try? CellRecord.decoder.decode(CellRecord.self, from: data), let pid = r.pid { return pid }
            usleep(20_000)
        }
        throw XCTSkip("the cell never started")
    }

    func plan(_ json: String) throws -> CampaignPlan { try CampaignPlan(json: Data(json.utf8), label: "test") }

    /// A real `stress run` result file, run once: reports read results
    /// strictly, so stand-in results must be whole ones.
    nonisolated(unsafe) static var realResult: [String: Any]?

    func resultObject() throws -> [String: Any] {
        if let r = Self.realResult { return r }
        let path = dir + "/real-result.json"
        let run = try stress(["run", "--threads", "1", "--duration", "0.2", "--seed", "1", "--quiet", "--json", path])
        XCTAssertEqual(run.status, 0, run.err)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        Self.realResult = o
        return o
    }

    /// Writes a real result made to fit cell `i` (its settings, `verdict`,
    /// `changes`) and, unless `record` is false, a record saying it passed.
    func writeFinished(_ folder: ResultsFolder, _ i: Int, verdict: String = "SUCCESS", record: Bool = true,
                       _ changes: (inout [String: Any]) -> Void = { _ in }) throws {
        let c = folder.plan.cell(i)
        var o = try resultObject()
        var settings = o["settings"] as! [String: Any]
        for (name, value) in c.values {
            switch name {
            case .seed: settings["seed"] = UInt64(value)!
            case .threads: settings["threads"] = Int(value)!
            case .duration: settings["duration_s"] = Double(value)!
            case .ops: settings["ops"] = UInt64(value)!
            default: settings[name == .inject ? "inject" : name.rawValue] = value
            }
        }
        o["settings"] = settings
        o["verdict"] = verdict
        let exit: Int32 = verdict == "SUCCESS" || verdict == "RUNNING" ? 0 : verdict == "FAILURE" ? 1 : 3
        o["exit_status"] = Int(exit)
        o["elapsed_s"] = 0.2
        changes(&o)
        try makeFolder(folder.cellFolder(i))
        try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: folder.resultPath(i)))
        if record {
            try folder.write(CellRecord(index: i, key: c.key, state: verdict == "SUCCESS" ? .passed : .failed, verdict: verdict,
                                        exitStatus: exit, wallS: 1,
                                        command: [], reproduce: c.reproduce, attempt: 1, started: "", host: "h"))
        }
    }

    // MARK: Plans, signatures, results

    func testExpansionOrderCommandsAndTimeout() throws {
        let p = try plan(#"{"name":"t","axes":{"threads":[1,2],"seed":{"count":2,"first":5},"rcu":["memb","qsbr"],"duration":1.5}}"#)
        XCTAssertEqual(p.cellCount, 8)
        XCTAssertEqual(p.axes.map(\.name), [.seed, .rcu, .threads, .duration])
        // Seed outermost, last axis fastest.
        XCTAssertEqual(p.cell(0).runArguments, ["--threads", "1", "--duration", "1.5", "--seed", "5", "--rcu", "memb"])
        XCTAssertEqual(p.cell(1).runArguments, ["--threads", "2", "--duration", "1.5", "--seed", "5", "--rcu", "memb"])
        XCTAssertEqual(p.cell(2).value(.rcu), "qsbr")
        XCTAssertEqual(p.cell(4).seed, "6")
        XCTAssertEqual(p.cell(7).key, "seed=6 rcu=qsbr threads=2 duration=1.5")
        XCTAssertEqual(p.cell(0).reproduce, "stress run --threads 1 --duration 1.5 --seed 5 --rcu memb")
        XCTAssertEqual(p.cell(0).timeout, 63)
        XCTAssertEqual(Set(p.cells.map(\.key)).count, 8)
        let asked = try XCTUnwrap(p.machineTimeAsked())
        XCTAssertEqual(asked.cellSeconds, 12, accuracy: 1e-9)
        XCTAssertEqual(asked.cpuSeconds, 18, accuracy: 1e-9)  // 4 cells × 1.5 s × 1 thread + 4 × 1.5 × 2
        XCTAssertEqual(try XCTUnwrap(p.machineTimeAsked(cpusPerCell: 4)).cpuSeconds, 48, accuracy: 1e-9)
    }

    func testSeedListScalarsOpsAndFixedArguments() throws {
        let p = try plan(#"{"axes":{"seed":[3,1],"threads":2,"ops":1000,"inject":"none"},"run_args":["--frames","1024"],"cell_timeout":30}"#)
        XCTAssertEqual(p.name, "campaign")
        XCTAssertEqual(p.cellCount, 2)
        XCTAssertEqual(p.cell(0).runArguments, ["--threads", "2", "--ops", "1000", "--seed", "3", "--inject", "none", "--frames", "1024"])
        XCTAssertEqual(p.cell(1).seed, "1")
        XCTAssertEqual(p.cell(0).timeout, 30)
        XCTAssertNil(p.machineTimeAsked(), "ops cells have no known length")
        XCTAssertNil(try plan(#"{"axes":{"seed":[1],"threads":1,"ops":5}}"#).cell(0).duration)
        XCTAssertEqual(try plan(#"{"axes":{"seed":[1],"threads":1,"ops":5}}"#).cell(0).timeout, 3600)
    }

    func testMixIsNormalisedSoSpellingsOfOneMixAreOneValue() throws {
        let p = try plan(#"{"axes":{"seed":[1],"threads":1,"duration":1,"mix":["default","fork=4, fault=60"]}}"#)
        // Weights are reduced by their common divisor: the same draw table.
        XCTAssertEqual(p.axis(.mix)?.values, [OperationMix.default.description, "fault=15,fork=1"])
        XCTAssertThrowsError(try plan(#"{"axes":{"seed":[1],"threads":1,"duration":1,"mix":["fault=60,fork=4","fork=1,fault=15"]}}"#))
        XCTAssertThrowsError(try plan(#"{"axes":{"seed":[1],"threads":1,"duration":1,"mix":["default","\#(OperationMix.default.description)"]}}"#)) {
            XCTAssertTrue("\($0)".contains("twice"), "\($0)")
        }
    }

    func testIdentityFollowsTheCellsNotTheSpelling() throws {
        let a = try plan(#"{"name":"a","axes":{"seed":[1,2],"threads":[1],"duration":1,"rcu":["memb"]}}"#)
        let b = try plan(#"{ "axes" : { "rcu" : "memb", "duration" : 1.0, "threads" : 1, "seed" : {"count": 2} }, "name" : "b" }"#)
        XCTAssertEqual(a.id, b.id, "same cells, other spelling and name")
        XCTAssertEqual(a.id.count, 64)
        XCTAssertTrue(a.id.allSatisfy(\.isHexDigit))
        let c = try plan(#"{"axes":{"seed":[1,3],"threads":[1],"duration":1,"rcu":["memb"]}}"#)
        let d = try plan(#"{"axes":{"seed":[1,2],"threads":[1],"duration":1,"rcu":["memb"]},"run_args":["--perturb"]}"#)
        let e = try plan(#"{"axes":{"seed":[1,2],"threads":[1],"duration":1,"rcu":["memb"]},"cell_timeout":10}"#)
        XCTAssertEqual(Set([a.id, c.id, d.id, e.id]).count, 4)
    }

    func testEveryBadPlanIsOneLineNamingTheProblem() {
        let ok = #""seed":[1],"threads":[1],"duration":1"#
        let cases: [(String, String)] = [
            ("not json", "not valid JSON"),
            ("[1,2]", "expected a JSON object"),
            (#"{"axes":{\#(ok)},"bogus":1}"#, "unknown key 'bogus'"),
            (#"{"seed":[1]}"#, "unknown key 'seed'"),
            (#"{"name":"x"}"#, #"no "axes" object"#),
            (#"{"axes":[1]}"#, #""axes" must be an object"#),
            (#"{"axes":{\#(ok),"flavor":["memb"]}}"#, "unknown axis 'flavor'"),
            (#"{"axes":{\#(ok),"rcu":["memb","classic"]}}"#, "unknown value 'classic'"),
            (#"{"axes":{\#(ok),"inject":["nope"]}}"#, "unknown value 'nope'"),
            (#"{"axes":{\#(ok),"sync":[5]}}"#, "axis 'sync' has 5"),
            (#"{"axes":{\#(ok),"scheme":["anon_vma"]}}"#, "unknown value 'anon_vma'"),
            (#"{"axes":{\#(ok),"rcu":[]}}"#, "axis 'rcu' is empty"),
            (#"{"axes":{"seed":{"count":0},"threads":[1],"duration":1}}"#, "axis 'seed' is empty"),
            (#"{"axes":{"seed":{"count":2,"step":3},"threads":[1],"duration":1}}"#, "unknown key 'step'"),
            (#"{"axes":{"seed":[-1],"threads":[1],"duration":1}}"#, "expected a seed"),
            (#"{"axes":{"seed":[1],"threads":[2,2],"duration":1}}"#, "lists 2 twice"),
            (#"{"axes":{"seed":[1],"threads":[0],"duration":1}}"#, "thread count"),
            (#"{"axes":{"seed":[1],"threads":[1.5],"duration":1}}"#, "thread count"),
            (#"{"axes":{"seed":[1],"threads":[1],"duration":-1}}"#, "seconds"),
            (#"{"axes":{"seed":[1],"threads":[1],"duration":1,"ops":5}}"#, "not both"),
            (#"{"axes":{"seed":[1],"threads":[1]}}"#, "no 'duration'"),
            (#"{"axes":{"threads":[1],"duration":1}}"#, "no 'seed' axis"),
            (#"{"axes":{"seed":[1],"duration":1}}"#, "no 'threads' axis"),
            (#"{"axes":{"seed":{"count":100001},"threads":[1],"duration":1}}"#, "over the limit of 100000"),
            (#"{"axes":{"seed":{"count":1001},"threads":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100],"duration":1}}"#,
             "expands to 100100 cells, over the limit of 100000"),
            (#"{"axes":{\#(ok),"mix":["fault=x"]}}"#, "axis 'mix' has 'fault=x'"),
            (#"{"axes":{\#(ok)},"run_args":["--seed","3"]}"#, "must not set --seed"),
            (#"{"axes":{\#(ok)},"run_args":["--json=out.json"]}"#, "must not set --json"),
            (#"{"axes":{\#(ok)},"run_args":"--perturb"}"#, "list of strings"),
            (#"{"axes":{\#(ok)},"cell_timeout":0}"#, "cell_timeout"),
            (#"{"axes":{\#(ok)},"name":""}"#, "\"name\""),
        ]
        for (json, fragment) in cases {
            XCTAssertThrowsError(try plan(json), json) { error in
                guard let e = error as? CampaignError else { return XCTFail("\(json): \(error)") }
                XCTAssertTrue(e.message.contains(fragment), "\(json): '\(e.message)' lacks '\(fragment)'")
                XCTAssertTrue(e.message.hasPrefix("plan 'test': "), e.message)
                XCTAssertFalse(e.message.contains("\n"), e.message)
            }
        }
    }

    func testSignaturesIgnoreNumbersButKeepWords() throws {
        XCTAssertEqual(FailureSignature.normalise("page.mapping/index (1, 0x2bedf) do not name this PTE"),
                       "page.mapping/index (#, #) do not name this PTE")
        XCTAssertEqual(FailureSignature.normalise("migration left 3 mappings of the old page"),
                       FailureSignature.normalise("migration left 12 mappings of the old page"))
        XCTAssertEqual(FailureSignature.normalise("no RCU grace period completed for 1.0 s"), "no RCU grace period completed for # s")
        XCTAssertEqual(FailureSignature.normalise("mm22  freed\twhile 4bytes"), "mm# freed while #bytes")

        func result(_ json: String) throws -> CellResult { try JSONDecoder().decode(CellResult.self, from: Data(json.utf8)) }
        let audit = try XCTUnwrap(FailureSignature(result: result(#"{"verdict":"FAILURE","violations":[{"kind":"mapcount","detail":"mapcount 3 != 2 PTEs","cpu":-1}]}"#)))
        XCTAssertEqual(audit.text, "mapcount in audit: mapcount # != # PTEs")
        let seeded = [7, 8].map { s in #"{"verdict":"FAILURE","violations":[{"kind":"location","op":"fault","cpu":1,"detail":"page.mapping/index (\#(s), 0x\#(s)f) do not name this PTE"}]}"# }
        XCTAssertEqual(try FailureSignature(result: result(seeded[0])), try FailureSignature(result: result(seeded[1])))
        XCTAssertEqual(try FailureSignature(result: result(#"{"verdict":"FAILURE","leaks":["frame 12 still allocated"]}"#))?.text,
                       "leak in teardown: frame # still allocated")
        XCTAssertEqual(try FailureSignature(result: result(#"{"verdict":"STALL"}"#))?.kind, "stall")
        XCTAssertNil(try FailureSignature(result: result(#"{"verdict":"SUCCESS"}"#)))
    }

    func testResultsOfTodaysAndTomorrowsRunBothDecode() throws {
        let today = #"""
        {"tool":"concurrent-rmap-stress","version":"0.1.0","git_commit":"057237ce6b1b","threads":2,"duration_s":1.0,"seed":9,
         "rcu":"memb","sync":"rcu","injection":"none","ops_per_s":1500.5,"total_ops":1500,"verdict":"SUCCESS","exit_status":0,
         "violations":[],"violations_by_kind":{},"leaks":[],"ops":{"fault":{"count":3}}}
        """#
        let t = try JSONDecoder().decode(CellResult.self, from: Data(today.utf8))
        XCTAssertEqual(t.seed, 9)
        XCTAssertEqual(t.threads, 2)
        XCTAssertEqual(t.elapsed, 1.0)
        XCTAssertEqual(t.completedOperations, 1500)
        XCTAssertEqual(t.opsPerS, 1500.5)
        XCTAssertEqual(t.build, "057237ce6b1b")

        // Settings grouped, counters renamed, leaks as objects, fields of an
        // unexpected type: what can be read is read, the rest is nil.
        let tomorrow = #"""
        {"verdict":"FAILURE","exit_status":1,"git_commit":"abc","git_dirty":true,"settings":{"seed":18446744073709551615,"threads":4,"inject":"walk-no-ptl"},
         "elapsed_s":2.5,"total_completed":100,"ops_per_s":"fast","leaks":[{"kind":"frame","detail":"frame 3 still allocated"}],
         "violations":[{"kind":"location","detail":"d 0x1","op":"fault","frame":"oops","cpu":0}],"violations_by_kind":{"location":1},
         "first_violation_s":0.25,"new_field":{"x":[1,2]}}
        """#
        let n = try JSONDecoder().decode(CellResult.self, from: Data(tomorrow.utf8))
        XCTAssertEqual(n.seed, UInt64.max)
        XCTAssertEqual(n.threads, 4)
        XCTAssertEqual(n.settings?.injection, "walk-no-ptl")
        XCTAssertEqual(n.elapsed, 2.5)
        XCTAssertEqual(n.completedOperations, 100)
        XCTAssertNil(n.opsPerS)
        XCTAssertEqual(n.leaks, ["detail=frame 3 still allocated kind=frame"])
        XCTAssertNil(n.violations.first?.frame)
        XCTAssertEqual(n.violations.first?.op, "fault")
        XCTAssertEqual(n.build, "abc+dirty")
        XCTAssertEqual(n.firstViolationS, 0.25)

        let path = NSTemporaryDirectory() + "crmap-campaign-garbage-\(getpid()).json"
        defer { unlink(path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data("[1, 2".utf8))
        XCTAssertNil(CellResult.load(path: path))
        XCTAssertNil(CellResult.load(path: path + ".missing"))
    }

    func testOutcomeOfEveryWayAChildCanEnd() throws {
        func result(_ verdict: String) throws -> CellResult {
            try JSONDecoder().decode(CellResult.self, from: Data(#"{"verdict":"\#(verdict)"}"#.utf8))
        }
        func state(_ exit: ChildExit, _ r: CellResult?, timedOut: Bool = false, stoppedBy: Int32? = nil) -> CellState {
            CellRunner.outcome(exit: exit, result: r, timedOut: timedOut, stoppedBy: stoppedBy, firstErrorLine: { "stress: error: x" }).state
        }
        XCTAssertEqual(state(.exited(0), try result("SUCCESS")), .passed)
        XCTAssertEqual(state(.exited(1), try result("FAILURE")), .failed)
        XCTAssertEqual(state(.exited(3), try result("STALL")), .failed)
        XCTAssertEqual(state(.exited(1), try result("SUCCESS")), .failed, "a failing exit never passes")
        XCTAssertEqual(state(.exited(0), nil), .error)
        XCTAssertEqual(state(.exited(0), try result("RUNNING")), .error, "a progress snapshot is not a finished run")
        XCTAssertEqual(state(.exited(2), nil), .error)
        XCTAssertEqual(state(.exited(7), nil), .error)
        XCTAssertEqual(state(.signaled(SIGSEGV), try result("SUCCESS")), .crashed, "a dead child never passes")
        XCTAssertEqual(state(.exited(128 + SIGABRT), try result("INTERRUPTED")), .crashed)
        XCTAssertEqual(state(.signaled(SIGTERM), nil, timedOut: true), .timeout)
        XCTAssertEqual(state(.signaled(SIGINT), nil, stoppedBy: SIGINT), .unfinished)
        XCTAssertEqual(state(.exited(1), try result("FAILURE"), stoppedBy: SIGTERM), .failed, "finished before the stop")
        let note = CellRunner.outcome(exit: .exited(2), result: nil, timedOut: false, stoppedBy: nil, firstErrorLine: { "stress: error: unknown option '--scheme'" }).note
        XCTAssertTrue(note?.contains("unknown option '--scheme'") == true, note ?? "")
        XCTAssertEqual(ChildExit(waitStatus: 0x0100), .exited(1))
        XCTAssertEqual(ChildExit(waitStatus: 9), .signaled(9))
    }

    func testArraySpecTimeLimitAndSHA256() {
        XCTAssertEqual(SlurmExecutor.arraySpec([0, 1, 2, 3, 7, 9, 10, 11, 12]), "0-3,7,9-12")
        XCTAssertEqual(SlurmExecutor.arraySpec([5]), "5")
        XCTAssertEqual(SlurmExecutor.timeLimit(seconds: 3661), "0-01:01:01")
        XCTAssertEqual(SlurmExecutor.timeLimit(seconds: 90_060.5), "1-01:01:01")
        XCTAssertEqual(Digest.sha256Hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Digest.sha256Hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(Digest.sha256Hex(Array(String(repeating: "a", count: 1000).utf8)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    // MARK: Campaigns run for real

    func testLocalCampaignEndToEndWithAPlantedBugThenResume() throws {
        let plan = write(#"{"name":"tiny","axes":{"seed":[1,2],"inject":["none","mremap-no-copy"],"threads":[2],"duration":1}}"#, "tiny.json")
        let results = dir + "/results"
        let run = try stress(["campaign", "run", plan, "--results", results, "--jobs", "2"])
        XCTAssertEqual(run.status, 0, "every planted bug caught: the campaign passes. " + run.out + run.err)
        XCTAssertTrue(run.out.contains("PASS: every cell met its expectation"), run.out)
        // A line as each cell starts and as it ends.
        XCTAssertTrue(run.out.contains("[1/4 started] cell "), run.out)
        XCTAssertTrue(run.out.contains("[4/4 done] cell "), run.out)
        XCTAssertTrue(run.out.contains("failed (FAILURE)") && run.out.contains(", as expected"), run.out)

        let r = try report(results)
        XCTAssertEqual(r.verdict, "PASS")
        XCTAssertTrue(r.missed.isEmpty)
        XCTAssertEqual(r.counts, ["passed": 2, "failed": 2])
        for c in r.cells {
            let planted = c.axes["inject"] == "mremap-no-copy"
            XCTAssertEqual(c.state, planted ? "failed" : "passed", c.key)
            XCTAssertEqual(c.verdict, planted ? "FAILURE" : "SUCCESS", c.key)
            XCTAssertEqual(c.exitStatus, planted ? 1 : 0, c.key)
            XCTAssertEqual(c.signature == nil, !planted, c.key)
            XCTAssertGreaterThan(c.opsPerS ?? 0, 0, c.key)
        }
        // mremap-no-copy is caught as a misplaced PTE or as a migration that
        // missed a mapping, depending on the interleaving.
        XCTAssertEqual(r.signatures.map(\.count).reduce(0, +), 2)
        for s in r.signatures {
            XCTAssertTrue(["location", "incomplete-walk"].contains(s.kind), s.signature)
            XCTAssertTrue(s.reproduce.contains("--seed \(s.firstSeed)") && s.reproduce.contains("--inject mremap-no-copy"), s.reproduce)
            XCTAssertFalse(s.signature.contains(where: \.isNumber), s.signature)
        }
        XCTAssertTrue(r.problems.isEmpty)
        XCTAssertEqual(r.builds.count, 1)
        XCTAssertFalse(r.mixedBuilds)
        XCTAssertGreaterThan(r.machineTime.usedThreadSeconds, 0)
        XCTAssertEqual(try XCTUnwrap(r.machineTime.askedThreadSeconds), 8, accuracy: 1e-9)

        let html = try String(contentsOfFile: results + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"))
        for banned in ["<script", "<link", "src=", "@import", "url("] { XCTAssertFalse(html.contains(banned), banned) }
        let csv = try String(contentsOfFile: results + "/report.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 5)
        XCTAssertTrue(csv[0].hasPrefix("index,seed,inject,threads,duration,state,verdict,"), String(csv[0]))

        let record = try XCTUnwrap(try CellRecord.decoder.decode(CellRecord.self, from: Data(contentsOf: URL(fileURLWithPath: results + "/cells/00001/cell.json"))))
        XCTAssertEqual(record.state, .failed)
        XCTAssertEqual(record.exitStatus, 1)
        XCTAssertEqual(Array(record.command.dropFirst()), ["run", "--threads", "2", "--duration", "1", "--seed", "1", "--inject", "mremap-no-copy", "--quiet", "--json", results + "/cells/00001/result.json"])

        // Resume: every cell has a result, so nothing runs and nothing changes.
        let before = snapshot(results + "/cells")
        let again = try stress(["campaign", "run", plan, "--results", results])
        XCTAssertEqual(again.status, 0)
        XCTAssertTrue(again.out.contains("4 already have a result"), again.out)
        XCTAssertEqual(snapshot(results + "/cells"), before)
        let rep = try stress(["campaign", "report", results])
        XCTAssertEqual(rep.status, 0)
        XCTAssertTrue(rep.out.contains("2 passed, 2 failed"), rep.out)
    }

    func testResumeRerunsCrashedAndUnfinishedCellsAndKeepsTheirFiles() throws {
        let plan = write(#"{"axes":{"seed":[1,2],"threads":[1],"duration":0.3}}"#, "two.json")
        let results = dir + "/results"
        XCTAssertEqual(try stress(["campaign", "run", plan, "--results", results]).status, 0)

        // A runner that died mid-cell leaves `running` with no lock held; a
        // crash leaves `crashed` and no result.
        let folder = try ResultsFolder.existing(results)
        var r0 = try XCTUnwrap(folder.record(0))
        r0.state = .running
        try folder.write(r0)
        var r1 = try XCTUnwrap(folder.record(1))
        r1.state = .crashed
        r1.signal = SIGKILL
        try folder.write(r1)
        unlink(folder.resultPath(1))
        let interim = try stress(["campaign", "report", results])
        XCTAssertEqual(interim.status, 1)
        let mid = try report(results)
        XCTAssertEqual(mid.cells.map(\.state), ["unfinished", "crashed"])
        XCTAssertEqual(mid.problems.count, 2)

        let rerun = try stress(["campaign", "run", plan, "--results", results])
        XCTAssertEqual(rerun.status, 0, rerun.out)
        XCTAssertTrue(rerun.out.contains("0 already have a result"), rerun.out)
        for i in 0..<2 {
            XCTAssertEqual(folder.record(i)?.state, .passed)
            XCTAssertEqual(folder.record(i)?.attempt, 2)
            XCTAssertEqual(folder.earlierAttempts(i).map(\.state), [i == 0 ? .running : .crashed])
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.cellFolder(0) + "/attempt-1/result.json"))
        let end = try report(results)
        XCTAssertEqual(end.verdict, "PASS")
        XCTAssertEqual(end.cells.map(\.attempts), [2, 2])
        XCTAssertEqual(end.cells[1].earlierAttempts, ["crashed (signal 9)"])
    }

    func testKilledCellIsRecordedCrashedWithItsSignal() throws {
        let plan = write(#"{"axes":{"seed":[1],"threads":[1],"duration":30}}"#, "long.json")
        let results = dir + "/results"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try stressBinary())
        p.arguments = ["campaign", "run", plan, "--results", results]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let child = try waitForChildPid(results)
        kill(child, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 1)
        let record = try XCTUnwrap(try ResultsFolder.existing(results).record(0))
        XCTAssertEqual(record.state, .crashed)
        XCTAssertEqual(record.signal, SIGKILL)
        XCTAssertEqual(record.signalName, "SIGKILL")
        XCTAssertLessThan(record.wallS ?? 99, 20)
        let r = try report(results)
        XCTAssertEqual(r.problems.map(\.state), ["crashed"])
        XCTAssertEqual(r.verdict, "FAIL")
    }

    func testStoppedRunnerRecordsUnfinishedAndExits128PlusSignal() throws {
        let plan = write(#"{"axes":{"seed":[1],"threads":[1],"duration":30}}"#, "long.json")
        let results = dir + "/results"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try stressBinary())
        p.arguments = ["campaign", "run", plan, "--results", results]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        _ = try waitForChildPid(results)
        p.terminate()  // SIGTERM, as scancel and a Slurm time limit send
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 128 + SIGTERM)
        let record = try XCTUnwrap(try ResultsFolder.existing(results).record(0))
        XCTAssertEqual(record.state, .unfinished)
        XCTAssertTrue(record.note?.contains("SIGTERM") == true, record.note ?? "")
    }

    func testTimedOutCellIsKilledAndRecorded() throws {
        // A cell bounded by operations has no duration its timeout must exceed.
        let plan = try CampaignPlan(json: Data(#"{"axes":{"seed":[1],"threads":[1],"ops":1000000000000},"cell_timeout":0.5}"#.utf8), label: "t")
        let folder = try ResultsFolder.open(dir + "/results", for: plan)
        var o = CellRunner.Options(stressBinary: try stressBinary())
        o.killGrace = 2
        let s = try CellRunner(folder: folder, options: o).run([0])
        let record = try XCTUnwrap(s.ran.first)
        XCTAssertEqual(record.state, .timeout)
        XCTAssertNotNil(record.signal ?? record.exitStatus)
        XCTAssertLessThan(record.wallS ?? 99, 10)
        XCTAssertEqual(folder.record(0), record)
    }

    /// Stand-ins for `stress run` that end in ways a real run rarely does.
    func testDeadOrConfusedChildrenAreNeverPassed() throws {
        let plan = try CampaignPlan(json: Data(#"{"axes":{"seed":[1,2,3],"threads":[1],"duration":1}}"#.utf8), label: "t")
        let folder = try ResultsFolder.open(dir + "/results", for: plan)
        // Leaves a progress snapshot holding a violation, then dies.
        try writeFinished(folder, 0, verdict: "RUNNING", record: false) {
            $0["violations"] = [["kind": "lifetime", "op": "exit", "cpu": 0, "detail": "mm 3 reached after free", "frame": 0, "mm": 3, "vpn": 0]]
        }
        let snapshot = dir + "/snapshot.json"
        try FileManager.default.moveItem(atPath: folder.resultPath(0), toPath: snapshot)
        let crasher = write("#!/bin/sh\nfor a; do json=$a; done\ncp '\(snapshot)' \"$json\"\nkill -SEGV $$\n", "bin/crash", executable: true)
        let refuser = write("#!/bin/sh\necho \"stress: error: unknown option '--scheme'\" >&2\nexit 2\n", "bin/refuse", executable: true)
        let silent = write("#!/bin/sh\nexit 0\n", "bin/silent", executable: true)
        var states: [CellState] = []
        for (i, bin) in [crasher, refuser, silent].enumerated() {
            let s = try CellRunner(folder: folder, options: .init(stressBinary: bin)).run([i])
            states.append(try XCTUnwrap(s.ran.first).state)
        }
        XCTAssertEqual(states, [.crashed, .error, .error])
        XCTAssertEqual(folder.record(0)?.signal, SIGSEGV)
        XCTAssertTrue(folder.record(1)?.note?.contains("unknown option '--scheme'") == true, folder.record(1)?.note ?? "")
        XCTAssertFalse(folder.isFinished(0))
        let r = CampaignReport(folder: folder)
        XCTAssertEqual(r.verdict, "FAIL")
        XCTAssertEqual(r.problems.map(\.state), ["crashed", "error", "error"])
        XCTAssertEqual(r.signatures.map(\.signature), ["lifetime in exit: mm # reached after free"], "the crash's snapshot explains it")
    }

    func testMixedBuildsAreFlagged() throws {
        let plan = try CampaignPlan(json: Data(#"{"axes":{"seed":[1,2],"threads":[1],"duration":1}}"#.utf8), label: "t")
        let folder = try ResultsFolder.open(dir + "/results", for: plan)
        for (i, commit) in ["aaaa1111", "bbbb2222"].enumerated() {
            try writeFinished(folder, i) { $0["git_commit"] = commit; $0["git_dirty"] = false }
        }
        let r = CampaignReport(folder: folder)
        XCTAssertEqual(r.verdict, "PASS")
        XCTAssertTrue(r.mixedBuilds)
        XCTAssertEqual(Set(r.builds.map(\.build)), ["aaaa1111", "bbbb2222"])
        XCTAssertTrue(r.summaryLines.contains { $0.hasPrefix("MIXED BUILDS") })
        XCTAssertTrue(ReportHTML.render(r).contains("MIXED BUILDS"))
    }

    func testSlurmDryRunArraysOnlyUnfinishedCells() throws {
        let plan = write(#"{"name":"arr","axes":{"seed":[1,2],"inject":["none","mremap-no-copy"],"threads":[1,2],"duration":1}}"#, "arr.json")
        let results = dir + "/results"
        let dry = try stress(["campaign", "slurm", plan, "--results", results, "--dry-run", "--throttle", "2",
                              "--partition", "debug", "--time", "10", "--sbatch-option=--account=rmap"])
        XCTAssertEqual(dry.status, 0, dry.err)
        let script = try String(contentsOfFile: results + "/slurm/submit-1.sbatch", encoding: .utf8)
        for line in ["#SBATCH --array=0-7%2", "#SBATCH --cpus-per-task=2", "#SBATCH --partition=debug", "#SBATCH --time=10",
                     "#SBATCH --account=rmap", "#SBATCH --output=\(results)/slurm/task-%A_%a.out"] {
            XCTAssertTrue(script.contains(line + "\n"), "\(line) missing from\n\(script)")
        }
        XCTAssertTrue(script.contains("campaign cell \(results)/plan.json --results \(results) --index \"$SLURM_ARRAY_TASK_ID\" --cells-per-task 1"), script)

        // Cells 0, 2 and 3 finished: the next array holds only the others.
        let folder = try ResultsFolder.existing(results)
        for i in [0, 2, 3] { try writeFinished(folder, i) }
        XCTAssertEqual(try stress(["campaign", "slurm", plan, "--results", results, "--dry-run"]).status, 0)
        XCTAssertTrue(try String(contentsOfFile: results + "/slurm/submit-2.sbatch", encoding: .utf8).contains("#SBATCH --array=1,4-7\n"))
        XCTAssertEqual(try stress(["campaign", "slurm", plan, "--results", results, "--dry-run", "--cells-per-task", "3"]).status, 0)
        let grouped = try String(contentsOfFile: results + "/slurm/submit-3.sbatch", encoding: .utf8)
        XCTAssertTrue(grouped.contains("#SBATCH --array=0-2\n") && grouped.contains("--cells-per-task 3"), grouped)

        // A stand-in sbatch that accepts the job: the submission is recorded.
        let bin = dir + "/fakebin"
        _ = write("#!/bin/sh\necho '4242;cluster'\n", "fakebin/sbatch", executable: true)
        let sub = try stress(["campaign", "slurm", plan, "--results", results], path: bin)
        XCTAssertEqual(sub.status, 0, sub.err)
        XCTAssertTrue(sub.out.contains("submitted job 4242"), sub.out)
        let rec = try String(contentsOfFile: results + "/slurm/submit-4.json", encoding: .utf8)
        XCTAssertTrue(rec.contains("\"job_id\" : \"4242\""), rec)
    }

    /// Hostile names in every campaign input that reaches a generated
    /// script or the results folder: each is refused with one line and
    /// exit 2, or carried so that no script line gains a directive or a
    /// command, and nothing is written outside the results folder.
    func testHostileNamesNeverReachAScriptUnchecked() throws {
        let hostile = ["evil\n#SBATCH --wrap=rm", "x\nrm -rf /tmp/nothing", "a'b\"c", "$(touch pwned)", "`id`", "../../escape", "tab\tname"]
        let axes = #""axes":{"seed":[1],"threads":[1],"duration":1}"#
        // A name given in the plan.
        for name in hostile {
            let planPath = write(#"{"name":"# + String(data: try JSONEncoder().encode(name), encoding: .utf8)!.dropFirst().dropLast() + #"","# + axes + "}", "named.json")
            let results = dir + "/named-results-\(abs(name.hashValue))"
            let r = try stress(["campaign", "slurm", planPath, "--results", results, "--dry-run"])
            if r.status == 0 {
                let script = try String(contentsOfFile: results + "/slurm/submit-1.sbatch", encoding: .utf8)
                checkScript(script, results: results)
            } else {
                XCTAssertEqual(r.status, 2, "\(name.debugDescription): \(r.err)")
                XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
            }
        }
        // A plan without a name takes its file name: newlines and control
        // characters are refused, the rest is sanitized in the script.
        for name in ["bad\nname", "ok$(x)`y`'z\"", "bell\u{7}"] {
            let planPath = write("{" + axes + "}", "plans/" + name + ".json")
            let results = dir + "/file-results-\(abs(name.hashValue))"
            let r = try stress(["campaign", "slurm", planPath, "--results", results, "--dry-run"])
            if name.contains(where: { $0.isNewline || $0 == "\u{7}" }) {
                XCTAssertEqual(r.status, 2, r.err)
                XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
                XCTAssertFalse(FileManager.default.fileExists(atPath: results), "a refused plan writes nothing")
            } else {
                XCTAssertEqual(r.status, 0, r.err)
                checkScript(try String(contentsOfFile: results + "/slurm/submit-1.sbatch", encoding: .utf8), results: results)
            }
        }
        // Options that go into #SBATCH lines.
        let planPath = write(#"{"name":"opts","# + axes + "}", "opts.json")
        let bad: [[String]] = [
            ["--time", "1:00\n#SBATCH --wrap=evil"], ["--time", "abc"], ["--time", "0"], ["--time", "0:00:00"],
            ["--partition", "a b"], ["--partition", "p\n#SBATCH --x"], ["--partition", "$(id)"],
            ["--sbatch-option=--account=x\nrm -rf ~"], ["--sbatch-option=account"],
            ["--stress-binary", dir], ["--stress-binary", dir + "/no-such-binary"],
            ["--results", dir + "/with space"], ["--results", dir + "/q'uote"], ["--results", dir + "/nl\nline"],
        ]
        for extra in bad {
            var args = ["campaign", "slurm", planPath, "--dry-run"]
            if !extra.contains("--results") { args += ["--results", dir + "/opts-results"] }
            let r = try stress(args + extra)
            XCTAssertEqual(r.status, 2, "\(extra.map(\.debugDescription)): \(r.out) \(r.err)")
            XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/opts-results/slurm/submit-1.sbatch"))
        for good in [["--time", "90"], ["--time", "1-00:00:00"], ["--partition", "debug,long"]] {
            XCTAssertEqual(try stress(["campaign", "slurm", planPath, "--dry-run", "--results", dir + "/good-\(good[1].hashValue)"] + good).status, 0, good[1])
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/../escape"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "pwned"))
    }

    /// Every line of a generated script is a comment, an #SBATCH directive
    /// with a plain value, blank, or the one exec line.
    func checkScript(_ script: String, results: String, file: StaticString = #filePath, line: UInt = #line) {
        for l in script.split(separator: "\n", omittingEmptySubsequences: false) {
            if l.isEmpty || l == "#!/bin/bash" { continue }
            if l.hasPrefix("#SBATCH ") {
                XCTAssertFalse(l.contains("$(") || l.contains("`") || l.contains("'") || l.contains("\""), "directive \(l)", file: file, line: line)
                XCTAssertFalse(l.contains("--wrap"), "directive \(l)", file: file, line: line)
                continue
            }
            if l.hasPrefix("# ") {
                // Inert to the shell; a hostile name must still not show up raw.
                XCTAssertFalse(l.contains("$(") || l.contains("'a'b"), "comment \(l)", file: file, line: line)
                continue
            }
            XCTAssertTrue(l.hasPrefix("exec ") || l.hasPrefix(" --results"), "unexpected script line: \(l)", file: file, line: line)
        }
        XCTAssertEqual(script.components(separatedBy: "\nexec ").count, 2, "one exec line", file: file, line: line)
    }

    func testBadInputIsOneLineExit2AndTouchesNothing() throws {
        func expectUsageError(_ args: [String], path: String? = nil, _ fragment: String, line: UInt = #line) throws {
            let (status, out, err) = try stress(args, path: path)
            XCTAssertEqual(status, 2, "\(args): \(out)\(err)", line: line)
            XCTAssertEqual(err.split(separator: "\n").count, 1, "\(args): \(err)", line: line)
            XCTAssertTrue(err.hasPrefix("stress: error: "), err, line: line)
            XCTAssertTrue(err.contains(fragment), "\(args): '\(err)' lacks '\(fragment)'", line: line)
        }
        let good = write(#"{"name":"good","axes":{"seed":[1],"threads":[1],"duration":0.2}}"#, "good.json")
        let other = write(#"{"name":"other","axes":{"seed":[2],"threads":[1],"duration":0.2}}"#, "other.json")
        let bad = write(#"{"axes":{"seed":[1],"threads":[1],"duration":1,"flavour":["memb"]}}"#, "bad.json")
        let huge = write(#"{"axes":{"seed":{"count":200000},"threads":[1],"duration":1}}"#, "huge.json")

        try expectUsageError(["campaign", "plan", bad], "unknown axis 'flavour'")
        try expectUsageError(["campaign", "plan", huge], "over the limit of 100000")
        try expectUsageError(["campaign", "plan", dir + "/missing.json"], "does not exist")
        try expectUsageError(["campaign", "run", bad, "--results", dir + "/r-bad"], "unknown axis")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/r-bad"))
        try expectUsageError(["campaign", "run", good, "--results", dir + "/r", "--jobs", "0"], "--jobs")

        // A file where a folder should be: even root cannot write there.
        _ = write("x", "plainfile")
        try expectUsageError(["campaign", "run", good, "--results", dir + "/plainfile/results"], "cannot create results folder")
        try expectUsageError(["campaign", "run", good, "--results", dir + "/plainfile"], "is a file")

        // A folder of someone else's files, and a folder of another campaign.
        _ = write("precious", "theirs/data.txt")
        try expectUsageError(["campaign", "run", good, "--results", dir + "/theirs"], "holds files but no campaign stamp")
        XCTAssertEqual(snapshot(dir + "/theirs"), ["data.txt": Data("precious".utf8)])
        let ours = dir + "/ours"
        XCTAssertEqual(try stress(["campaign", "run", good, "--results", ours]).status, 0)
        let before = snapshot(ours)
        try expectUsageError(["campaign", "run", other, "--results", ours], "holds campaign 'good'")
        try expectUsageError(["campaign", "cell", other, "--index", "0", "--results", ours], "holds campaign 'good'")
        try expectUsageError(["campaign", "slurm", other, "--results", ours, "--dry-run"], "holds campaign 'good'")
        XCTAssertEqual(snapshot(ours), before)
        try expectUsageError(["campaign", "cell", good, "--index", "1", "--results", ours], "past the plan's 1 cells")
        try expectUsageError(["campaign", "report", dir + "/theirs"], "holds no campaign")

        try expectUsageError(["campaign", "slurm", good, "--results", dir + "/with space", "--dry-run"], "cannot carry")
        try expectUsageError(["campaign", "slurm", good, "--results", dir + "/t", "--dry-run", "--throttle", "0"], "--throttle")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/with space"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/t"))

        // sbatch missing, then failing: the error says which, and no job
        // script is left behind as if it had been submitted.
        let empty = dir + "/emptybin"
        try makeFolder(empty)
        try expectUsageError(["campaign", "slurm", good, "--results", dir + "/s"], path: empty, "sbatch not found")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/s"))
        _ = write("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n", "failbin/sbatch", executable: true)
        try expectUsageError(["campaign", "slurm", good, "--results", dir + "/s"], path: dir + "/failbin",
                             "sbatch failed (exit 1): sbatch: error: invalid partition specified: nope")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/s/slurm"), [])
    }
}
