import Foundation
import XCTest

/// `stress schemes --trace`: beside the claims, each trace's replay says
/// how many anonymous pages and mappings private file mappings gave birth to.
final class SchemesTraceFilesCommandLineTests: XCTestCase {
    func testTraceFilesSectionAndJSON() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let trace = root.appendingPathComponent("docs/traces/shell_ls_cat.trace.gz").path
        let out = NSTemporaryDirectory() + "schemes-trace-files-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = Process()
        p.executableURL = try CommandLineTests.stressBinary()
        p.arguments = ["schemes", "--trace", trace, "--out", out]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("shell_ls_cat: anonymous pages born from private file mappings "), text)
        let md = try String(contentsOfFile: out + "/trace-claims.md", encoding: .utf8)
        XCTAssertTrue(md.contains("## Anonymous pages born from private file mappings"), md)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/trace-files.json"))) as? [[String: Any]])
        XCTAssertEqual(rows.count, 1)
        let row = rows[0]
        XCTAssertEqual(row["workload"] as? String, "shell_ls_cat")
        XCTAssertEqual(row["verdict"] as? String, "SUCCESS")
        // Every file mapping of this recording names its file (17 paths, 75 mmaps).
        XCTAssertEqual(row["paths"] as? Int, 17)
        XCTAssertEqual(row["file_mappings_with_inode"] as? Int, 75)
        XCTAssertEqual(row["unknown_file_mappings"] as? Int, 0)
        let born = try XCTUnwrap(row["anon_pages_born"] as? Int)
        let copies = try XCTUnwrap(row["file_copies"] as? Int)
        XCTAssertGreaterThan(born, 0)
        XCTAssertEqual(try XCTUnwrap(row["private_file_share"] as? Double), Double(copies) / Double(born), accuracy: 1e-9)
    }
}
