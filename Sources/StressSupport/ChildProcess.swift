import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a child ended, as waitpid(2) reports it.
public enum ChildExit: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus s: Int32) {
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
        let low = s & 0x7f
        self = low == 0 ? .exited((s >> 8) & 0xff) : .signaled(low)
    }
}

/// The one way the tool starts a program: `stress run` children of
/// `selftest`, `scale`, `schemes` and campaigns, and `sbatch` / `squeue`.
/// Started with posix_spawn in its own process group (so a terminal's
/// Ctrl-C reaches only this process, which decides what the children get),
/// with default signal dispositions and nothing blocked (a child dies of
/// signals as a shell's would), stdin from /dev/null, stdout and stderr
/// into a file or discarded.
///
/// Hand-written rather than swift-subprocess: Subprocess's API is async
/// (every `run` is awaited in a task), while every caller here is a plain
/// thread that polls its children every 20 ms, so that it can also forward
/// the SIGINT/SIGTERM its own handler recorded (a flag, no task to cancel),
/// kill a child at its deadline (SIGTERM, a grace, SIGKILL) and keep
/// records between polls. Wrapping that in tasks would bring an executor
/// and async signal handling into a tool whose signal handling is a C
/// flag, for no gain. Foundation's `Process` was the other launcher; it
/// reaps on a thread of its own, which this poll-and-reap design replaces.
public struct ChildProcess: Sendable {
    public let pid: pid_t

    /// Where a child's standard output or error goes.
    public enum Output: Sendable {
        case discard
        /// Created or truncated.
        case file(String)
    }

    /// Starts `executable` (a path; no PATH search) with `arguments`.
    /// `error` nil: standard error goes where standard output goes.
    public static func spawn(executable: String, arguments: [String], output: Output = .discard,
                             error: Output? = nil) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        func open(_ o: Output, _ fd: Int32) {
            switch o {
            case .discard: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            case .file(let path): posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            }
        }
        open(output, 1)
        if let error { open(error, 2) } else { posix_spawn_file_actions_adddup2(&actions, 1, 2) }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Default dispositions for what the stress tool catches or ignores,
        // and nothing blocked: the child must die of signals as a shell's would.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT] { sigaddset(&defaults, s) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        var cArgv = argv + [nil]
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, &cArgv, environ)
        guard rc == 0 else { throw ToolError("cannot start '\(executable)': \(String(cString: strerror(rc)))") }
        return ChildProcess(pid: pid)
    }

    /// The exit, once the child has ended; nil while it runs. Reaps it.
    public func poll() -> ChildExit? {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return ChildExit(waitStatus: status) }
            if r == 0 { return nil }
            if errno == EINTR { continue }
            // ECHILD: reaped elsewhere; nothing more can be learnt.
            return .exited(255)
        }
    }

    /// Blocks until the child has ended; reaps it.
    public func wait() -> ChildExit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(255) }
        }
        return ChildExit(waitStatus: status)
    }

    public func signal(_ s: Int32) { kill(pid, s) }

    /// Runs a short tool to its end and returns its exit status (128 + N
    /// for a death by signal N, as a shell reports it) and what it wrote.
    /// Its output goes through temporary files, not pipes, so the two
    /// streams cannot fill and block each other.
    public static func capture(_ executable: String, _ arguments: [String]) throws
        -> (status: Int32, stdout: String, stderr: String) {
        let base = NSTemporaryDirectory() + "crmap-tool-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let out = base + ".out", err = base + ".err"
        defer { unlink(out); unlink(err) }
        let child = try spawn(executable: executable, arguments: arguments, output: .file(out), error: .file(err))
        let status: Int32 = switch child.wait() {
        case .exited(let c): c
        case .signaled(let s): 128 + s
        }
        func read(_ path: String) -> String {
            String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        }
        return (status, read(out), read(err))
    }

    /// The running executable (for re-running this binary as a child).
    public static var selfExecutable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }
}

/// "SIGSEGV" for 11, and so on, for results, records and reports.
public func signalName(_ n: Int32) -> String? {
    switch n {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGILL: "SIGILL"
    case SIGTRAP: "SIGTRAP"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGUSR1: "SIGUSR1"
    case SIGSEGV: "SIGSEGV"
    case SIGUSR2: "SIGUSR2"
    case SIGPIPE: "SIGPIPE"
    case SIGALRM: "SIGALRM"
    case SIGTERM: "SIGTERM"
    case SIGXCPU: "SIGXCPU"
    case SIGXFSZ: "SIGXFSZ"
    case SIGSYS: "SIGSYS"
    default: nil
    }
}
