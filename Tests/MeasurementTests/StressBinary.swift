import Foundation
import XCTest

/// The `stress` executable SwiftPM built next to the test runner.
enum StressBinary {
    private final class Anchor {}

    static func url() throws -> URL {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let bundle = Bundle(for: Anchor.self).bundleURL
        for dir in [runner, bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("stress")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw XCTSkip("stress executable not built next to the tests")
    }
}
