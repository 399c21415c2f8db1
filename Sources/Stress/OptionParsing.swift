import ArgumentParser
import ConcurrentRmap
import Foundation
import RunEngine

/// Strict parsing of option values: every number is checked against its
/// range (stated in the message and in --help), and only plain decimal
/// notation is accepted, so that "0x1p3", "inf", "nan", "+5" or an empty
/// value is a one-line usage error instead of a surprise.
enum Parse {
    /// "12", "0.5", "1e3", ".5": digits, an optional fraction, an optional
    /// exponent. No sign, no hex, no words.
    static func isDecimal(_ s: String) -> Bool {
        var it = Array(s.utf8)[...]
        func digits() -> Int {
            var n = 0
            while let c = it.first, c >= 48 && c <= 57 { it = it.dropFirst(); n += 1 }
            return n
        }
        var mantissa = digits()
        if it.first == UInt8(ascii: ".") { it = it.dropFirst(); mantissa += digits() }
        guard mantissa > 0 else { return false }
        if let c = it.first, c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            it = it.dropFirst()
            if let sign = it.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { it = it.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return it.isEmpty
    }

    static func whole<T: FixedWidthInteger>(_ text: String, _ option: String, _ range: ClosedRange<T>,
                                            _ what: String = "") throws -> T {
        let unit = what.isEmpty ? "" : " \(what)"
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw ValidationError("\(option) takes a whole number \(range.lowerBound)...\(range.upperBound)\(unit) (got '\(text)')")
        }
        guard let v = T(text), range.contains(v) else {
            throw ValidationError("\(option) must be \(range.lowerBound)...\(range.upperBound)\(unit) (got \(text))")
        }
        return v
    }

    /// A decimal number in `range`; `zero`, when given, names what 0 means
    /// and allows it besides the range.
    static func decimal(_ text: String, _ option: String, _ range: ClosedRange<Double>, unit: String = "",
                        zero: String? = nil) throws -> Double {
        let u = unit.isEmpty ? "" : " \(unit)"
        let allowed = (zero.map { "0 (\($0)) or " } ?? "") + "\(number(range.lowerBound))...\(number(range.upperBound))\(u)"
        guard isDecimal(text), let v = Double(text), v.isFinite else {
            throw ValidationError("\(option) takes a decimal number: \(allowed) (got '\(text)')")
        }
        if v == 0 && zero != nil { return 0 }
        guard range.contains(v) else { throw ValidationError("\(option) must be \(allowed) (got \(text))") }
        return v
    }

    static func seconds(_ text: String, _ option: String, _ range: ClosedRange<Double>, zero: String? = nil) throws -> Double {
        try decimal(text, option, range, unit: "seconds", zero: zero)
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ text: String, _ option: String, _ what: String) throws -> T
    where T.RawValue == String {
        if let v = T(rawValue: text) { return v }
        throw ValidationError("unknown \(what) '\(text)' for \(option) (known: \(T.allCases.map(\.rawValue).joined(separator: ", ")))")
    }

    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
    }

    /// Creates the output folder of `scale` or `schemes` (and its parents)
    /// and checks that it is writable, before any run starts.
    static func outputFolder(_ out: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("cannot create output folder '\(out)'")
        }
        guard access(out, W_OK) == 0 else { throw ValidationError("output folder '\(out)' is not writable") }
    }

    /// Options that take a list by being repeated.
    static let repeatable: Set<String> = ["--sbatch-option", "--trace"]

    /// Rejects an option given twice (ArgumentParser would silently keep
    /// the last one), except the repeatable ones. Looks at `--name` and
    /// `--name=value` forms, up to a `--`.
    static func rejectRepeated(_ args: [String]) throws {
        var seen = Set<String>()
        for a in args where a.hasPrefix("--") {
            if a == "--" { break }
            let name = String(a.split(separator: "=", maxSplits: 1)[0])
            if repeatable.contains(name) { continue }
            guard seen.insert(name).inserted else { throw ValidationError("option \(name) is given more than once") }
        }
    }
}

/// Range text for --help, from the one place the limits live.
enum Ranges {
    static func r<T>(_ x: ClosedRange<T>) -> String { "\(x.lowerBound)...\(x.upperBound)" }
    static func s(_ x: ClosedRange<Double>) -> String { "\(Parse.number(x.lowerBound))...\(Parse.number(x.upperBound))" }
}
