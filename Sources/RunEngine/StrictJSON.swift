import Foundation

/// A JSON document read strictly, for the files the tool reads back:
/// duplicate keys are an error (JSONDecoder keeps one of them silently),
/// nesting and size are bounded, and objects keep their key order so an
/// error can name the key the user wrote.
public indirect enum StrictJSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([StrictJSON])
    case object([(String, StrictJSON)])

    public static func == (a: StrictJSON, b: StrictJSON) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let message: String
        public var description: String { message }
    }

    /// Deeper than any file the tool writes; bounds the parser's recursion.
    public static let maxDepth = 32
    /// Larger than any result folder's runs.json of 100 repeats.
    public static let maxBytes = 256 << 20

    public static func parse(_ data: Data) throws -> StrictJSON {
        guard data.count <= maxBytes else { throw ParseError(message: "larger than \(maxBytes >> 20) MB") }
        var p = Parser(bytes: [UInt8](data))
        p.skipSpace()
        let v = try p.value(depth: 0, path: "")
        p.skipSpace()
        guard p.i == p.bytes.count else { throw p.fail("text after the end of the document") }
        return v
    }

    /// Nil when `data` is one well-formed JSON document with no duplicate
    /// key; else what is wrong and at which byte (syntax only).
    public static func problem(_ data: Data) -> String? {
        do { _ = try parse(data); return nil } catch { return "\(error)" }
    }

    public subscript(key: String) -> StrictJSON? {
        guard case .object(let kv) = self else { return nil }
        return kv.first { $0.0 == key }?.1
    }

    public var keys: [String] {
        guard case .object(let kv) = self else { return [] }
        return kv.map(\.0)
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ what: String) -> ParseError { ParseError(message: "not valid JSON at byte \(i): \(what)") }

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[i]) { i += 1 }
        }

        mutating func value(depth: Int, path: String) throws -> StrictJSON {
            guard depth < StrictJSON.maxDepth else { throw fail("nested deeper than \(StrictJSON.maxDepth) levels") }
            guard i < bytes.count else { throw fail("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var kv: [(String, StrictJSON)] = []
                var seen = Set<String>()
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(kv) }
                while true {
                    skipSpace()
                    if i < bytes.count, bytes[i] == UInt8(ascii: "}") { throw fail("trailing comma in an object") }
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let k = try string()
                    let at = path.isEmpty ? k : path + "." + k
                    guard seen.insert(k).inserted else { throw ParseError(message: "duplicate key \"\(k)\"\(path.isEmpty ? "" : " in '\(path)'")") }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key '\(at)'") }
                    i += 1
                    skipSpace()
                    kv.append((k, try value(depth: depth + 1, path: at)))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unexpected end") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(kv) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                var a: [StrictJSON] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    skipSpace()
                    if i < bytes.count, bytes[i] == UInt8(ascii: "]") { throw fail("trailing comma in a list") }
                    a.append(try value(depth: depth + 1, path: "\(path)[\(a.count)]"))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unexpected end") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default:
                return try number(path: path)
            }
        }

        mutating func literal(_ word: String, _ v: StrictJSON) throws -> StrictJSON {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { throw fail("unexpected character") }
            i += w.count
            return v
        }

        /// RFC 8259's number grammar (no leading zeros, '+', bare '.' or
        /// exponent without digits, which Double(_:) would take), finite.
        mutating func number(path: String) throws -> StrictJSON {
            let start = i
            func digits() -> Int {
                let from = i
                while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
                return i - from
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            let intStart = i
            let n = digits()
            guard n > 0 else { i = start; throw fail("expected a value") }
            if n > 1 && bytes[intStart] == UInt8(ascii: "0") { i = intStart; throw fail("a number must not start with 0") }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { throw fail("a number needs digits after '.'") }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw fail("a number needs digits in its exponent") }
            }
            guard let d = Double(String(decoding: bytes[start..<i], as: UTF8.self)), d.isFinite else {
                i = start
                throw fail("a number out of range\(path.isEmpty ? "" : " for '\(path)'")")
            }
            return .number(d)
        }

        mutating func string() throws -> String {
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    guard let s = String(bytes: out, encoding: .utf8) else { throw fail("a string that is not UTF-8") }
                    return s
                }
                if c < 0x20 { throw fail("a control character in a string") }
                if c == UInt8(ascii: "\\") {
                    guard i + 1 < bytes.count else { break }
                    let e = bytes[i + 1]
                    i += 2
                    switch e {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5c)
                    case UInt8(ascii: "/"): out.append(0x2f)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0c)
                    case UInt8(ascii: "n"): out.append(0x0a)
                    case UInt8(ascii: "r"): out.append(0x0d)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= bytes.count, let hex = String(bytes: bytes[i..<i + 4], encoding: .utf8),
                              let code = UInt32(hex, radix: 16) else { throw fail("a bad \\u escape") }
                        i += 4
                        // Surrogates are refused: the tool never writes them.
                        guard let scalar = Unicode.Scalar(code) else { throw fail("a surrogate \\u escape") }
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: throw fail("a bad escape")
                    }
                    continue
                }
                out.append(c)
                i += 1
            }
            throw fail("an unterminated string")
        }
    }
}
