import Foundation
#if canImport(Glibc)
import Glibc
#endif
import StressShim

/// What a result records about the machine it ran on, and the CPUs this
/// process may use (workers and child processes are pinned by it).
public enum HostInfo {
    /// The CPUs this process may run on (its affinity mask at load, as
    /// `nproc` counts), not the CPUs online: in a container or under
    /// `taskset` the two differ, and thread counts, pinning and
    /// "oversubscribed" must follow the first.
    public static var cpuCount: Int { max(1, Int(crm_usable_cpu_count())) }

    /// The CPU that worker or process `slot` is pinned to: the usable CPUs
    /// in ascending order, round robin.
    public static func pinnedCPU(slot: Int) -> Int32 {
        crm_usable_cpu(Int32(slot % cpuCount))
    }

    public static var cpuModel: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    public static var kernel: String {
        var u = utsname()
        guard uname(&u) == 0 else { return "unknown" }
        func s<T>(_ v: T) -> String {
            withUnsafeBytes(of: v) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(s(u.sysname)) \(s(u.release)) \(s(u.version)) \(s(u.machine))"
    }

    /// How many cores this process really gets: the speedup of `threads`
    /// threads spinning at once over one thread alone (ideal: `threads`).
    /// On a shared machine it is often far lower than the CPU count, and
    /// every multi-thread figure should be read against it.
    public static func measuredParallelism(threads n: Int = 2, spins: Int = 40_000_000) -> Double {
        final class Sink: @unchecked Sendable { var v = [UInt64](repeating: 0, count: 64) }
        let sink = Sink()
        @inline(never) func spin(_ seed: UInt64) -> UInt64 {
            var x = seed
            for i in 0..<spins { x = (x &+ UInt64(truncatingIfNeeded: i)) ^ (x >> 3) }
            return x
        }
        func wall(_ k: Int) -> UInt64 {
            let t0 = monotonicNanos()
            var tids: [pthread_t] = []
            for i in 0..<k {
                tids.append(startThread { let r = spin(UInt64(i)); if r == 42 { sink.v[i] = r } })
            }
            for t in tids { joinThread(t) }
            return monotonicNanos() - t0
        }
        let one = min(wall(1), wall(1))
        let many = min(wall(n), wall(n))
        return Double(n) * Double(one) / Double(max(many, 1))
    }

    public static var buildConfiguration: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }
}
