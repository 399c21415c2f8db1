import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads the files a campaign takes back (plans, records, results, stamps)
/// with a size limit, so that a plan named /dev/zero or a 10 GB "result"
/// is refused in one line instead of filling memory.
enum BoundedRead {
    enum Outcome {
        case data(Data)
        case missing
        case folder
        case tooLarge
        case unreadable(String)
    }

    /// A plan or a stamp: far below this.
    static let planLimit = 16 << 20
    /// A result with its samples and recent operations: far below this.
    static let resultLimit = 256 << 20

    static func read(_ path: String, limit: Int) -> Outcome {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { return errno == ENOENT ? .missing : .unreadable(String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR { return .folder }
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return .unreadable("not a regular file") }
        if st.st_size > limit { return .tooLarge }
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .unreadable(String(cString: strerror(errno)))
            }
            if n == 0 { return .data(out) }
            out.append(contentsOf: buf[0..<n])
            if out.count > limit { return .tooLarge }
        }
    }

    /// The bytes, or nil for any file that is missing or cannot be one of ours.
    static func data(_ path: String, limit: Int) -> Data? {
        if case .data(let d) = read(path, limit: limit) { return d }
        return nil
    }
}
