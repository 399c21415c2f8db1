import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file writes that a reader, a crash or a second writer never sees
/// half done: the bytes go to a temporary file in the same folder (so the
/// rename stays on one file system), are synced, then renamed or linked into
/// place. Results folders live on cluster file systems where array tasks
/// write side by side, so every campaign file is written this way.
enum AtomicFile {
    /// Replaces (or creates) `path` with `data`.
    static func write(_ data: Data, to path: String) throws {
        let tmp = try temporaryCopy(of: data, beside: path)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw CampaignError("cannot write '\(path)': \(String(cString: strerror(e)))")
        }
    }

    /// Creates `path` with `data` only when nothing is there yet; returns
    /// false, writing nothing, when something is.
    static func create(_ data: Data, at path: String) throws -> Bool {
        let tmp = try temporaryCopy(of: data, beside: path)
        defer { unlink(tmp) }
        if link(tmp, path) == 0 { return true }
        let e = errno
        if e == EEXIST { return false }
        throw CampaignError("cannot create '\(path)': \(String(cString: strerror(e)))")
    }

    /// Hidden temporary files start with this, so a folder holding only
    /// them counts as empty.
    static let temporaryPrefix = ".tmp-"

    private static func temporaryCopy(of data: Data, beside path: String) throws -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = "\(dir)/\(temporaryPrefix)\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CampaignError("cannot write in '\(dir)': \(String(cString: strerror(errno)))") }
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
            throw CampaignError("cannot write '\(path)': \(String(cString: strerror(failure)))")
        }
        return tmp
    }
}

/// `mkdir -p` that says why it failed (Foundation's error here is a bare
/// "NSCocoaErrorDomain error 512").
func makeFolder(_ path: String) throws {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
        if isDir.boolValue { return }
        throw CampaignError("cannot create folder '\(path)': a file is in the way")
    }
    let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
    if parent != path && !parent.isEmpty { try makeFolder(parent) }
    if mkdir(path, 0o755) != 0 && errno != EEXIST {
        throw CampaignError("cannot create folder '\(path)': \(String(cString: strerror(errno)))")
    }
}
