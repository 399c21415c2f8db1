import ConcurrentRmap
import Foundation
import StressSupport

/// One combination of a plan's axis values: one `stress run` process.
public struct CampaignCell: Sendable, Equatable {
    public var index: Int
    /// Axis values in the plan's expansion order.
    public var values: [(name: CampaignAxisName, value: String)]
    /// The options after `stress run`, without the output-only ones
    /// (`--quiet`, `--json FILE`) the cell runner adds.
    public var runArguments: [String]
    /// Seconds before the runner kills the cell and records a timeout.
    public var timeout: Double

    public func value(_ axis: CampaignAxisName) -> String? { values.first { $0.name == axis }?.value }
    public var threads: Int { value(.threads).flatMap { Int($0) } ?? 1 }
    /// Seconds the cell asks for; nil for a cell bounded by `--ops`.
    public var duration: Double? { value(.duration).flatMap { Double($0) } }
    public var seed: String { value(.seed) ?? "" }

    /// The bug the cell plants: its `inject` axis value, else an `--inject`
    /// among the plan's fixed options, else none.
    public var injection: Injection {
        if let v = value(.inject) { return Injection(rawValue: v) ?? .none }
        var it = runArguments.makeIterator()
        var found: String?
        while let a = it.next() {
            if a == "--inject" { found = it.next() } else if a.hasPrefix("--inject=") { found = String(a.dropFirst(9)) }
        }
        return found.flatMap(Injection.init(rawValue:)) ?? .none
    }

    /// "seed=3 rcu=qsbr threads=2 duration=1": names the cell in listings.
    public var key: String { values.map { "\($0.name.rawValue)=\($0.value)" }.joined(separator: " ") }

    /// The command that reproduces the cell (the run's operation streams,
    /// not its interleaving): exactly the options the cell ran with.
    public var reproduce: String { (["stress", "run"] + runArguments).map(shellQuoted).joined(separator: " ") }

    public static func == (a: CampaignCell, b: CampaignCell) -> Bool {
        a.index == b.index && a.runArguments == b.runArguments && a.timeout == b.timeout
            && a.values.map(\.name) == b.values.map(\.name) && a.values.map(\.value) == b.values.map(\.value)
    }
}

extension CampaignPlan {
    /// Cell `index`, in mixed radix over the axes (last axis fastest).
    public func cell(_ index: Int) -> CampaignCell {
        precondition(index >= 0 && index < cellCount, "cell index out of range")
        var rest = index
        var picked: [(name: CampaignAxisName, value: String)] = []
        for a in axes.reversed() {
            picked.append((a.name, a.values[rest % a.values.count]))
            rest /= a.values.count
        }
        picked.reverse()
        var args: [String] = []
        // Readable order: size and length first, then the seed, then the
        // configuration.
        let order: [CampaignAxisName] = [.threads, .duration, .ops, .seed, .scheme, .rcu, .sync, .mix, .inject]
        for name in order { if let v = picked.first(where: { $0.name == name }) { args += [name.flag, v.value] } }
        args += runArgs
        let duration = picked.first { $0.name == .duration }.flatMap { Double($0.value) }
        return CampaignCell(index: index, values: picked, runArguments: args, timeout: timeout(forDuration: duration))
    }

    /// A cell's timeout: the plan's, else twice its duration plus a minute
    /// (room for a stall timeout and a slow start), else an hour for `ops`.
    public func timeout(forDuration duration: Double?) -> Double {
        cellTimeout ?? duration.map { $0 * 2 + 60 } ?? 3600
    }

    public var cells: [CampaignCell] { (0..<cellCount).map(cell) }

    /// Checks every cell's command line with `check` (the `stress run`
    /// parser, which this module cannot see: the command line passes it in)
    /// and throws the first refusal, naming the cell. Seeds are checked
    /// where the plan is read and change nothing else a parser looks at, so
    /// the cells of the first seed cover every other combination; `only`
    /// limits the check to some cells (an array task's).
    public func checkCells(only: [Int]? = nil, _ check: (CampaignCell) throws -> Void) throws {
        let seeds = axis(.seed)?.values.count ?? 1
        let indices = only ?? Array(0..<(cellCount / seeds))
        for i in indices {
            let c = cell(i)
            do { try check(c) } catch let e as CampaignError {
                throw CampaignError("plan '\(name)': cell \(i) [\(c.key)] cannot run: \(e.message)")
            }
        }
    }

    /// The plan's identity: SHA-256 of what determines its cells (axes with
    /// normalised values in expansion order, fixed options, timeout), so
    /// reformatting or renaming a plan keeps it, and changing a cell does not.
    public var id: String {
        struct Canonical: Encodable {
            var format = 1
            var axes: [[String]]
            var runArgs: [String]
            var cellTimeout: Double?
        }
        let c = Canonical(axes: axes.map { [$0.name.rawValue] + $0.values }, runArgs: runArgs, cellTimeout: cellTimeout)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        // Encoding arrays of strings and a double cannot fail.
        let data = (try? enc.encode(c)) ?? Data()
        return Digest.sha256Hex(data)
    }

    /// What the cells ask of a machine: wall seconds summed over cells, and
    /// those seconds times each cell's worker threads, or times a fixed CPU
    /// count per cell (what a batch system allocates). Nil for `ops` cells,
    /// whose length is not known in advance.
    public func machineTimeAsked(cpusPerCell: Int? = nil) -> (cellSeconds: Double, cpuSeconds: Double)? {
        guard let durations = axis(.duration)?.values.compactMap({ Double($0) }) else { return nil }
        let threads = axis(.threads)?.values.compactMap { Double($0) } ?? [1]
        // Durations and threads are independent axes: sum per axis value,
        // not per cell, so a 100000-cell plan costs no expansion.
        let others = Double(cellCount) / Double(durations.count * threads.count)
        let seconds = durations.reduce(0, +) * others
        let cpus = cpusPerCell.map { Double($0) * Double(threads.count) } ?? threads.reduce(0, +)
        return (seconds * Double(threads.count), seconds * cpus)
    }
}

