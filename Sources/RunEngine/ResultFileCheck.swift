import Foundation

/// Reading result files back (compare inputs, --options-from): strictly.
/// A file the tool wrote decodes, re-encodes to the same keys and passes
/// the sanity checks; anything else is refused with one line naming the
/// key or the run, never silently half-read.
public enum ResultFileCheck {
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// Decodes a `T` from `data`: valid JSON without duplicate keys, every
    /// value of the right kind, and no key `T` does not know (a misspelt
    /// key would otherwise fall back to a default unseen).
    public static func decode<T: Codable>(_ type: T.Type, from data: Data) throws -> T {
        let tree: StrictJSON
        do { tree = try StrictJSON.parse(data) } catch let e as StrictJSON.ParseError { throw Problem(e.message) }
        let value: T
        do {
            value = try ResultFile.decoder().decode(T.self, from: data)
        } catch let e as DecodingError {
            throw Problem(describe(e, in: tree))
        }
        let back = try StrictJSON.parse(ResultFile.encoder().encode(value))
        if let k = unknownKey(tree, back, path: "") { throw Problem("unknown key '\(k)'") }
        return value
    }

    /// The first key of `orig` that re-encoding did not produce (a null
    /// value for an absent optional is fine).
    static func unknownKey(_ orig: StrictJSON, _ back: StrictJSON, path: String) -> String? {
        switch (orig, back) {
        case let (.object(kv), .object):
            for (k, v) in kv {
                let at = path.isEmpty ? k : path + "." + k
                guard let b = back[k] else {
                    if v == .null { continue }
                    return at
                }
                if let u = unknownKey(v, b, path: at) { return u }
            }
            return nil
        case let (.array(a), .array(b)):
            for (i, (x, y)) in zip(a, b).enumerated() {
                if let u = unknownKey(x, y, path: "\(path)[\(i)]") { return u }
            }
            return nil
        default:
            return nil
        }
    }

    /// A decoding error as one line in the file's own words: the key as
    /// written (snake_case), what was expected, what was found. No Swift
    /// type names.
    static func describe(_ e: DecodingError, in tree: StrictJSON) -> String {
        func path(_ p: [any CodingKey]) -> String {
            var s = ""
            for k in p {
                if let i = k.intValue { s += "[\(i)]" } else { s += (s.isEmpty ? "" : ".") + snake(k.stringValue) }
            }
            return s.isEmpty ? "the document" : "key '\(s)'"
        }
        func found(_ p: [any CodingKey]) -> String {
            var node: StrictJSON? = tree
            for k in p {
                if let i = k.intValue, case .array(let a)? = node { node = i < a.count ? a[i] : nil } else { node = node?[snake(k.stringValue)] ?? node?[k.stringValue] }
            }
            switch node {
            case .string(let s)?: return " (found '\(s.count > 40 ? String(s.prefix(40)) + "..." : s)')"
            case .number(let d)?: return " (found \(d))"
            case .bool(let b)?: return " (found \(b))"
            case .null?: return " (found null)"
            case .array?: return " (found a list)"
            case .object?: return " (found an object)"
            case nil: return ""
            }
        }
        switch e {
        case let .typeMismatch(t, c):
            return "\(path(c.codingPath)): expected \(kind(t))\(found(c.codingPath))"
        case let .valueNotFound(t, c):
            return "\(path(c.codingPath)): expected \(kind(t))\(found(c.codingPath))"
        case let .keyNotFound(k, c):
            return "\(path(c.codingPath + [k])) is missing"
        case let .dataCorrupted(c):
            return c.codingPath.isEmpty ? "not a document this build can read"
                : "\(path(c.codingPath)): not a value this build knows\(found(c.codingPath))"
        @unknown default:
            return "not a document this build can read"
        }
    }

    static func kind(_ t: Any.Type) -> String {
        switch t {
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is Double.Type, is Float.Type: "a number"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt64.Type, is UInt32.Type, is UInt.Type: "a whole number"
        default:
            String(describing: t).hasPrefix("Array") ? "a list"
                : String(describing: t).hasPrefix("Dictionary") ? "an object" : "an object or a value of another kind"
        }
    }

    static func snake(_ s: String) -> String {
        var out = ""
        for c in s {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }

    /// Bounds no real run reaches: a model operation takes tens of
    /// nanoseconds at the very least, so a worker completes fewer than 1e9
    /// a second, and a run lasts less than a year.
    public static let maxOpsPerSecondPerThread = 1e9
    public static let maxElapsedS = 3.2e7

    /// Why `r` cannot be a result the tool wrote, or nil. Checks what
    /// decoding cannot: finite, positive, bounded figures that agree with
    /// each other (a rate is its count over the elapsed time).
    public static func sanity(_ r: StressResult) -> String? {
        let known = [Verdict.success, Verdict.failure, Verdict.stall, Verdict.interrupted, Verdict.running]
        guard known.contains(r.verdict) else { return "verdict '\(r.verdict)' is not one the tool writes" }
        guard r.settings.threads >= 1 else { return "settings.threads is \(r.settings.threads)" }
        guard r.elapsedS.isFinite, r.elapsedS > 0, r.elapsedS <= maxElapsedS else {
            return "elapsed_s \(r.elapsedS) is not a duration (0...\(Int(maxElapsedS)) s)"
        }
        guard r.opsPerS.isFinite, r.opsPerS > 0 else { return "ops_per_s \(r.opsPerS) is not a positive number" }
        let most = maxOpsPerSecondPerThread * Double(r.settings.threads)
        guard r.opsPerS <= most else {
            return String(format: "ops_per_s %g is absurd for %d thread(s) (at most %g)", r.opsPerS, r.settings.threads, most)
        }
        let fromCount = Double(r.totalCompleted) / r.elapsedS
        guard abs(fromCount - r.opsPerS) <= max(1, 0.001 * r.opsPerS) else {
            return String(format: "ops_per_s %g disagrees with total_completed / elapsed_s = %g", r.opsPerS, fromCount)
        }
        var sum: UInt64 = 0
        for (name, op) in r.ops.sorted(by: { $0.key < $1.key }) {
            guard op.perS.isFinite, op.perS >= 0 else { return "ops.\(name).per_s \(op.perS) is not a rate" }
            let rate = Double(op.completed) / r.elapsedS
            guard abs(rate - op.perS) <= max(1, 0.001 * op.perS) else {
                return String(format: "ops.%@.per_s %g disagrees with its completed / elapsed_s = %g", name, op.perS, rate)
            }
            let (s, o) = sum.addingReportingOverflow(op.completed)
            guard !o else { return "ops.\(name).completed overflows the total" }
            sum = s
        }
        guard sum == r.totalCompleted else { return "total_completed \(r.totalCompleted) is not the sum of the operations' \(sum)" }
        return nil
    }
}
