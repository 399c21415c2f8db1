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

/// A `stress run` child: started with posix_spawn in its own process group
/// (so a terminal's Ctrl-C reaches only the runner, which decides what the
/// children get), stdin from /dev/null, stdout and stderr into a log file.
struct ChildProcess {
    let pid: pid_t

    static func spawn(executable: String, arguments: [String], log: String) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Default dispositions for what the runner catches or ignores, and
        // nothing blocked: the child must die of signals as a shell's would.
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
        guard rc == 0 else { throw CampaignError("cannot start '\(executable)': \(String(cString: strerror(rc)))") }
        return ChildProcess(pid: pid)
    }

    /// The exit, once the child has ended; nil while it runs. Reaps it.
    func poll() -> ChildExit? {
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
    func wait() -> ChildExit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(255) }
        }
        return ChildExit(waitStatus: status)
    }

    func signal(_ s: Int32) { kill(pid, s) }
}

/// "SIGSEGV" for 11, and so on, for records and reports.
public func signalName(_ n: Int32) -> String? {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
        SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
        SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
        SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
    ]
    return names[n]
}
