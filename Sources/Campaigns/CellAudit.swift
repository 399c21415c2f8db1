import Foundation
import RunEngine
import StressSupport

/// A cell's files read back strictly and checked against each other and
/// against the plan. Anything a runner and `stress run` cannot have written
/// (a truncated or hand-edited record, a result of another cell, a verdict
/// the record contradicts, an impossible time or rate) makes the cell
/// corrupt: reported as such, never as a pass, never as "never started",
/// and never in the throughput figures.
public struct CellFiles {
    public var record: CellRecord?
    public var result: CellResult?
    /// Why the files cannot be trusted; nil when they agree.
    public var corrupt: String?
}

enum CellAudit {
    /// Seconds a cell's wall time may exceed its timeout: the kill grace,
    /// a slow exit, a loaded node. Past twice the timeout plus this, the
    /// runner would have killed it long before.
    static let wallSlack = 600.0
    /// No worker completes an operation of the model in under a
    /// nanosecond: a higher rate per thread is not a measurement.
    static let maxOpsPerSecondPerThread = 1e9

    static func read(_ folder: ResultsFolder, _ cell: CampaignCell) -> CellFiles {
        let i = cell.index
        var files = CellFiles()
        func corrupt(_ why: String) -> CellFiles {
            files.corrupt = why
            return files
        }
        // Missing is a state (never started, no result yet); a folder, a
        // device or a giant in a file's place is damage.
        func read(_ name: String, _ path: String, _ limit: Int) -> (Data?, String?) {
            switch BoundedRead.read(path, limit: limit) {
            case .data(let d): return (d, nil)
            case .missing: return (nil, nil)
            case .folder: return (nil, "\(name) is a folder")
            case .tooLarge: return (nil, "\(name) is over \(limit >> 20) MiB")
            case .unreadable(let why): return (nil, "\(name) cannot be read: \(why)")
            }
        }
        let (recordData, recordDamage) = read("cell.json", folder.recordPath(i), BoundedRead.planLimit)
        let (resultData, resultDamage) = read("result.json", folder.resultPath(i), BoundedRead.resultLimit)
        if let why = recordDamage ?? resultDamage { return corrupt(why) }
        guard let recordData else {
            return resultData == nil ? files : corrupt("result.json without a cell.json: no runner recorded this cell")
        }
        let record: CellRecord
        switch strictRecord(recordData) {
        case .failure(let f): return corrupt("cell.json is not a cell record: \(f.why)")
        case .success(let r): record = r
        }
        files.record = record
        if let why = recordProblem(record, cell) { return corrupt("cell.json: \(why)") }

        var result: CellResult?
        var full: StressResult?
        if let resultData {
            switch strictResult(resultData) {
            case .failure(let f): return corrupt("result.json is not a stress run result: \(f.why)")
            case .success(let read): result = read.0; full = read.1
            }
        }
        files.result = result
        if let why = agreement(record, full, cell) { return corrupt(why) }
        return files
    }

    // MARK: Reading

    static func strictRecord(_ data: Data) -> Result<CellRecord, Failure> {
        if data.isEmpty { return .failure(Failure("the file is empty")) }
        if let p = StrictJSON.problem(data) { return .failure(Failure(p)) }
        do {
            let r = try CellRecord.decoder.decode(CellRecord.self, from: data)
            if let k = unknownKey(data, try CellRecord.encoder.encode(r)) { return .failure(Failure(k)) }
            return .success(r)
        } catch {
            return .failure(Failure(decodingSummary(error)))
        }
    }

    /// The result as the run's own type decodes it (every field of its
    /// type, no key it does not know), and the lenient view the report uses.
    static func strictResult(_ data: Data) -> Result<(CellResult, StressResult), Failure> {
        if data.isEmpty { return .failure(Failure("the file is empty")) }
        if let p = StrictJSON.problem(data) { return .failure(Failure(p)) }
        do {
            let full = try ResultFile.decoder().decode(StressResult.self, from: data)
            if let k = unknownKey(data, try ResultFile.encoder().encode(full), nested: ["settings", "violations"]) {
                return .failure(Failure(k))
            }
            return .success((try JSONDecoder().decode(CellResult.self, from: data), full))
        } catch {
            return .failure(Failure(decodingSummary(error)))
        }
    }

    struct Failure: Error { var why: String; init(_ why: String) { self.why = why } }

    /// The first key of `original` its own type does not write back (at
    /// the top level, and inside the `nested` objects and lists of objects).
    static func unknownKey(_ original: Data, _ roundTrip: Data, nested: [String] = []) -> String? {
        guard let a = try? JSONDecoder().decode(JSONValue.self, from: original),
              let b = try? JSONDecoder().decode(JSONValue.self, from: roundTrip) else { return "not a JSON object" }
        func compare(_ a: JSONValue, _ b: JSONValue, _ at: String) -> String? {
            guard case .object(let x) = a else { return "\(at.isEmpty ? "the file" : at) is not an object" }
            guard case .object(let y) = b else { return nil }
            for k in x.keys.sorted() where y[k] == nil {
                return "unknown key '\(at.isEmpty ? "" : at + ".")\(k)'"
            }
            return nil
        }
        if let p = compare(a, b, "") { return p }
        guard case .object(let x) = a, case .object(let y) = b else { return nil }
        for k in nested {
            switch (x[k], y[k]) {
            case (.object?, let o?): if let p = compare(x[k]!, o, k) { return p }
            case (.array(let xs)?, .array(let ys)?) where xs.count == ys.count:
                for (n, (e, f)) in zip(xs, ys).enumerated() { if let p = compare(e, f, "\(k)[\(n)]") { return p } }
            default: continue
            }
        }
        return nil
    }

    static func decodingSummary(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "key '\(snake(key.stringValue))' is missing"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "'\(ctx.codingPath.map { snake($0.stringValue) }.joined(separator: "."))' has the wrong type"
        case DecodingError.dataCorrupted(let ctx):
            let path = ctx.codingPath.map { snake($0.stringValue) }.joined(separator: ".")
            return path.isEmpty ? "not valid JSON" : "'\(path)' has a value its type does not take"
        default: return "does not decode"
        }
    }

    /// "wallS" -> "wall_s", as the files spell keys.
    static func snake(_ s: String) -> String {
        var out = ""
        for c in s {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }

    // MARK: Checks

    /// The record on its own: it belongs to this cell, its numbers can be.
    static func recordProblem(_ r: CellRecord, _ cell: CampaignCell) -> String? {
        if r.index != cell.index { return "it is the record of cell \(r.index), not \(cell.index)" }
        if r.key != cell.key { return "it records [\(r.key)], but the plan's cell \(cell.index) is [\(cell.key)]" }
        if r.attempt < 1 { return "attempt \(r.attempt) is not an attempt number" }
        if let w = r.wallS, !plausibleWall(w, cell) {
            return "wall_s \(w) is impossible for a cell whose timeout is \(formatSeconds(cell.timeout)) s"
        }
        switch r.state {
        case .passed where r.exitStatus != 0:
            return "it says passed with exit status \(r.exitStatus.map(String.init) ?? "none")"
        case .failed where !(r.exitStatus == 1 || r.exitStatus == 3):
            return "it says failed with exit status \(r.exitStatus.map(String.init) ?? "none"), not 1 or 3"
        default: return nil
        }
    }

    static func plausibleWall(_ w: Double, _ cell: CampaignCell) -> Bool {
        w.isFinite && w >= 0 && w <= cell.timeout * 2 + wallSlack
    }

    /// The record, the result and the plan's cell tell one story.
    static func agreement(_ record: CellRecord, _ result: StressResult?, _ cell: CampaignCell) -> String? {
        let verdict = result?.verdict
        switch record.state {
        case .passed, .failed:
            guard let verdict else { return "cell.json says \(record.state.rawValue) but result.json is missing" }
            let fits = record.state == .passed ? verdict == "SUCCESS" : (verdict == "FAILURE" || verdict == "STALL")
            if !fits { return "cell.json says \(record.state.rawValue) but result.json's verdict is \(verdict)" }
            if let v = record.verdict, v != verdict { return "cell.json records verdict \(v) but result.json says \(verdict)" }
            if let e = result?.exitStatus, let r = record.exitStatus, e != r {
                return "result.json's exit status \(e) is not the \(r) cell.json recorded"
            }
        default: break
        }
        guard let result else { return nil }
        if let why = settingsMismatch(result.settings, cell) { return "result.json is of another run: \(why)" }
        let r = result.opsPerS
        let limit = maxOpsPerSecondPerThread * Double(max(1, result.settings.threads))
        if !(r.isFinite && r >= 0 && r <= limit) { return "result.json's throughput \(r) ops/s is impossible" }
        if r > 0 && result.totalCompleted == 0 { return "result.json has \(r) ops/s but no completed operation" }
        let e = result.elapsedS
        if !(e.isFinite && e >= 0) { return "result.json's elapsed_s \(e) is impossible" }
        if let w = record.wallS, record.state.isFinished, e > w + 1 {
            return "result.json's run lasted \(e) s, longer than the \(w) s its cell took"
        }
        if let f = result.firstViolationS, !(f.isFinite && f >= 0 && f <= e + 1) {
            return "result.json's first_violation_s \(f) is impossible"
        }
        return nil
    }

    /// The settings that the cell's axes fix, compared with what the run used.
    static func settingsMismatch(_ s: RunSettings, _ cell: CampaignCell) -> String? {
        for (name, value) in cell.values {
            let ran: String
            switch name {
            case .seed: ran = "\(s.seed)"
            case .threads: ran = "\(s.threads)"
            case .rcu: ran = s.rcu.rawValue
            case .sync: ran = s.sync.rawValue
            case .scheme: ran = s.scheme.rawValue
            case .inject: ran = s.inject.rawValue
            case .duration: ran = formatSeconds(s.durationS)
            case .ops: ran = s.ops.map(String.init) ?? "none"
            case .mix:
                ran = (try? OperationMix(parsing: s.mix)).map { CampaignPlan.reduced($0).description } ?? s.mix
            }
            if ran != value { return "\(name.rawValue) \(ran), but the cell's is \(value)" }
        }
        return nil
    }
}
