import Foundation
import StressSupport

/// A campaign's results merged into one verdict: every cell's state, the
/// verdict matrix over the axes, failures grouped by signature, the cells
/// that crashed or never finished, throughput, machine time and builds.
/// Written as report.json (this struct), report.csv and report.html.
public struct CampaignReport: Codable, Sendable {
    public struct Cell: Codable, Sendable {
        public var index: Int
        public var key: String
        public var axes: [String: String]
        public var seed: String
        public var threads: Int
        /// A CellState, or "unfinished" for a cell never started.
        public var state: String
        public var verdict: String?
        public var exitStatus: Int32?
        public var signal: Int32?
        public var signalName: String?
        public var wallS: Double?
        public var opsPerS: Double?
        public var completedOps: UInt64?
        public var firstViolationS: Double?
        public var build: String?
        public var signature: String?
        public var reproduce: String
        public var attempts: Int
        /// States of earlier attempts, oldest first ("crashed (signal 9 SIGKILL)").
        public var earlierAttempts: [String]
        public var host: String?
        public var slurmJob: String?
        public var note: String?
        /// What the cell should end as (Expectation): "SUCCESS", or
        /// "FAILURE (classes)" for a cell with a planted bug.
        public var expected: String
        /// Why the cell did not meet its expectation; nil when it did.
        public var miss: String?
        public var met: Bool { miss == nil }
    }

    /// Failed cells (and crashed or unfinished ones whose last snapshot
    /// holds a violation) grouped by FailureSignature.
    public struct Signature: Codable, Sendable {
        public var signature: String
        public var kind: String
        public var op: String
        public var detail: String
        public var count: Int
        public var cells: [Int]
        /// Seed and command of the lowest-numbered cell with it.
        public var firstSeed: String
        public var firstCell: Int
        public var reproduce: String
        /// Axis values it appeared under, for axes the plan varies ("rcu=memb,qsbr").
        public var seenWith: [String]
    }

    public struct Square: Codable, Sendable {
        /// Cells per state.
        public var counts: [String: Int]
        public var total: Int
        public var medianOpsPerS: Double?
        /// Cells that did not meet their expectation.
        public var missed: Int
        /// The worst state among the cells that missed their expectation
        /// (corrupt > failed > crashed > timeout > error > unfinished >
        /// running > passed), "met" when every cell met it.
        public var worst: String
    }

    public struct Matrix: Codable, Sendable {
        /// Non-seed axes with more than one value, one per row label.
        public var rowAxes: [String]
        /// The last varied axis, one column per value; nil when nothing but the seed varies.
        public var columnAxis: String?
        public var columns: [String]
        public var rowLabels: [[String]]
        /// rows × columns; seeds (and fixed axes) fold into each square.
        public var squares: [[Square]]
    }

    public struct Build: Codable, Sendable {
        public var build: String
        public var cells: Int
    }

    public struct MachineTime: Codable, Sendable {
        /// Cells × their durations (nil for `ops` plans).
        public var askedCellSeconds: Double?
        /// Cells × duration × worker threads.
        public var askedThreadSeconds: Double?
        /// Wall seconds of every attempt that ran, earlier attempts included.
        public var usedCellSeconds: Double
        /// Those seconds × the cell's worker threads.
        public var usedThreadSeconds: Double
        public var measure = "thread-seconds: wall time of each cell's `stress run` times its worker threads"
    }

    public var campaign: String
    public var description: String?
    public var planId: String
    public var generated: String
    /// "PASS" when every cell met its expectation (correct cells passed,
    /// planted bugs were caught with one of their classes), else "FAIL".
    public var verdict: String
    /// Cells that did not meet their expectation, with why.
    public var missed: [Cell]
    public var cellCount: Int
    public var counts: [String: Int]
    public var axes: [[String]]
    public var builds: [Build]
    public var mixedBuilds: Bool
    public var machineTime: MachineTime
    public var matrix: Matrix
    public var signatures: [Signature]
    /// Cells that neither passed nor failed: corrupt, crashed, timed out, errors, unfinished, running.
    public var problems: [Cell]
    public var cells: [Cell]

    public var passed: Bool { verdict == "PASS" }

    /// A cell whose files contradict each other or the plan (CellAudit).
    public static let corrupt = "corrupt"
    static let severity = [corrupt, "failed", "crashed", "timeout", "error", "unfinished", "running", "passed"]

    /// Merges everything the folder holds.
    public init(folder: ResultsFolder) {
        let plan = folder.plan
        var cells: [Cell] = []
        var used = 0.0, usedThreads = 0.0
        var signatureOf: [Int: FailureSignature] = [:]
        for i in 0..<plan.cellCount {
            let c = plan.cell(i)
            let files = folder.files(i)
            let record = files.record
            let result = files.result
            let earlier = folder.earlierAttempts(i)
            // Only times a runner can have measured count as machine time.
            for r in earlier + [record].compactMap({ $0 }) {
                guard let w = r.wallS, CellAudit.plausibleWall(w, c) else { continue }
                used += w
                usedThreads += w * Double(c.threads)
            }
            let expectation = Expectation(c)
            var cell = Cell(index: i, key: c.key, axes: Dictionary(uniqueKeysWithValues: c.values.map { ($0.name.rawValue, $0.value) }),
                            seed: c.seed, threads: c.threads, state: CellState.unfinished.rawValue,
                            reproduce: c.reproduce, attempts: earlier.count + (record == nil ? 0 : 1),
                            earlierAttempts: earlier.map(\.summary), expected: expectation.text)
            if let why = files.corrupt {
                cell.state = Self.corrupt
                cell.note = why
                cell.exitStatus = record?.exitStatus
                cell.host = record?.host
                cell.slurmJob = record?.slurmJob
                cell.miss = "its files are corrupt: \(why)"
                cells.append(cell)
                continue
            }
            if let record {
                cell.state = record.state.rawValue
                cell.exitStatus = record.exitStatus
                cell.signal = record.signal
                cell.signalName = record.signalName
                cell.wallS = record.wallS
                cell.host = record.host
                cell.slurmJob = record.slurmJob
                cell.note = record.note
                if record.state == .running && !folder.isHeld(i) {
                    cell.state = CellState.unfinished.rawValue
                    cell.note = "its runner stopped without recording an end (killed, node lost or time limit)"
                }
            } else {
                cell.note = "never started"
            }
            if let result {
                cell.verdict = result.verdict
                cell.completedOps = result.completedOperations
                cell.firstViolationS = result.firstViolationS
                cell.build = result.build
                // Only a finished run's rate is a measurement.
                if record?.state.isFinished == true { cell.opsPerS = result.opsPerS }
                // A crashed or hung run's last snapshot may already hold the
                // violation that explains it.
                let found = cell.state == CellState.failed.rawValue || !result.violations.isEmpty || !result.leaks.isEmpty
                if found && cell.state != CellState.passed.rawValue, let sig = FailureSignature(result: result) {
                    cell.signature = sig.text
                    signatureOf[i] = sig
                }
            }
            cell.miss = expectation.miss(state: cell.state, result: result)
            cells.append(cell)
        }

        campaign = plan.name
        description = plan.description
        planId = plan.id
        generated = timestamp()
        cellCount = plan.cellCount
        self.cells = cells
        counts = Dictionary(grouping: cells, by: \.state).mapValues(\.count)
        missed = cells.filter { !$0.met }
        verdict = missed.isEmpty ? "PASS" : "FAIL"
        axes = plan.axes.map { [$0.name.rawValue] + $0.values }
        problems = cells.filter { $0.state != CellState.passed.rawValue && $0.state != CellState.failed.rawValue }

        let byBuild = Dictionary(grouping: cells.compactMap(\.build), by: { $0 })
        builds = byBuild.map { Build(build: $0.key, cells: $0.value.count) }.sorted { $0.cells > $1.cells || ($0.cells == $1.cells && $0.build < $1.build) }
        mixedBuilds = builds.count > 1

        let asked = plan.machineTimeAsked()
        machineTime = MachineTime(askedCellSeconds: asked?.cellSeconds, askedThreadSeconds: asked?.cpuSeconds,
                                  usedCellSeconds: used, usedThreadSeconds: usedThreads)

        let varied = plan.axes.filter { $0.name != .seed && $0.values.count > 1 }
        signatures = Dictionary(grouping: signatureOf.keys.sorted(), by: { signatureOf[$0]! }).map { sig, indices in
            let first = cells[indices[0]]
            let seen = varied.map { a in
                let values = a.values.filter { v in indices.contains { cells[$0].axes[a.name.rawValue] == v } }
                return "\(a.name.rawValue)=\(values.joined(separator: ","))"
            }
            return Signature(signature: sig.text, kind: sig.kind, op: sig.op, detail: sig.detail, count: indices.count,
                             cells: indices, firstSeed: first.seed, firstCell: first.index, reproduce: first.reproduce, seenWith: seen)
        }.sorted { $0.count > $1.count || ($0.count == $1.count && $0.signature < $1.signature) }

        matrix = Self.matrix(plan: plan, cells: cells, varied: varied)
    }

    static func matrix(plan: CampaignPlan, cells: [Cell], varied: [CampaignAxis]) -> Matrix {
        let column = varied.last
        let rowAxes = Array(varied.dropLast())
        var rowLabels: [[String]] = [[]]
        for a in rowAxes { rowLabels = rowLabels.flatMap { r in a.values.map { r + [$0] } } }
        let columns = column?.values ?? ["all cells"]
        var groups: [[[Cell]]] = Array(repeating: Array(repeating: [], count: columns.count), count: rowLabels.count)
        for c in cells {
            var row = 0
            for a in rowAxes { row = row * a.values.count + (a.values.firstIndex(of: c.axes[a.name.rawValue] ?? "") ?? 0) }
            let col = column.flatMap { a in a.values.firstIndex(of: c.axes[a.name.rawValue] ?? "") } ?? 0
            groups[row][col].append(c)
        }
        let squares = groups.map { row in
            row.map { g -> Square in
                let counts = Dictionary(grouping: g, by: \.state).mapValues(\.count)
                let missedStates = Set(g.filter { !$0.met }.map(\.state))
                let worst = missedStates.isEmpty ? "met" : severity.first { missedStates.contains($0) } ?? "unfinished"
                return Square(counts: counts, total: g.count, medianOpsPerS: median(g.compactMap(\.opsPerS)),
                              missed: g.filter { !$0.met }.count, worst: worst)
            }
        }
        return Matrix(rowAxes: rowAxes.map(\.name.rawValue), columnAxis: column?.name.rawValue, columns: columns,
                      rowLabels: rowLabels, squares: squares)
    }

    /// Writes report.json, report.csv and report.html into the folder.
    public func write(to folder: ResultsFolder) throws -> [String] {
        let enc = SnakeCaseJSON.encoder()
        let files: [(String, Data)] = [
            ("report.json", try enc.encode(self)),
            ("report.csv", Data(ReportCSV.render(self, axes: folder.plan.axes.map(\.name.rawValue)).utf8)),
            ("report.html", Data(ReportHTML.render(self).utf8)),
        ]
        for (name, data) in files { try AtomicFile.write(data, to: folder.path + "/" + name) }
        return files.map { folder.path + "/" + $0.0 }
    }

    /// What `stress campaign report` prints.
    public var summaryLines: [String] {
        var out: [String] = []
        let order = ["passed", "failed", "crashed", "timeout", "error", "unfinished", "running", Self.corrupt]
        let states = order.compactMap { s in counts[s].map { "\($0) \(s)" } }.joined(separator: ", ")
        out.append("campaign '\(campaign)' (plan \(shortPlanId(planId))): \(cellCount) cells: \(states)")
        let planted = cells.filter { $0.expected != "SUCCESS" }
        if !planted.isEmpty {
            out.append("planted bugs caught with a declared class: \(planted.filter(\.met).count) of \(planted.count) cells")
        }
        if !signatures.isEmpty {
            out.append("failure signatures:")
            for s in signatures {
                out.append("  \(s.count)x \(s.signature)")
                out.append("      first seed \(s.firstSeed) (cell \(s.firstCell)): \(s.reproduce)")
            }
        }
        if !problems.isEmpty {
            out.append("corrupt, crashed, timed out or unfinished:")
            for p in problems.prefix(20) {
                let summary = p.signal.map { " (signal \($0)\(p.signalName.map { " \($0)" } ?? ""))" } ?? ""
                out.append("  cell \(p.index) [\(p.key)]: \(p.state)\(summary)\(p.note.map { ": \($0)" } ?? "")")
            }
            if problems.count > 20 { out.append("  ... and \(problems.count - 20) more (see report.csv)") }
        }
        if mixedBuilds {
            out.append("MIXED BUILDS: results come from \(builds.count) builds: " + builds.map { "\($0.build) (\(cellCountText($0.cells)))" }.joined(separator: ", "))
        } else if let b = builds.first {
            out.append("build \(b.build) (all \(b.cells) results)")
        }
        var time = String(format: "machine time used: %.0f cell-seconds, %.0f thread-seconds", machineTime.usedCellSeconds, machineTime.usedThreadSeconds)
        if let a = machineTime.askedThreadSeconds { time += String(format: " (plan asked %.0f thread-seconds)", a) }
        out.append(time)
        if missed.isEmpty {
            out.append("PASS: every cell met its expectation")
        } else {
            out.append("cells that did not meet their expectation (\(missed.count) of \(cellCount)):")
            for m in missed.prefix(20) {
                out.append("  cell \(m.index) [\(m.key)]: expected \(m.expected): \(m.miss ?? "")")
            }
            if missed.count > 20 { out.append("  ... and \(missed.count - 20) more (see report.csv)") }
            out.append("FAIL")
        }
        return out
    }
}

func median(_ xs: [Double]) -> Double? {
    guard !xs.isEmpty else { return nil }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// "1 cell", "12 cells".
func cellCountText(_ n: Int) -> String { n == 1 ? "1 cell" : "\(n) cells" }
