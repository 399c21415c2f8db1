import ArgumentParser
import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport

/// Exit statuses, as documented in README: 0 success, 1 a violation or a
/// leak, 2 bad usage, 3 a stall, 128 + N stopped by signal N.
enum ExitStatus {
    static let success: Int32 = 0
    static let violation: Int32 = 1
    static let usage: Int32 = 2
    static let stall: Int32 = 3
    /// `replay`: the schedule ran clean, so it did not reproduce its file.
    static let notReproduced: Int32 = 4
}

@main
struct StressMain {
    static func main() {
        Signals.install()
        let args = NegativeValues.attached(Array(CommandLine.arguments.dropFirst()))
        do {
            try Parse.rejectRepeated(args)
            if args.first == "help", args.count > 1, !Stress.subcommandNames.contains(args[1]) {
                throw ValidationError("no help for unknown subcommand '\(args[1])' (known: \(Stress.subcommandNames.joined(separator: ", ")))")
            }
            var command = try Stress.parseAsRoot(args)
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
        abstract: "Hammer a model of the anonymous-page rmap (anongroup or anon_vma) with many threads and check its invariants.",
        discussion: """
            Exit status: 0 success, 1 a violation or leak, 2 bad usage, 3 a stall, 128+N stopped by signal N \
            (Ctrl-C: 130; a second Ctrl-C exits at once). Every subcommand's statuses are in README.
            """,
        version: StressVersion.description,
        subcommands: [Run.self, Selftest.self, Scale.self, Schemes.self, Compare.self, Bench.self, CampaignCommand.self, Explore.self, Replay.self, Shrink.self, TraceCommand.self],
        defaultSubcommand: Run.self)

    static var subcommandNames: [String] {
        // A command without an explicit name is called by its type's name,
        // lowercased, as ArgumentParser does (selftest, explore, replay...).
        configuration.subcommands.map { $0.configuration.commandName ?? String(describing: $0).lowercased() } + ["help"]
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run one stress test (the default command).",
        discussion: """
            Exit status: 0 SUCCESS, 1 FAILURE (a violation or a leak), 2 bad usage, 3 STALL, 128+N INTERRUPTED by \
            signal N (SIGINT 130, SIGTERM 143). On the first SIGINT or SIGTERM the workers stop and the table, the \
            verdict and the JSON are written; a second signal exits at once.
            """)

    @OptionGroup var options: RunOptions
    @Option(help: "Write the result as JSON to this file (written atomically; '-' for standard output, and the report then goes to standard error). While the run goes on it holds a snapshot with verdict RUNNING.")
    var json: String?
    @Flag(help: "No status lines; the report and verdict only.")
    var quiet = false
    @Flag(name: .customLong("list-injections"), help: "List the bugs --inject can plant, and exit.")
    var listInjections = false
    @Option(name: .customLong("debug-crash-after"), help: .hidden)
    var debugCrashAfter: String?

    func run() throws {
        if listInjections {
            for i in Injection.allCases where i != .none {
                let caught = i.caughtBy.map(\.rawValue).sorted().joined(separator: ", ")
                print("\(i.rawValue)\n    \(i.summary)\n    caught by: \(caught)\(i.needsControlledRun ? " (controlled runs: stress explore)" : "")")
            }
            return
        }
        let s = try options.settings()
        let toStdout = json == "-"
        if let json, !toStdout {
            do { try AtomicFile.checkWritable(json) } catch { throw ValidationError("cannot write JSON file: \(error)") }
        }
        if let d = debugCrashAfter {
            // Test hook: die by a signal mid-run, as a corrupted model can.
            let after = try Parse.seconds(d, "--debug-crash-after", 0.01...3600)
            DebugHooks.crash(after: after)
        }
        let out = Reporter(quiet: quiet, toStandardError: toStdout)
        out.header(s)
        var hooks = EngineHooks()
        if !quiet { hooks.status = { out.status($0) } }
        if let json, !toStdout {
            hooks.snapshot = { r in try? ResultFile.write(r, to: json) }
        }
        let result: StressResult
        do {
            result = try StressEngine.run(s, hooks: hooks)
        } catch let e as Machine.ConfigError {
            throw ValidationError(e.description)
        }
        out.finishStatus()
        out.report(result)
        if let json {
            if toStdout {
                FileHandle.standardOutput.write(try ResultFile.encoder().encode(result) + Data("\n".utf8))
            } else {
                try ResultFile.write(result, to: json)
            }
        }
        throw ExitRequest(status: result.exitStatus)
    }
}
