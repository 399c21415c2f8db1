import Foundation

/// A strict JSON syntax check (RFC 8259) for the files a campaign reads
/// back. Foundation's parsers take trailing commas and keep the last of two
/// equal keys, so a hand-edited or damaged plan, record or result would be
/// read as something it does not say. This refuses both, and anything else
/// that is not plain JSON, before any decoder sees the bytes.
public enum StrictJSON {
    /// Nesting deeper than this is refused rather than recursed into.
    public static let maxDepth = 64

    /// Nil when `data` is one well-formed JSON value with no duplicate key
    /// in any object; else what is wrong and at which byte.
    public static func problem<C: Collection>(_ data: C) -> String? where C.Element == UInt8 {
        var p = Parser(bytes: Array(data))
        do {
            p.skipSpace()
            try p.value(depth: 0)
            p.skipSpace()
            if p.i != p.bytes.count { throw p.error("text after the JSON value") }
            return nil
        } catch let e as Failure {
            return e.message
        } catch {
            return "\(error)"
        }
    }

    struct Failure: Error { var message: String }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func error(_ what: String) -> Failure {
            Failure(message: i >= bytes.count ? "\(what) (at the end, byte \(i))" : "\(what) at byte \(i)")
        }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpace() {
            while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
        }

        mutating func expect(_ c: UInt8, _ what: String) throws {
            guard peek == c else { throw error(what) }
            i += 1
        }

        mutating func value(depth: Int) throws {
            guard depth < StrictJSON.maxDepth else { throw error("nested deeper than \(StrictJSON.maxDepth) levels") }
            guard let c = peek else { throw error("a value is missing") }
            switch c {
            case UInt8(ascii: "{"): try object(depth: depth)
            case UInt8(ascii: "["): try array(depth: depth)
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            default: throw error("unexpected character '\(printable(c))'")
            }
        }

        mutating func literal(_ word: String) throws {
            for b in word.utf8 {
                guard peek == b else { throw error("not a JSON value (expected \(word))") }
                i += 1
            }
        }

        mutating func object(depth: Int) throws {
            i += 1
            var keys = Set<[UInt8]>()
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else {
                    throw error(peek == UInt8(ascii: "}") ? "trailing comma in an object" : "an object key must be a string")
                }
                let start = i
                let key = try string()
                guard keys.insert(key).inserted else {
                    i = start
                    throw error("duplicate key \"\(String(decoding: key, as: UTF8.self))\"")
                }
                skipSpace()
                try expect(UInt8(ascii: ":"), "':' expected after an object key")
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}' expected in an object")
                return
            }
        }

        mutating func array(depth: Int) throws {
            i += 1
            skipSpace()
            if peek == UInt8(ascii: "]") { i += 1; return }
            while true {
                skipSpace()
                if peek == UInt8(ascii: "]") { throw error("trailing comma in a list") }
                try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "]"), "',' or ']' expected in a list")
                return
            }
        }

        /// The string's raw bytes (escapes left as written: keys compare
        /// by spelling, and no two spellings of one key are legitimate).
        mutating func string() throws -> [UInt8] {
            i += 1
            let start = i
            while let c = peek {
                switch c {
                case UInt8(ascii: "\""):
                    let s = Array(bytes[start..<i])
                    i += 1
                    return s
                case UInt8(ascii: "\\"):
                    i += 1
                    guard let e = peek else { throw error("unfinished escape") }
                    if e == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            i += 1
                            guard let h = peek, isHex(h) else { throw error("\\u needs four hex digits") }
                        }
                    } else if !"\"\\/bfnrt".utf8.contains(e) {
                        throw error("bad escape '\\\(printable(e))'")
                    }
                    i += 1
                case 0..<0x20:
                    throw error("control character in a string")
                default:
                    i += 1
                }
            }
            throw error("unterminated string")
        }

        mutating func number() throws {
            func digits() -> Int {
                var n = 0
                while let c = peek, c >= 0x30 && c <= 0x39 { i += 1; n += 1 }
                return n
            }
            if peek == UInt8(ascii: "-") { i += 1 }
            if peek == UInt8(ascii: "0") {
                i += 1
                if let c = peek, c >= 0x30 && c <= 0x39 { throw error("a number must not start with 0") }
            } else if digits() == 0 { throw error("a number needs digits") }
            if peek == UInt8(ascii: ".") {
                i += 1
                if digits() == 0 { throw error("a number needs digits after '.'") }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                i += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                if digits() == 0 { throw error("a number needs digits in its exponent") }
            }
        }

        func isHex(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
        }

        func printable(_ c: UInt8) -> String {
            c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : String(format: "\\x%02X", c)
        }
    }
}
