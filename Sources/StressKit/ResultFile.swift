import Foundation

/// Result files: JSON with snake_case keys, written atomically (a
/// temporary file in the same folder, then rename), so a reader never sees
/// half a file and an earlier file of the same name survives until a new
/// result exists.
public enum ResultFile {
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

    public struct WriteError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks, before a run starts, that `path` can later be written: its
    /// folder exists and is writable and the path is not a folder. Creates
    /// nothing and truncates nothing.
    public static func checkWritable(_ path: String) throws {
        guard !path.isEmpty else { throw WriteError(description: "empty file name") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue {
            throw WriteError(description: "'\(path)' is a folder")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let folder = dir.isEmpty ? "." : dir
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw WriteError(description: "folder '\(folder)' does not exist")
        }
        guard access(folder, W_OK) == 0 else { throw WriteError(description: "folder '\(folder)' is not writable") }
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.\(base).\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw WriteError(description: "cannot write '\(tmp)'")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw WriteError(description: "cannot rename '\(tmp)' to '\(path)'")
        }
    }

    public static func write<T: Encodable>(_ value: T, to path: String) throws {
        try write(encoder().encode(value), to: path)
    }
}
