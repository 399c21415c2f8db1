import Foundation
import RunEngine

/// The inputs of `stress compare`, read strictly: a scale or schemes
/// folder (its runs.json), a runs.json file, one `stress run --json`
/// result or a list of them. Every run must be one the tool could have
/// written (no unknown or duplicate keys, right kinds, figures that agree
/// with each other), a SUCCESS (a failed run measured a broken model), and
/// there only once.
public enum CompareInput {
    public static func load(_ path: String) throws -> [ScaleRun] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ScaleCompare.LoadError(message: "no such file or folder '\(path)'")
        }
        let file = isDir.boolValue ? (path as NSString).appendingPathComponent("runs.json") : path
        if isDir.boolValue, !FileManager.default.fileExists(atPath: file) {
            throw ScaleCompare.LoadError(message: "'\(path)' is a folder without runs.json (not a scale or schemes folder)")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ScaleCompare.LoadError(message: "cannot read '\(file)'")
        }
        return try parse(data, name: file)
    }

    public static func parse(_ data: Data, name: String) throws -> [ScaleRun] {
        func fail(_ m: String) -> ScaleCompare.LoadError { ScaleCompare.LoadError(message: "'\(name)': \(m)") }
        let tree: StrictJSON
        do { tree = try StrictJSON.parse(data) } catch let e as StrictJSON.ParseError { throw fail(e.message) }
        var runs: [ScaleRun]
        do {
            switch tree {
            case .array(let items) where items.first?["result"] != nil:
                runs = try ResultFileCheck.decode([ScaleRun].self, from: data)
            case .array:
                runs = repeatsNumbered(try ResultFileCheck.decode([StressResult].self, from: data).map(ScaleCompare.wrap))
            case .object where tree["verdict"] != nil && tree["settings"] != nil:
                runs = [ScaleCompare.wrap(try ResultFileCheck.decode(StressResult.self, from: data))]
            default:
                throw fail("not a runs.json or a stress --json result")
            }
        } catch let e as ResultFileCheck.Problem {
            throw fail(e.message)
        }
        guard !runs.isEmpty else { throw fail("holds no runs") }
        if let m = problem(runs) { throw fail(m) }
        return runs
    }

    /// Results given as a list: repeats of a point numbered in file order.
    static func repeatsNumbered(_ runs: [ScaleRun]) -> [ScaleRun] {
        var seen: [String: Int] = [:]
        return runs.map { r in
            var r = r
            let k = "\(r.result.settings.scheme.rawValue) \(r.sync) \(r.rcu) \(r.threads)"
            r.repeatIndex = seen[k, default: 0]
            seen[k] = r.repeatIndex + 1
            return r
        }
    }

    static func describe(_ i: Int, _ r: ScaleRun) -> String {
        "run \(i + 1) (sync=\(r.sync) rcu=\(r.rcu) threads=\(r.threads) repeat=\(r.repeatIndex))"
    }

    /// The first reason the runs cannot be compared, or nil.
    static func problem(_ runs: [ScaleRun]) -> String? {
        var points: [String: Int] = [:]
        var contents: [String: Int] = [:]
        for (i, r) in runs.enumerated() {
            let x = r.result
            if let m = ResultFileCheck.sanity(x) { return "\(describe(i, r)): \(m)" }
            guard x.verdict == Verdict.success else {
                return "\(describe(i, r)) ended \(x.verdict): only SUCCESS runs are compared (a failed run measured a broken model)"
            }
            guard r.threads == x.settings.threads, r.sync == x.settings.sync.rawValue, r.rcu == x.settings.rcu.rawValue else {
                return "\(describe(i, r)) disagrees with its own settings (sync=\(x.settings.sync.rawValue) rcu=\(x.settings.rcu.rawValue) threads=\(x.settings.threads))"
            }
            guard (0..<1000).contains(r.repeatIndex) else { return "\(describe(i, r)): repeat index out of 0...999" }
            let point = "\(x.settings.scheme.rawValue) \(r.sync) \(r.rcu) \(r.threads) \(r.repeatIndex)"
            if let j = points[point] { return "\(describe(i, r)) is the same point and repeat as run \(j + 1)" }
            points[point] = i
            let content = "\(x.settings.seed) \(x.totalCompleted) \(x.elapsedS) \(x.opsPerS)"
            if let j = contents[content] { return "\(describe(i, r)) is a copy of run \(j + 1) (same seed, counts and time)" }
            contents[content] = i
        }
        return nil
    }
}
