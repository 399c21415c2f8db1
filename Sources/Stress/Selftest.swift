import ArgumentParser
import ConcurrentRmap
import Foundation
import StressKit

/// `stress selftest`: proof that the checks work. Runs the correct model,
/// then every planted bug, each in its own child process (a planted bug may
/// wedge threads or corrupt the allocator; a child keeps that contained and
/// lets a stall be killed), and tabulates what was caught and how fast.
struct Selftest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the correct model, then every --inject bug; exit 0 only if the first is clean and all are caught.")

    @Option(help: "Seconds each injection may run before it counts as undetected.")
    var timePerInjection: Double = 20
    @Option(help: "Seconds the correct run lasts.")
    var cleanDuration: Double = 20
    @Option(help: "Worker threads per run.")
    var threads: Int = 4
    @Option(help: "Comma-separated injections to run (default: all).")
    var only: String?
    @Option(help: "Base seed (printed; each run uses it).")
    var seed: UInt64?
    @Flag(inversion: .prefixedNo, help: "Perturb schedules at race windows.")
    var perturb = true

    func run() throws {
        guard timePerInjection > 0, timePerInjection.isFinite, cleanDuration > 0, cleanDuration.isFinite else {
            throw ValidationError("durations must be positive numbers of seconds")
        }
        guard threads >= 1 && threads <= 4096 else { throw ValidationError("threads must be 1...4096 (got \(threads))") }
        var list = Injection.allCases.filter { $0 != .none }
        if let only {
            list = try only.split(separator: ",").map { name in
                guard let i = Injection(rawValue: String(name)), i != .none else {
                    throw ValidationError("unknown injection '\(name)' (see stress --list-injections)")
                }
                return i
            }
        }
        let seed = self.seed ?? freshSeed()
        print("selftest: threads=\(threads) seed=\(seed) perturb=\(perturb) clean=\(fmt(cleanDuration))s per-injection=\(fmt(timePerInjection))s")
        var rows: [(String, Bool, String, String)] = []
        let clean = child(.none, duration: cleanDuration, seed: seed)
        let cleanOK = clean?.verdict == "SUCCESS"
        rows.append(("(none: correct model)", cleanOK, "-", cleanOK ? "clean" : describe(clean)))
        print(line(rows.last!)); fflush(nil)
        var allCaught = true
        for inj in list {
            let r = child(inj, duration: timePerInjection, seed: seed)
            let caught = r != nil && r!.verdict != "SUCCESS"
            if !caught { allCaught = false }
            let t = r?.firstViolationS.map { fmt($0, 2) + "s" } ?? (r?.verdict == "STALL" ? "stall" : "-")
            rows.append((inj.rawValue, caught, caught ? t : "-", describe(r)))
            print(line(rows.last!)); fflush(nil)
        }
        let ok = cleanOK && allCaught
        print(ok ? "SELFTEST PASSED: correct run clean, \(list.count)/\(list.count) injections detected"
                 : "SELFTEST FAILED: \(cleanOK ? "" : "correct run not clean; ")\(rows.dropFirst().filter { !$0.1 }.count) injections undetected")
        throw ExitRequest(status: ok ? 0 : 1)
    }

    func line(_ r: (String, Bool, String, String)) -> String {
        pad(r.0, 26) + pad(r.0.hasPrefix("(none") ? (r.1 ? "clean" : "NOT CLEAN") : (r.1 ? "detected" : "MISSED"), 11)
            + pad(r.2, 9) + r.3
    }

    func describe(_ r: StressResult?) -> String {
        guard let r else { return "child failed to report" }
        if let v = r.violations.first { return "\(v.kind)\(v.op.map { " in \($0)" } ?? ""): \(v.detail)" }
        if r.verdict == "STALL" { return "stall" }
        if !r.leaks.isEmpty { return "leak: \(r.leaks[0])" }
        return r.verdict.lowercased()
    }

    /// Runs `stress run` with the injection in a child process and reads
    /// its JSON. A child that outlives duration + stall timeout + grace is
    /// killed and counted by what it reported (nothing).
    func child(_ inj: Injection, duration: Double, seed: UInt64) -> StressResult? {
        let json = NSTemporaryDirectory() + "crmap-selftest-\(getpid())-\(inj.rawValue).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        var args = ["run", "--quiet", "--threads", "\(threads)", "--duration", "\(duration)", "--seed", "\(seed)",
                    "--inject", inj.rawValue, "--json", json, "--stall-timeout", "5", "--audit-interval", "1"]
        if perturb { args.append("--perturb") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let deadline = Date().addingTimeInterval(duration + 30)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { p.terminate(); usleep(200_000); if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        p.waitUntilExit()
        guard let data = FileManager.default.contents(atPath: json), !data.isEmpty else { return nil }
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        return try? dec.decode(StressResult.self, from: data)
    }
}
