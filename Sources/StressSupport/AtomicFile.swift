import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file writes that a reader, a crash or a second writer never sees
/// half done, for every file the tool writes (run results and their
/// snapshots, scale and scheme folders, campaign cells, schedule files):
/// the bytes go to a temporary file in the same folder (so the rename stays
/// on one file system) whose name no other writer can take (O_EXCL, pid and
/// a random number), are synced, then renamed or linked into place, and the
/// folder is synced so that the new name survives a crash too. Results
/// folders live on cluster file systems where array tasks write side by
/// side.
public enum AtomicFile {
    /// Replaces (or creates) `path` with `data`.
    public static func write(_ data: Data, to path: String) throws {
        let tmp = try temporaryCopy(of: data, beside: path)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw ToolError("cannot write '\(path)': \(String(cString: strerror(e)))")
        }
        syncFolder(of: path)
    }

    /// Creates `path` with `data` only when nothing is there yet; returns
    /// false, writing nothing, when something is.
    public static func create(_ data: Data, at path: String) throws -> Bool {
        let tmp = try temporaryCopy(of: data, beside: path)
        defer { unlink(tmp) }
        if link(tmp, path) == 0 {
            syncFolder(of: path)
            return true
        }
        let e = errno
        if e == EEXIST { return false }
        throw ToolError("cannot create '\(path)': \(String(cString: strerror(e)))")
    }

    /// Hidden temporary files start with this, so a folder holding only
    /// them counts as empty.
    public static let temporaryPrefix = ".tmp-"

    /// Checks, before a run starts, that `path` can later be written: its
    /// folder exists and a file can be created in it, and the path is not
    /// a folder. Leaves nothing behind and truncates nothing.
    public static func checkWritable(_ path: String) throws {
        guard !path.isEmpty else { throw ToolError("empty file name") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue {
            throw ToolError("'\(path)' is a folder")
        }
        let folder = folder(of: path)
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw ToolError("folder '\(folder)' does not exist")
        }
        guard access(folder, W_OK) == 0 else { throw ToolError("folder '\(folder)' is not writable") }
        // access() says yes to root everywhere (/proc too): create and
        // remove the temporary file the write will use, to be sure.
        let probe = "\(folder)/\(temporaryPrefix)probe.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ToolError("cannot write in '\(folder)': \(String(cString: strerror(errno)))") }
        close(fd)
        unlink(probe)
    }

    private static func folder(of path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    private static func temporaryCopy(of data: Data, beside path: String) throws -> String {
        let dir = folder(of: path)
        let base = (path as NSString).lastPathComponent
        let tmp = "\(dir)/\(temporaryPrefix)\(base).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ToolError("cannot write in '\(dir)': \(String(cString: strerror(errno)))") }
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; failure = errno; return }
                off += n
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure != 0 {
            unlink(tmp)
            throw ToolError("cannot write '\(path)': \(String(cString: strerror(failure)))")
        }
        return tmp
    }

    /// Syncs the folder that holds `path`, so a name just renamed or linked
    /// into it is on disk. Best effort: a file system that cannot sync a
    /// folder (some network ones refuse) still has the file.
    private static func syncFolder(of path: String) {
        let fd = open(folder(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

/// `mkdir -p` that says why it failed (Foundation's error here is a bare
/// "NSCocoaErrorDomain error 512").
public func makeFolder(_ path: String) throws {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
        if isDir.boolValue { return }
        throw ToolError("cannot create folder '\(path)': a file is in the way")
    }
    let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
    if parent != path && !parent.isEmpty { try makeFolder(parent) }
    if mkdir(path, 0o755) != 0 && errno != EEXIST {
        throw ToolError("cannot create folder '\(path)': \(String(cString: strerror(errno)))")
    }
}
