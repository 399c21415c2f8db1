import Foundation
import XCTest

extension CommandLineTests {
    /// explore → a file; replay → the same violation; hostile input → exit 2.
    func testExploreReplayShrinkFromTheCommandLine() throws {
        let dir = tempDir("explore")
        let file = dir + "/s.json"
        let e = try run(["explore", "--inject", "mremap-no-copy", "--schedules", "500", "--steps", "2000", "--quiet", "--out", file])
        XCTAssertEqual(e.status, 1, e.out + e.err)
        XCTAssertTrue(e.out.contains("FOUND after"), e.out)
        XCTAssertTrue(e.out.contains("shrunk in"), e.out)
        let r1 = try run(["replay", file])
        let r2 = try run(["replay", file, "--trace", "5"])
        XCTAssertEqual(r1.status, 1)
        XCTAssertTrue(r1.out.contains("REPRODUCED"), r1.out)
        XCTAssertTrue(r1.out.contains("locks held"), r1.out)
        XCTAssertEqual(r1.out.split(separator: "\n").last, r2.out.split(separator: "\n").last)
        let s = try run(["shrink", file, "--out", dir + "/t.json"])
        XCTAssertEqual(s.status, 1, s.out + s.err)
        XCTAssertTrue(s.out.contains("shrunk in"), s.out)
        XCTAssertEqual(try run(["replay", dir + "/t.json"]).status, 1)

        for bad in [["explore", "--strategy", "pct:0"], ["explore", "--strategy", "dfs"], ["explore", "--steps", "5"],
                    ["explore", "--threads", "99"], ["explore", "--schedules", "0"],
                    ["explore", "--scheme", "anon-vma", "--inject", "mremap-no-copy"],
                    ["replay", dir + "/missing.json"], ["replay", "--trace", "9999", file],
                    ["selftest", "--schedules", "5"], ["shrink", file, "--max-replays", "0"]] {
            let r = try run(bad)
            XCTAssertEqual(r.status, 2, "\(bad): \(r.out) \(r.err)")
            XCTAssertEqual(r.err.split(separator: "\n").count, 1, "\(bad): one line: \(r.err)")
        }
        let clean = try run(["explore", "--schedules", "20", "--steps", "500", "--quiet", "--out", dir + "/c.json"])
        XCTAssertEqual(clean.status, 0, clean.out)
        XCTAssertTrue(clean.out.contains("CLEAN: 20 schedules"), clean.out)
    }
}
