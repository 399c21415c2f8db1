import ArgumentParser
import ConcurrentRmap
import Foundation
import StressKit

/// Exit statuses, as documented in README: 0 success, 1 a violation or a
/// leak, 2 bad usage, 3 a stall.
enum ExitStatus {
    static let success: Int32 = 0
    static let violation: Int32 = 1
    static let usage: Int32 = 2
    static let stall: Int32 = 3
}

@main
struct StressMain {
    static func main() {
        do {
            var command = try Stress.parseAsRoot()
            try command.run()
        } catch let exit as ExitRequest {
            Foundation.exit(exit.status)
        } catch {
            let code = Stress.exitCode(for: error)
            if code == .success {
                print(Stress.fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = Stress.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("stress: error: \(message)\n".utf8))
            Foundation.exit(ExitStatus.usage)
        }
    }
}

/// Thrown by a command that finished and wants a specific exit status.
struct ExitRequest: Error { let status: Int32 }

struct Stress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stress",
        abstract: "Hammer the anon-memory-group rmap model with many threads and check its invariants.",
        discussion: "Exit status: 0 success, 1 a violation or leak, 2 bad usage, 3 a stall.",
        version: StressVersion.version,
        subcommands: [Run.self, Selftest.self, Scale.self, Compare.self, Bench.self, CampaignCommand.self],
        defaultSubcommand: Run.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run one stress test (the default command).")

    @OptionGroup var options: RunOptions
    @Option(help: "Write the results as JSON to this file.")
    var json: String?
    @Flag(help: "No status lines; the report and verdict only.")
    var quiet = false
    @Flag(name: .customLong("list-injections"), help: "List the bugs --inject can plant, and exit.")
    var listInjections = false

    func run() throws {
        if listInjections {
            for i in Injection.allCases where i != .none {
                print("\(i.rawValue)\n    \(i.summary)")
            }
            return
        }
        var o = try options.stressOptions()
        o.quiet = quiet
        if let json { try checkWritable(json) }
        let out = Reporter(quiet: quiet)
        out.header(o)
        let statusSink: ((StatusSnapshot) -> Void)? = quiet ? nil : { out.status($0) }
        let result = try StressEngine.run(o, status: statusSink)
        out.finishStatus()
        out.report(result)
        if let json {
            let enc = JSONEncoder()
            enc.keyEncodingStrategy = .convertToSnakeCase
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(result).write(to: URL(fileURLWithPath: json))
        }
        throw ExitRequest(status: result.exitStatus)
    }
}

/// Fails early (usage error) when the JSON file cannot be created.
func checkWritable(_ path: String) throws {
    if !FileManager.default.createFile(atPath: path, contents: Data()) {
        throw ValidationError("cannot write JSON file '\(path)'")
    }
}
