import ConcurrentRmap
import Foundation
import RunEngine
import StressSupport

/// The file workloads as a section of `stress schemes`: the walk of one
/// file page against the number of mappings of the file, with i_mmap a
/// list or an interval tree, and the walk of a library page mapped by
/// every process. The single-thread hooks are in the model
/// (`Bench/FileWorkloads.swift`).
public struct FileBenchConfig: Sendable, Equatable {
    /// Mappings of the one 512-page file, each its own window (each a
    /// power of two: the windows tile the file).
    public var mappings: [Int] = [1, 4, 16, 64, 256]
    /// Processes mapping the library.
    public var libraryProcesses: [Int] = [16, 128]
    public var file = true

    public init() {}

    public static let mappingsRange = 1...512

    func validate() -> String? {
        for m in mappings where !FileBenchConfig.mappingsRange.contains(m) || 512 % m != 0 {
            return "file mappings must be powers of two in 1...512, so the windows tile the file (got \(m))"
        }
        for n in libraryProcesses where !(1...4000).contains(n) {
            return "library processes must be 1...4000 (got \(n))"
        }
        return nil
    }
}

// MARK: Records

/// One point of the walk against the number of mappings of one file.
public struct FileWalkRun: Codable, Sendable, Equatable {
    public var scheme: String
    public var iMmap: String
    /// "windows" (M mappings, each its own window) or "library" (M
    /// processes, each mapping the whole library).
    public var workload: String
    public var mappings: Int
    public var repeatIndex: Int
    public var walks: Int
    public var nsPerWalk: Double
    public var visitedPerWalk: Double
    public var foundPerWalk: Double
    public var verdict: String
}

public enum FileCompare {
    /// Walks per point: enough to time, scaled by --work.
    static func walks(_ c: SchemeConfig, mappings: Int) -> Int { max(64, Int(Double(200_000 / max(mappings, 1)) * c.work)) }

    static func benchmarks(_ c: SchemeConfig, into out: inout SchemeComparison, progress: ((String) -> Void)?) throws {
        guard c.file.file else { return }
        for r in 0..<c.repeats {
            let seed = c.seed &+ UInt64(r)
            for scheme in c.schemeOrder(r) {
                let s = scheme.rawValue
                for iMmap in IMmapKind.allCases {
                    for m in c.file.mappings {
                        var mc = SchemeCompare.benchConfig(scheme, c, processes: (m + 7) / 8 + 4, vmaPages: 512, vmasPerProcess: 1)
                        mc.iMmap = iMmap
                        mc = Machine.fileWindowsConfig(mc, mappings: m)
                        let n = walks(c, mappings: m)
                        let (fig, ok) = try SchemeCompare.onMachine(mc, seed: seed) { mach, cpu in
                            mach.benchFileWindowsWalk(mappings: m, walks: n, cpu: cpu)
                        }
                        guard let fig else { out.lost.append("\(s) \(iMmap.rawValue) \(m) file windows: the bench machine failed"); continue }
                        out.fileWalks.append(FileWalkRun(scheme: s, iMmap: iMmap.rawValue, workload: "windows", mappings: m, repeatIndex: r,
                                                         walks: fig.walks, nsPerWalk: fig.nsPerWalk, visitedPerWalk: fig.visitedPerWalk,
                                                         foundPerWalk: fig.foundPerWalk, verdict: SchemeCompare.verdict(ok)))
                        progress?(String(format: "file   %@ %@ windows=%-4d repeat=%d %8.0f ns/walk, %.2f visited, %.2f found  %@",
                                         s, iMmap.rawValue, m, r, fig.nsPerWalk, fig.visitedPerWalk, fig.foundPerWalk, SchemeCompare.verdict(ok)))
                    }
                    for n in c.file.libraryProcesses {
                        var mc = SchemeCompare.benchConfig(scheme, c, processes: n + 4, vmaPages: 16, vmasPerProcess: 1)
                        mc.iMmap = iMmap
                        mc.libraries = 1
                        let w = walks(c, mappings: n)
                        let (fig, ok) = try SchemeCompare.onMachine(mc, seed: seed) { mach, cpu in
                            mach.benchLibraryWalk(processes: n, walks: w, cpu: cpu)
                        }
                        guard let fig else { out.lost.append("\(s) \(iMmap.rawValue) library of \(n) processes: the bench machine failed"); continue }
                        out.fileWalks.append(FileWalkRun(scheme: s, iMmap: iMmap.rawValue, workload: "library", mappings: n, repeatIndex: r,
                                                         walks: fig.walks, nsPerWalk: fig.nsPerWalk, visitedPerWalk: fig.visitedPerWalk,
                                                         foundPerWalk: fig.foundPerWalk, verdict: SchemeCompare.verdict(ok)))
                        progress?(String(format: "file   %@ %@ library processes=%-4d repeat=%d %8.0f ns/walk, %.2f visited  %@",
                                         s, iMmap.rawValue, n, r, fig.nsPerWalk, fig.visitedPerWalk, SchemeCompare.verdict(ok)))
                    }
                }
            }
        }
    }
}

/// The file section of the scheme report and its CSV.
public enum FileReport {
    typealias R = SchemeReport

    static func csv(_ f: [FileWalkRun]) -> String {
        R.rows(["scheme", "i_mmap", "workload", "mappings", "repeat", "walks", "ns_per_walk", "visited_per_walk", "found_per_walk", "verdict"],
               f.map { [$0.scheme, $0.iMmap, $0.workload, "\($0.mappings)", "\($0.repeatIndex)", "\($0.walks)", R.d($0.nsPerWalk),
                        R.d($0.visitedPerWalk, 2), R.d($0.foundPerWalk, 2), $0.verdict] })
    }

    /// Medians over repeats of one (workload, mappings, i_mmap) cell, over
    /// every scheme (the file walk is the same code under each).
    static func median(_ f: [FileWalkRun], _ workload: String, _ m: Int, _ iMmap: String, scheme: String? = nil) -> (ns: Double, visited: Double, bad: Bool)? {
        let v = f.filter { $0.workload == workload && $0.mappings == m && $0.iMmap == iMmap && (scheme == nil || $0.scheme == scheme) }
        guard !v.isEmpty else { return nil }
        return (SchemeCompare.median(v.map(\.nsPerWalk)), SchemeCompare.median(v.map(\.visitedPerWalk)), v.contains { $0.verdict != Verdict.success })
    }

    static func html(_ o: SchemeComparison) -> String {
        let f = o.fileWalks
        guard !f.isEmpty else { return "" }
        var h = "<h2>8. File pages: walk cost against the number of mappings of one file</h2>\n"
        let windows = Set(f.filter { $0.workload == "windows" }.map(\.mappings)).sorted()
        if !windows.isEmpty {
            h += "<h3>Many mappings of one big shared file, each its own window</h3>\n"
            h += "<p class=\"note\">M shared mappings of one 512-page file, each mapping 512/M pages of it; a page lies in exactly one window. A walk of it (as reclaim and migration walk) reads i_mmap: the list (Linux 2.6.0) visits all M VMAs and finds one; the interval tree (prio_tree in 2.6.7, vma_interval_tree since 3.7; here a treap augmented by the largest end) reads about log M + 1 nodes. Medians over repeats and schemes (the file walk does not depend on the anonymous scheme).</p>\n<table>\n"
            h += R.header(["mappings", "list visited", "list ns/walk", "tree nodes read", "tree ns/walk", "list/tree time"])
            for m in windows {
                let l = median(f, "windows", m, "list"), t = median(f, "windows", m, "tree")
                h += "<tr>\(R.cell("\(m)", left: true))"
                h += R.cell(l.map { R.d($0.visited, 1) + ($0.bad ? " (FAILED)" : "") } ?? "–") + R.cell(l.map { R.d($0.ns) } ?? "–")
                h += R.cell(t.map { R.d($0.visited, 1) + ($0.bad ? " (FAILED)" : "") } ?? "–") + R.cell(t.map { R.d($0.ns) } ?? "–")
                h += R.cell(l != nil && t != nil && t!.ns > 0 ? R.d(l!.ns / t!.ns, 2) : "–")
                h += "</tr>\n"
            }
            h += "</table>\n"
        }
        let libs = Set(f.filter { $0.workload == "library" }.map(\.mappings)).sorted()
        if !libs.isEmpty {
            let schemes = R.orderedSchemes(o.meta.schemes)
            h += "<h3>Many processes mapping one library</h3>\n"
            h += "<p class=\"note\">N processes each map the library (its text and data as one private mapping) and read its first page; that page is walked. Every VMA covers it, so list and tree both visit all N: the tree saves nothing here. ns/walk per scheme (list, tree).</p>\n<table>\n"
            h += R.header(["processes"] + schemes.flatMap { ["\($0) list ns/walk", "\($0) tree ns/walk"] } + ["visited"])
            for n in libs {
                h += "<tr>\(R.cell("\(n)", left: true))"
                for sc in schemes {
                    for kind in ["list", "tree"] {
                        h += R.cell(median(f, "library", n, kind, scheme: sc).map { R.d($0.ns) + ($0.bad ? " (FAILED)" : "") } ?? "–")
                    }
                }
                h += R.cell(median(f, "library", n, "list").map { R.d($0.visited, 1) } ?? "–")
                h += "</tr>\n"
            }
            h += "</table>\n"
        }
        return h
    }

    /// The text table `stress schemes` prints at the end.
    public static func text(_ o: SchemeComparison) -> String {
        let f = o.fileWalks
        guard !f.isEmpty else { return "" }
        var t = "file walk cost against mappings of one file (medians over repeats and schemes)\n"
        t += "workload   mappings  list visited  list ns/walk  tree read  tree ns/walk\n"
        for w in ["windows", "library"] {
            for m in Set(f.filter { $0.workload == w }.map(\.mappings)).sorted() {
                let l = median(f, w, m, "list"), tr = median(f, w, m, "tree")
                t += String(format: "%-10@ %8d  %12.1f  %12.0f  %9.1f  %12.0f\n", w, m, l?.visited ?? .nan, l?.ns ?? .nan,
                            tr?.visited ?? .nan, tr?.ns ?? .nan)
            }
        }
        return t
    }
}
