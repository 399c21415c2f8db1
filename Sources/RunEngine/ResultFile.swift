import Foundation
import StressSupport

/// Result files: JSON with snake_case keys, written atomically
/// (`AtomicFile`), so a reader never sees half a file and an earlier file
/// of the same name survives until a new result exists.
public enum ResultFile {
    public static func encoder() -> JSONEncoder { SnakeCaseJSON.encoder() }
    public static func decoder() -> JSONDecoder { SnakeCaseJSON.decoder() }

    /// Writes `value` as a result file at `path`, atomically.
    public static func write<T: Encodable>(_ value: T, to path: String) throws {
        try AtomicFile.write(encoder().encode(value), to: path)
    }
}
