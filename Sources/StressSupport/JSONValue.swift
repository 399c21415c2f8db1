import Foundation

/// A parsed JSON document kept as a tree, so a plan is checked key by key
/// and each error names the key and value that are wrong (JSONDecoder's
/// errors name coding paths, not what the user wrote).
public enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let u = try? c.decode(UInt64.self) { self = .uint(u) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// A whole number, whichever way the decoder stored it.
    public var integer: Int64? {
        switch self {
        case .int(let i): i
        case .uint(let u): u <= UInt64(Int64.max) ? Int64(u) : nil
        case .double(let d): d.rounded() == d && abs(d) < 9e15 ? Int64(d) : nil
        default: nil
        }
    }

    public var unsigned: UInt64? {
        switch self {
        case .uint(let u): u
        case .int(let i): i >= 0 ? UInt64(i) : nil
        case .double(let d): d >= 0 && d.rounded() == d && d < 9e15 ? UInt64(d) : nil
        default: nil
        }
    }

    public var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .uint(let u): Double(u)
        case .double(let d): d
        default: nil
        }
    }

    /// The value as the user wrote it, for error messages.
    public var shown: String {
        switch self {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .int(let i): "\(i)"
        case .uint(let u): "\(u)"
        case .double(let d): "\(d)"
        case .string(let s): "'\(s)'"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

/// The JSON files the tool writes for people and scripts (results, scale
/// and scheme folders, campaign records and reports): snake_case keys,
/// pretty-printed with sorted keys, non-finite numbers as "inf", "-inf" and
/// "nan".
public enum SnakeCaseJSON {
    public static func encoder() -> JSONEncoder {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return enc
    }

    public static func decoder() -> JSONDecoder {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return dec
    }
}
