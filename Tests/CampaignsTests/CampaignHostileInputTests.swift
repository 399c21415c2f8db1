import Foundation
import XCTest
@testable import Campaigns
@testable import RunEngine
@testable import StressSupport

/// Every file and folder a campaign reads back, damaged on purpose: plans,
/// cell records, results, stamps, plan copies, and the options that reach
/// a job script. Each is refused with one line and exit 2, or its cell is
/// reported corrupt; none crashes, none exits 0, none becomes a pass.
final class CampaignHostileInputTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "crmap-hostile-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    static func stressBinary() throws -> String {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let bundle = Bundle(for: CampaignHostileInputTests.self).bundleURL
        for d in [runner, bundle, bundle.deletingLastPathComponent()] {
            let candidate = d.appendingPathComponent("stress").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw XCTSkip("stress executable not built next to the tests")
    }

    static func stress(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try stressBinary())
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

    func write(_ text: String, _ name: String) -> String {
        let path = dir + "/" + name
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    func expectUsageError(_ args: [String], _ fragment: String, line: UInt = #line) throws {
        let r = try Self.stress(args)
        XCTAssertEqual(r.status, 2, "\(args.map(\.debugDescription)): \(r.out)\(r.err)", line: line)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, "\(args): \(r.err)", line: line)
        XCTAssertTrue(r.err.contains(fragment), "\(args): '\(r.err)' lacks '\(fragment)'", line: line)
        for leak in ["Int", "Double", "String", "Missing value", "Cannot initialize"] {
            XCTAssertFalse(r.err.contains(leak), "\(args): '\(r.err)' says \(leak)", line: line)
        }
    }

    // MARK: JSON

    func testStrictJSONRefusesWhatFoundationLetsThrough() {
        let bad = [
            #"{"a":1,}"#, #"[1,2,]"#, #"{"a":1,"a":2}"#, #"{"a":{"b":1,"b":1}}"#, "", " ", "{", #"{"a" 1}"#, "[01]", "[1.]",
            "[.5]", "[1e]", "[+1]", "[NaN]", "[Infinity]", "['a']", #"["\x"]"#, "[\"a\u{1}\"]", #"["\u12"]"#, "{} {}",
            "[" + String(repeating: "[", count: 100) + String(repeating: "]", count: 101), "[tru]", "//c\n{}", "{a:1}",
        ]
        for text in bad {
            let p = StrictJSON.problem(Data(text.utf8))
            XCTAssertNotNil(p, text.debugDescription)
            XCTAssertFalse(p?.contains("\n") ?? false)
        }
        let good = [#"{"a":[1,-2.5e3,0,true,false,null,"x\"\u00e9"],"b":{}}"#, "[]", " 7 ", #""s""#, #"{"a":1,"A":2}"#]
        for text in good { XCTAssertNil(StrictJSON.problem(Data(text.utf8)), text) }
        XCTAssertTrue(StrictJSON.problem(Data(#"{"x":1,"x":2}"#.utf8))?.contains("duplicate key \"x\"") ?? false)
    }

    // MARK: Plans

    func plan(_ json: String) throws -> CampaignPlan { try CampaignPlan(json: Data(json.utf8), label: "p") }

    func testHostilePlansAreRefusedNamingTheProblem() {
        let ok = #""seed":[1],"threads":[1],"duration":2"#
        let cases: [(String, String)] = [
            (#"{"axes":{\#(ok),}}"#, "trailing comma"),
            (#"{"axes":{\#(ok),"rcu":["memb",]}}"#, "trailing comma"),
            (#"{"axes":{\#(ok),"threads":[2]}}"#, "duplicate key \"threads\""),
            (#"{"name":"a","name":"b","axes":{\#(ok)}}"#, "duplicate key \"name\""),
            (#"{"axes":{\#(ok)},"cell_timeout":1}"#, "more than the longest duration (2 s)"),
            (#"{"axes":{\#(ok)},"cell_timeout":2}"#, "more than the longest duration"),
            (#"{"axes":{\#(ok)},"cell_timeout":1e30}"#, "at most 2592000 s"),
            (#"{"axes":{\#(ok)},"cell_timeout":1e400}"#, "cell_timeout"),
            (#"{"axes":{\#(ok)},"cell_timeout":"60"}"#, "cell_timeout"),
            (#"{"axes":{\#(ok)},"cell_timeout":-5}"#, "cell_timeout"),
            (#"{"axes":{\#(ok)},"run_args":["--options-from","/etc/passwd"]}"#, "must not set --options-from"),
            (#"{"axes":{\#(ok)},"run_args":["--options-from=x.json"]}"#, "must not set --options-from"),
            (#"{"axes":{\#(ok)},"run_args":["--list-injections"]}"#, "must not set --list-injections"),
            (#"{"axes":{\#(ok),"inject":["prepare-lock-inversion"]}}"#, "only a controlled run catches"),
            (#"{"axes":{\#(ok),"mix":["fault=2,fork=2","fork=1,fault=1"]}}"#, "twice"),
            (#"{"axes":{\#(ok),"mix":["fault=60,fork=0","fault=3"]}}"#, "twice"),
        ]
        for (json, fragment) in cases {
            XCTAssertThrowsError(try plan(json), json) { error in
                guard let e = error as? CampaignError else { return XCTFail("\(json): \(error)") }
                XCTAssertTrue(e.message.contains(fragment), "\(json): '\(e.message)' lacks '\(fragment)'")
                XCTAssertFalse(e.message.contains("\n"), e.message)
            }
        }
        // The timeout bound follows the plan's longest cell.
        XCTAssertNoThrow(try plan(#"{"axes":{"seed":[1],"threads":[1],"duration":[1,2]},"cell_timeout":2.5}"#))
    }

    func testEveryCellIsCheckedAndTheRefusalNamesIt() throws {
        let p = try plan(#"{"axes":{"seed":{"count":3},"threads":[1,2],"rcu":["memb","qsbr"],"duration":1}}"#)
        var seen: [Int] = []
        try p.checkCells { seen.append($0.index) }
        // The first seed's cells hold every other combination.
        XCTAssertEqual(Set(seen.map { p.cell($0).key.replacingOccurrences(of: "seed=1 ", with: "") }).count, 4)
        XCTAssertEqual(seen, [0, 1, 2, 3])
        XCTAssertThrowsError(try p.checkCells { c in
            if c.value(.rcu) == "qsbr" && c.threads == 2 { throw CampaignError("--frobnicate is not an option") }
        }) { e in
            let m = (e as? CampaignError)?.message ?? "\(e)"
            XCTAssertEqual(m, "plan 'campaign': cell 3 [seed=1 rcu=qsbr threads=2 duration=1] cannot run: --frobnicate is not an option")
        }
        var only: [Int] = []
        try p.checkCells(only: [10, 11]) { only.append($0.index) }
        XCTAssertEqual(only, [10, 11])
    }

    /// Files that are not plans at all: refused at once, without reading
    /// them whole (a device, a pipe, a folder, a huge file).
    func testPlanFilesThatAreNotFilesAreRefusedAtOnce() throws {
        let fifo = dir + "/pipe.json"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let huge = dir + "/huge.json"
        XCTAssertTrue(FileManager.default.createFile(atPath: huge, contents: nil))
        XCTAssertEqual(truncate(huge, off_t(BoundedRead.planLimit + 1)), 0)
        let cases: [(String, String)] = [
            ("/dev/zero", "not a regular file"), (fifo, "not a regular file"), (dir, "it is a folder"),
            (huge, "over 16 MiB"), (dir + "/missing.json", "does not exist"),
        ]
        for (path, fragment) in cases {
            XCTAssertThrowsError(try CampaignPlan.load(path: path), path) { e in
                let m = (e as? CampaignError)?.message ?? "\(e)"
                XCTAssertTrue(m.contains(fragment), "\(path): '\(m)' lacks '\(fragment)'")
            }
        }
        try expectUsageError(["campaign", "plan", "/dev/zero"], "not a regular file")
        try expectUsageError(["campaign", "run", fifo, "--results", dir + "/r"], "not a regular file")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/r"))
    }

    /// The real `stress run` parser refuses these cells when the plan is read.
    func testCellCommandLinesAreParsedAsStressRunParsesThem() throws {
        let axes = #""axes":{"seed":[1,2],"threads":[1],"duration":1"#
        let cases: [(String, String)] = [
            (#"{\#(axes)},"run_args":["--frobnicate"]}"#, "cell 0"),
            (#"{\#(axes)},"run_args":["--frames","1"]}"#, "--frames"),
            (#"{\#(axes)},"run_args":["selftest"]}"#, "selftest"),
            (#"{\#(axes)},"run_args":["--audit-interval","1e9"]}"#, "--audit-interval must be"),
            (#"{\#(axes)},"run_args":["--checks","fast","--checks","full"]}"#, "more than once"),
            (#"{\#(axes),"scheme":["anon-vma"],"inject":["none","mremap-no-copy"]}}"#, "bug of the anongroup scheme"),
            (#"{\#(axes),"inject":["anon-vma-no-recheck"]}}"#, "bug of the anon-vma scheme"),
            (#"{\#(axes)},"run_args":["--inject","prepare-lock-inversion","--scheme","anon-vma"]}"#, "controlled run"),
        ]
        for (json, fragment) in cases {
            let path = write(json, "plan-\(abs(json.hashValue)).json")
            try expectUsageError(["campaign", "plan", path, "--summary"], fragment)
            try expectUsageError(["campaign", "run", path, "--results", dir + "/never"], "cannot run")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/never"), "a refused plan writes nothing")
        }
        let good = write(#"{\#(axes),"scheme":["anon-vma"],"inject":["none","anon-vma-no-recheck"]},"run_args":["--checks","full"]}"#, "good.json")
        let r = try Self.stress(["campaign", "plan", good, "--summary"])
        XCTAssertEqual(r.status, 0, r.err)
    }

    func testCampaignOptionsNameTheirRanges() throws {
        let good = write(#"{"axes":{"seed":[1],"threads":[1],"duration":0.2}}"#, "good.json")
        let results = dir + "/r"
        try expectUsageError(["campaign", "run", good, "--results", results, "--jobs", "-1"], "--jobs takes a whole number 1...1024")
        try expectUsageError(["campaign", "run", good, "--results", results, "--jobs", "0"], "--jobs must be 1...1024")
        try expectUsageError(["campaign", "run", good, "--results", results, "--jobs", "many"], "1...1024")
        try expectUsageError(["campaign", "plan", good, "--cpus-per-task", "-3"], "--cpus-per-task takes a whole number 1...65536")
        try expectUsageError(["campaign", "slurm", good, "--results", results, "--dry-run", "--throttle", "0"], "--throttle must be 1...100000")
        try expectUsageError(["campaign", "slurm", good, "--results", results, "--dry-run", "--cells-per-task", "x"], "--cells-per-task takes a whole number 1...100000")
        try expectUsageError(["campaign", "run", good, "--results", ""], "--results needs a folder")
        try expectUsageError(["campaign", "cell", good, "--results", results, "--index", "-5"], "--index takes a whole number 0...99999")
        try expectUsageError(["campaign", "cell", good, "--results", results, "--index", "99999999999999999999"], "--index must be 0...99999")
        let plain = write("#!/bin/sh\n", "not-executable")
        for bad in [["--time", "-1"], ["--time", "1:-5"], ["--time", "1\u{1}"], ["--partition", ""], ["--partition", "a\u{7f}"],
                    ["--stress-binary", plain], ["--stress-binary", dir]] {
            try expectUsageError(["campaign", "slurm", good, "--results", results, "--dry-run"] + bad,
                                 bad[0] == "--stress-binary" ? "is not an executable file" : bad[0])
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: results), "refused options write nothing")
        // A value that starts with '-' is a value: an sbatch option given apart.
        let ok = try Self.stress(["campaign", "slurm", good, "--results", results, "--dry-run", "--sbatch-option", "--account=rmap"])
        XCTAssertEqual(ok.status, 0, ok.err)
        XCTAssertTrue(try String(contentsOfFile: results + "/slurm/submit-1.sbatch", encoding: .utf8).contains("#SBATCH --account=rmap\n"))
    }

    // MARK: Results folders

    /// One real campaign (a correct cell and a planted bug), run once and
    /// copied for each damage.
    nonisolated(unsafe) static var pristine: String?
    static let pristinePlan = #"{"name":"hostile","axes":{"seed":[1],"inject":["none","mremap-no-copy"],"threads":[2],"duration":1}}"#

    func pristineCopy() throws -> String {
        if Self.pristine == nil {
            let base = NSTemporaryDirectory() + "crmap-hostile-pristine-\(getpid())"
            try? FileManager.default.removeItem(atPath: base)
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            let planPath = base + "/plan-in.json"
            try Data(Self.pristinePlan.utf8).write(to: URL(fileURLWithPath: planPath))
            let r = try Self.stress(["campaign", "run", planPath, "--results", base + "/results", "--jobs", "2"])
            XCTAssertEqual(r.status, 0, "the planted bug is caught and the correct cell passes: \(r.out)\(r.err)")
            Self.pristine = base + "/results"
        }
        let copy = dir + "/copy-\(UUID().uuidString.prefix(6))"
        try FileManager.default.copyItem(atPath: Self.pristine!, toPath: copy)
        return copy
    }

    func edit(_ path: String, _ change: (inout [String: Any]) -> Void) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var o = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        change(&o)
        try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: path))
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }
    func put(_ data: Data, _ path: String) throws { try data.write(to: URL(fileURLWithPath: path)) }

    func testTheUndamagedFolderPassesWithItsPlantedBugCaught() throws {
        let f = try ResultsFolder.existing(try pristineCopy())
        let r = CampaignReport(folder: f)
        XCTAssertEqual(r.verdict, "PASS", r.summaryLines.joined(separator: "\n"))
        XCTAssertEqual(r.counts, ["passed": 1, "failed": 1])
        XCTAssertEqual(r.cells.map(\.expected), ["SUCCESS", "FAILURE (incomplete-walk|location)"])
        XCTAssertTrue(r.missed.isEmpty)
        XCTAssertTrue(r.summaryLines.contains("planted bugs caught with a declared class: 1 of 1 cells"), r.summaryLines.joined(separator: "\n"))
        XCTAssertTrue(f.isFinished(0) && f.isFinished(1))
    }

    /// Each damage to one cell's files: that cell is corrupt (not passed,
    /// not never-started), the campaign fails, and no rate of it reaches
    /// the throughput matrix.
    func testDamagedCellFilesAreReportedCorrupt() throws {
        typealias Damage = (String, Int, String, (String) throws -> Void)
        let damages: [Damage] = [
            ("truncated cell.json", 0, "cell.json is not a cell record", { p in try self.put(try self.bytes(p + "/cells/00000/cell.json").prefix(40), p + "/cells/00000/cell.json") }),
            ("empty cell.json", 0, "the file is empty", { p in try self.put(Data(), p + "/cells/00000/cell.json") }),
            ("bogus cell.json", 0, "cell.json is not a cell record", { p in try self.put(Data("hello".utf8), p + "/cells/00000/cell.json") }),
            ("cell.json a list", 0, "cell.json is not a cell record", { p in try self.put(Data("[]".utf8), p + "/cells/00000/cell.json") }),
            ("duplicate key", 0, "duplicate key", { p in
                let s = String(decoding: try self.bytes(p + "/cells/00000/cell.json"), as: UTF8.self)
                try self.put(Data(s.replacingOccurrences(of: "{", with: #"{"state":"passed","#, options: [], range: s.range(of: "{")).utf8), p + "/cells/00000/cell.json")
            }),
            ("unknown key", 0, "unknown key 'pass'", { p in try self.edit(p + "/cells/00000/cell.json") { $0["pass"] = true } }),
            ("wrong type", 0, "'wall_s' has the wrong type", { p in try self.edit(p + "/cells/00000/cell.json") { $0["wall_s"] = "fast" } }),
            ("unknown state", 0, "'state'", { p in try self.edit(p + "/cells/00000/cell.json") { $0["state"] = "great" } }),
            ("negative wall", 0, "wall_s -100.0 is impossible", { p in try self.edit(p + "/cells/00000/cell.json") { $0["wall_s"] = -100 } }),
            ("absurd wall", 0, "is impossible", { p in try self.edit(p + "/cells/00000/cell.json") { $0["wall_s"] = 1e12 } }),
            ("another cell's record", 0, "not 0", { p in try self.edit(p + "/cells/00000/cell.json") { $0["index"] = 1 } }),
            ("passed with exit 1", 0, "passed with exit status 1", { p in try self.edit(p + "/cells/00000/cell.json") { $0["exit_status"] = 1 } }),
            ("record says passed, result FAILURE", 1, "says passed but result.json's verdict is FAILURE", { p in
                try self.edit(p + "/cells/00001/cell.json") { $0["state"] = "passed"; $0["exit_status"] = 0; $0["verdict"] = "SUCCESS" }
            }),
            ("record verdict disagrees", 0, "records verdict STALL", { p in try self.edit(p + "/cells/00000/cell.json") { $0["verdict"] = "STALL" } }),
            ("result missing", 0, "result.json is missing", { p in try FileManager.default.removeItem(atPath: p + "/cells/00000/result.json") }),
            ("record missing", 0, "result.json without a cell.json", { p in try FileManager.default.removeItem(atPath: p + "/cells/00000/cell.json") }),
            ("truncated result", 0, "result.json is not a stress run result", { p in try self.put(try self.bytes(p + "/cells/00000/result.json").prefix(100), p + "/cells/00000/result.json") }),
            ("cell.json a folder", 0, "cell.json is a folder", { p in
                try FileManager.default.removeItem(atPath: p + "/cells/00000/cell.json")
                try makeFolder(p + "/cells/00000/cell.json")
            }),
            ("result.json a pipe", 0, "result.json cannot be read: not a regular file", { p in
                try FileManager.default.removeItem(atPath: p + "/cells/00000/result.json")
                XCTAssertEqual(mkfifo(p + "/cells/00000/result.json", 0o644), 0)
            }),
            ("giant result.json", 0, "result.json is over 256 MiB", { p in
                XCTAssertEqual(truncate(p + "/cells/00000/result.json", off_t(BoundedRead.resultLimit + 1)), 0)
            }),
            ("empty result", 0, "the file is empty", { p in try self.put(Data(), p + "/cells/00000/result.json") }),
            ("result unknown key", 0, "unknown key 'bonus'", { p in try self.edit(p + "/cells/00000/result.json") { $0["bonus"] = 1 } }),
            ("result settings unknown key", 0, "unknown key 'settings.turbo'", { p in
                try self.edit(p + "/cells/00000/result.json") { o in var s = o["settings"] as! [String: Any]; s["turbo"] = true; o["settings"] = s }
            }),
            ("result wrong type", 0, "'verdict' has the wrong type", { p in try self.edit(p + "/cells/00000/result.json") { $0["verdict"] = 5 } }),
            ("result of another seed", 0, "seed 7, but the cell's is 1", { p in
                try self.edit(p + "/cells/00000/result.json") { o in var s = o["settings"] as! [String: Any]; s["seed"] = 7; o["settings"] = s }
            }),
            ("result of another injection", 0, "inject mremap-no-copy, but the cell's is none", { p in
                try self.edit(p + "/cells/00000/result.json") { o in var s = o["settings"] as! [String: Any]; s["inject"] = "mremap-no-copy"; o["settings"] = s }
            }),
            ("result of the other cell", 0, "says passed but result.json's verdict is FAILURE", { p in
                try self.put(try self.bytes(p + "/cells/00001/result.json"), p + "/cells/00000/result.json")
            }),
            ("absurd throughput", 0, "throughput 1e+300 ops/s is impossible", { p in try self.edit(p + "/cells/00000/result.json") { $0["ops_per_s"] = 1e300 } }),
            ("negative throughput", 0, "is impossible", { p in try self.edit(p + "/cells/00000/result.json") { $0["ops_per_s"] = -5 } }),
            ("NaN throughput", 0, "is impossible", { p in try self.edit(p + "/cells/00000/result.json") { $0["ops_per_s"] = "nan" } }),
            ("elapsed past the wall", 0, "longer than", { p in try self.edit(p + "/cells/00000/result.json") { $0["elapsed_s"] = 5000 } }),
        ]
        for (what, index, fragment, damage) in damages {
            let path = try pristineCopy()
            try damage(path)
            let r = CampaignReport(folder: try ResultsFolder.existing(path))
            let c = r.cells[index]
            XCTAssertEqual(c.state, "corrupt", "\(what): \(c.state) \(c.note ?? "")")
            XCTAssertTrue(c.note?.contains(fragment) ?? false, "\(what): '\(c.note ?? "")' lacks '\(fragment)'")
            XCTAssertFalse(c.note?.contains("\n") ?? true, what)
            XCTAssertEqual(r.verdict, "FAIL", what)
            XCTAssertFalse(c.met, what)
            XCTAssertNil(c.opsPerS, what)
            XCTAssertGreaterThanOrEqual(r.machineTime.usedCellSeconds, 0, what)
            XCTAssertLessThan(r.machineTime.usedCellSeconds, 1000, what)
            let square = r.matrix.squares.flatMap { $0 }
            XCTAssertTrue(square.allSatisfy { ($0.medianOpsPerS ?? 0) < 1e12 }, what)
            XCTAssertEqual(square.first { $0.counts["corrupt"] != nil }?.worst, "corrupt", what)
            XCTAssertFalse(try ResultsFolder.existing(path).isFinished(index), "\(what): a resumed campaign runs it again")
            XCTAssertTrue(r.summaryLines.contains { $0.contains("cell \(index) ") && $0.contains("corrupt") }, what)
        }
    }

    /// Damage to what identifies the folder stops the report with one line.
    func testDamagedStampOrPlanCopyStopsTheReport() throws {
        let damages: [(String, String, (String) throws -> Void)] = [
            ("stamp cells", "of 5 cells", { p in try self.edit(p + "/campaign.json") { $0["cells"] = 5 } }),
            ("stamp name", "campaign 'other'", { p in try self.edit(p + "/campaign.json") { $0["campaign"] = "other" } }),
            ("stamp unknown key", "unknown key 'extra'", { p in try self.edit(p + "/campaign.json") { $0["extra"] = 1 } }),
            ("stamp format", "format 2", { p in try self.edit(p + "/campaign.json") { $0["format"] = 2 } }),
            ("stamp plan id", "plan_id is not a SHA-256", { p in try self.edit(p + "/campaign.json") { $0["plan_id"] = "abc" } }),
            ("stamp empty", "empty", { p in try self.put(Data(), p + "/campaign.json") }),
            ("stamp truncated", "damaged campaign.json", { p in try self.put(try self.bytes(p + "/campaign.json").prefix(20), p + "/campaign.json") }),
            ("stamp trailing comma", "trailing comma", { p in
                let s = String(decoding: try self.bytes(p + "/campaign.json"), as: UTF8.self)
                try self.put(Data((s.trimmingCharacters(in: .whitespacesAndNewlines).dropLast() + ",}").utf8), p + "/campaign.json")
            }),
            ("plan copy edited", "no longer matches", { p in try self.put(Data(#"{"name":"hostile","axes":{"seed":[2],"threads":[2],"duration":1}}"#.utf8), p + "/plan.json") }),
            ("plan copy renamed", "but plan.json is 'renamed'", { p in try self.edit(p + "/plan.json") { $0["name"] = "renamed" } }),
            ("plan copy damaged", "its plan.json is damaged", { p in try self.put(Data("{".utf8), p + "/plan.json") }),
        ]
        for (what, fragment, damage) in damages {
            let path = try pristineCopy()
            try damage(path)
            XCTAssertThrowsError(try ResultsFolder.existing(path), what) { e in
                let m = (e as? CampaignError)?.message ?? "\(e)"
                XCTAssertTrue(m.contains(fragment), "\(what): '\(m)' lacks '\(fragment)'")
                XCTAssertFalse(m.contains("\n"), m)
            }
        }
        // The command line: exit 2 and one line; a corrupt cell exits 1.
        let stamped = try pristineCopy()
        try edit(stamped + "/campaign.json") { $0["cells"] = 5 }
        try expectUsageError(["campaign", "report", stamped], "of 5 cells")
        try expectUsageError(["campaign", "run", write(Self.pristinePlan, "again.json"), "--results", stamped], "the stamp was edited")
        try expectUsageError(["campaign", "report", write("{}", "a-file.json")], "is a file; give the results folder")
        let corrupt = try pristineCopy()
        try edit(corrupt + "/cells/00000/cell.json") { $0["wall_s"] = -100 }
        let r = try Self.stress(["campaign", "report", corrupt])
        XCTAssertEqual(r.status, 1, r.out + r.err)
        XCTAssertTrue(r.out.contains("1 failed, 1 corrupt"), r.out)
        XCTAssertFalse(r.out.contains("-100") && r.out.contains("cell-seconds, -"), r.out)
        let csv = try String(contentsOfFile: corrupt + "/report.csv", encoding: .utf8)
        XCTAssertTrue(csv.contains(",corrupt,") && csv.contains("its files are corrupt"), csv)
        let html = try String(contentsOfFile: corrupt + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("Expectations") && html.contains("its files are corrupt"), html)
    }

    /// A planted bug that is missed, or caught as another class, fails the
    /// campaign and says why.
    func testMissedExpectationsAreNamed() throws {
        let path = try pristineCopy()
        // The planted cell's run "passed": it did not catch its bug.
        try edit(path + "/cells/00001/cell.json") { $0["state"] = "passed"; $0["exit_status"] = 0; $0["verdict"] = "SUCCESS" }
        try edit(path + "/cells/00001/result.json") { $0["verdict"] = "SUCCESS"; $0["exit_status"] = 0; $0["violations"] = [Any](); $0["violations_by_kind"] = [String: Any]() }
        var r = CampaignReport(folder: try ResultsFolder.existing(path))
        XCTAssertEqual(r.verdict, "FAIL")
        XCTAssertEqual(r.missed.map(\.index), [1])
        XCTAssertEqual(r.missed.first?.miss, "the planted bug mremap-no-copy was not caught (the run passed)")

        // Caught, but as a class the bug does not declare.
        let other = try pristineCopy()
        try edit(other + "/cells/00001/result.json") { o in
            var vs = o["violations"] as! [[String: Any]]
            vs[0]["kind"] = "mapcount"
            o["violations"] = vs
        }
        r = CampaignReport(folder: try ResultsFolder.existing(other))
        XCTAssertEqual(r.verdict, "FAIL")
        XCTAssertEqual(r.missed.first?.miss, "the planted bug mremap-no-copy was caught as mapcount, not as incomplete-walk|location")
        XCTAssertTrue(r.summaryLines.contains { $0.contains("expected FAILURE (incomplete-walk|location): the planted bug") })
    }
}
