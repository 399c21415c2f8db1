/// Sorted, disjoint, half-open address ranges [lo, hi).
struct RangeSet: Equatable {
    private(set) var ranges: [(lo: UInt64, hi: UInt64)] = []

    static func == (a: RangeSet, b: RangeSet) -> Bool {
        a.ranges.count == b.ranges.count && zip(a.ranges, b.ranges).allSatisfy { $0.lo == $1.lo && $0.hi == $1.hi }
    }

    var isEmpty: Bool { ranges.isEmpty }
    var bytes: UInt64 { ranges.reduce(0) { $0 + ($1.hi - $1.lo) } }

    /// Index of the first range whose hi is > x.
    private func firstEndingAfter(_ x: UInt64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].hi > x { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    mutating func insert(_ lo: UInt64, _ hi: UInt64) {
        guard hi > lo else { return }
        // Ranges touching [lo, hi) merge with it.
        var i = firstEndingAfter(lo)
        if i > 0 && ranges[i - 1].hi == lo { i -= 1 }
        var j = i
        var nlo = lo, nhi = hi
        while j < ranges.count && ranges[j].lo <= hi {
            nlo = min(nlo, ranges[j].lo)
            nhi = max(nhi, ranges[j].hi)
            j += 1
        }
        ranges.replaceSubrange(i..<j, with: [(nlo, nhi)])
    }

    mutating func remove(_ lo: UInt64, _ hi: UInt64) {
        guard hi > lo else { return }
        let i = firstEndingAfter(lo)
        var j = i
        var keep: [(lo: UInt64, hi: UInt64)] = []
        while j < ranges.count && ranges[j].lo < hi {
            let r = ranges[j]
            if r.lo < lo { keep.append((r.lo, lo)) }
            if r.hi > hi { keep.append((hi, r.hi)) }
            j += 1
        }
        if j > i || !keep.isEmpty { ranges.replaceSubrange(i..<j, with: keep) }
    }

    /// Bytes of [lo, hi) inside the set.
    func overlap(_ lo: UInt64, _ hi: UInt64) -> UInt64 {
        var total: UInt64 = 0
        var i = firstEndingAfter(lo)
        while i < ranges.count && ranges[i].lo < hi {
            total += min(hi, ranges[i].hi) - max(lo, ranges[i].lo)
            i += 1
        }
        return total
    }

    mutating func formUnion(_ other: RangeSet) {
        for r in other.ranges { insert(r.lo, r.hi) }
    }

    mutating func subtract(_ other: RangeSet) {
        for r in other.ranges { remove(r.lo, r.hi) }
    }
}

let pageSize: UInt64 = 4096
@inline(__always) func pageDown(_ x: UInt64) -> UInt64 { x & ~(pageSize - 1) }
@inline(__always) func pageUp(_ x: UInt64) -> UInt64 { (x &+ pageSize - 1) & ~(pageSize - 1) }

/// Exact statistics of a trace's event history. Feed every record in order
/// with `add`, then call `finish`. Definitions are in docs/trace-format.md.
public struct TraceStats: Sendable, Equatable {
    public var events = 0
    /// Microseconds from the first to the last record.
    public var durationUS: UInt64 = 0
    /// Address spaces created (start, fork, exec).
    public var addressSpaces = 0
    public var forks = 0
    public var vforks = 0
    public var threads = 0
    public var execs = 0
    public var execsFromVfork = 0
    public var exits = 0
    public var mremapCalls = 0
    public var mremapMoved = 0
    public var mremapMovedInForkChildren = 0
    /// Bytes (whole pages) moved by mremap calls that moved, from ranges that
    /// a live fork relative could still share.
    public var mremapMovedSharedBytesBound: UInt64 = 0
    public var maxLiveGroupSize = 0
    public var longestForkChain = 0
    /// Group size (the child included) right after each fork -> forks.
    public var groupSizeAtFork: [Int: Int] = [:]
    /// Group size -> group-microseconds spent at that size.
    public var groupSizeTimeUS: [Int: UInt64] = [:]

    public init() {}
}

/// Computes `TraceStats` from records, streaming.
public struct TraceStatsBuilder {
    private enum Origin { case start, fork, exec }
    private struct MMInfo {
        var group: Int
        var origin: Origin
        var depth: Int
        var member = true
        var own: Int = 1
        var borrowed: Int = 0
        var mapped = RangeSet()   // private mappings and the heap
        var shared = RangeSet()   // of those, what a fork relative may share
        var dontfork = RangeSet()
        var wipe = RangeSet()
    }
    private struct Group { var size: Int; var since: UInt64 }

    public private(set) var stats = TraceStats()
    private var mms: [MMID: MMInfo] = [:]
    private var groups: [Int: Group] = [:]
    private var nextGroup = 0
    private var first: UInt64?
    private var last: UInt64 = 0

    public init() {}

    private mutating func resize(_ g: Int, by d: Int, at t: UInt64) {
        guard var gr = groups[g] else { return }
        if gr.size > 0 { stats.groupSizeTimeUS[gr.size, default: 0] += t - gr.since }
        gr.size += d
        gr.since = t
        if gr.size > stats.maxLiveGroupSize { stats.maxLiveGroupSize = gr.size }
        groups[g] = gr.size == 0 ? nil : gr
    }

    private mutating func newGroup(_ m: MMID, origin: Origin, at t: UInt64) {
        let g = nextGroup
        nextGroup += 1
        groups[g] = Group(size: 0, since: t)
        mms[m] = MMInfo(group: g, origin: origin, depth: 0)
        stats.addressSpaces += 1
        resize(g, by: 1, at: t)
    }

    private mutating func leaveGroup(_ m: MMID, at t: UInt64) {
        guard var i = mms[m], i.member else { return }
        i.member = false
        mms[m] = i
        resize(i.group, by: -1, at: t)
    }

    private mutating func dropIfUnused(_ m: MMID) {
        if let i = mms[m], i.own == 0, i.borrowed == 0 { mms[m] = nil }
    }

    private func groupSize(_ m: MMID) -> Int {
        guard let i = mms[m] else { return 0 }
        return groups[i.group]?.size ?? 0
    }

    public mutating func add(_ r: TraceRecord) {
        let t = r.time
        if first == nil { first = t }
        last = t
        stats.events += 1
        switch r.event {
        case .start(let m):
            newGroup(m, origin: .start, at: t)
        case .fork(let p, let c):
            stats.forks += 1
            guard let pi = mms[p] else { return }
            var copied = pi.mapped
            copied.subtract(pi.dontfork)
            var sharable = copied
            sharable.subtract(pi.wipe)
            var ci = MMInfo(group: pi.group, origin: .fork, depth: pi.depth + 1)
            ci.mapped = copied
            ci.shared = sharable
            mms[c] = ci
            mms[p]!.shared.formUnion(sharable)
            stats.addressSpaces += 1
            if ci.depth > stats.longestForkChain { stats.longestForkChain = ci.depth }
            if pi.member { resize(pi.group, by: 1, at: t) }
            stats.groupSizeAtFork[groupSize(c), default: 0] += 1
        case .vfork(let m):
            stats.vforks += 1
            mms[m]?.borrowed += 1
        case .vforkReturn(let m):
            mms[m]?.borrowed -= 1
            dropIfUnused(m)
        case .thread(let m):
            stats.threads += 1
            mms[m]?.own += 1
        case .threadExit(let m):
            mms[m]?.own -= 1
        case .exit(let m):
            stats.exits += 1
            leaveGroup(m, at: t)
            mms[m]?.own = 0
            dropIfUnused(m)
        case .exec(let o, let n, let fromVfork):
            stats.execs += 1
            if fromVfork {
                stats.execsFromVfork += 1
                mms[o]?.borrowed -= 1
            } else {
                leaveGroup(o, at: t)
                mms[o]?.own = 0
            }
            dropIfUnused(o)
            newGroup(n, origin: .exec, at: t)
        case .file:
            break
        case .mmap(let m, let a, let l, _, let shared, _, _):
            guard var i = mms[m] else { return }
            let lo = pageDown(a), hi = pageUp(a &+ l)
            i.shared.remove(lo, hi)
            i.dontfork.remove(lo, hi)
            i.wipe.remove(lo, hi)
            if shared { i.mapped.remove(lo, hi) } else { i.mapped.insert(lo, hi) }
            mms[m] = i
        case .munmap(let m, let a, let l):
            guard var i = mms[m] else { return }
            let lo = pageDown(a), hi = pageUp(a &+ l)
            i.mapped.remove(lo, hi)
            i.shared.remove(lo, hi)
            i.dontfork.remove(lo, hi)
            i.wipe.remove(lo, hi)
            mms[m] = i
        case .mremap(let m, let oa, let ol, let na, let nl, let flags):
            stats.mremapCalls += 1
            guard var i = mms[m] else { return }
            let olo = pageDown(oa), ohi = pageUp(oa &+ ol)
            if na != oa {
                stats.mremapMoved += 1
                if i.origin == .fork { stats.mremapMovedInForkChildren += 1 }
                let movedHi = olo + min(ohi - olo, pageUp(nl))
                if (groups[i.group]?.size ?? 0) >= 2 && i.member {
                    stats.mremapMovedSharedBytesBound += i.shared.overlap(olo, movedHi)
                }
                if flags.contains(.dontUnmap) {
                    i.shared.remove(olo, ohi)
                } else {
                    for s in [\MMInfo.mapped, \.shared, \.dontfork, \.wipe] { i[keyPath: s].remove(olo, ohi) }
                }
                let nlo = pageDown(na), nhi = pageUp(na &+ nl)
                for s in [\MMInfo.shared, \.dontfork, \.wipe] { i[keyPath: s].remove(nlo, nhi) }
                i.mapped.insert(nlo, nhi)
            } else {
                let nhi = pageUp(oa &+ nl)
                if nhi < ohi {
                    for s in [\MMInfo.mapped, \.shared, \.dontfork, \.wipe] { i[keyPath: s].remove(nhi, ohi) }
                } else if nhi > ohi {
                    i.mapped.insert(ohi, nhi)
                }
            }
            mms[m] = i
        case .brk(let m, let from, let to):
            guard var i = mms[m] else { return }
            let f = pageUp(from), e = pageUp(to)
            if e > f {
                i.mapped.insert(f, e)
            } else if e < f {
                for s in [\MMInfo.mapped, \.shared, \.dontfork, \.wipe] { i[keyPath: s].remove(e, f) }
            }
            mms[m] = i
        case .mprotect:
            break
        case .madvise(let m, let a, let l, let advice):
            guard var i = mms[m] else { return }
            let lo = pageDown(a), hi = pageUp(a &+ l)
            switch advice {
            case .dontneed, .free, .remove: i.shared.remove(lo, hi)
            case .dontfork: i.dontfork.insert(lo, hi)
            case .dofork: i.dontfork.remove(lo, hi)
            case .wipeonfork: i.wipe.insert(lo, hi)
            case .keeponfork: i.wipe.remove(lo, hi)
            }
            mms[m] = i
        }
    }

    /// The statistics, with the time live groups spent at their last size counted up to the last record.
    public func finish() -> TraceStats {
        var s = stats
        for g in groups.values where g.size > 0 {
            s.groupSizeTimeUS[g.size, default: 0] += last - g.since
        }
        s.durationUS = last - (first ?? last)
        return s
    }
}

extension TraceStats {
    /// JSON object with the documented field names, keys in a fixed order.
    public func json(importCounts: ImportCounts? = nil, source: String? = nil) -> String {
        func dict<V>(_ d: [Int: V]) -> String {
            "{" + d.keys.sorted().map { "\"\($0)\": \(d[$0]!)" }.joined(separator: ", ") + "}"
        }
        var fields: [(String, String)] = []
        if let source { fields.append(("source", jsonString(source))) }
        fields += [
            ("events", "\(events)"), ("duration_us", "\(durationUS)"), ("address_spaces", "\(addressSpaces)"),
            ("forks", "\(forks)"), ("vforks", "\(vforks)"), ("threads", "\(threads)"),
            ("execs", "\(execs)"), ("execs_from_vfork", "\(execsFromVfork)"), ("exits", "\(exits)"),
            ("mremap_calls", "\(mremapCalls)"), ("mremap_moved", "\(mremapMoved)"),
            ("mremap_moved_in_fork_children", "\(mremapMovedInForkChildren)"),
            ("mremap_moved_shared_bytes_bound", "\(mremapMovedSharedBytesBound)"),
            ("max_live_group_size", "\(maxLiveGroupSize)"), ("longest_fork_chain", "\(longestForkChain)"),
            ("group_size_at_fork", dict(groupSizeAtFork)), ("group_size_time_us", dict(groupSizeTimeUS)),
        ]
        if let c = importCounts {
            func names(_ d: [String: Int]) -> String {
                "{" + d.keys.sorted().map { "\(jsonString($0)): \(d[$0]!)" }.joined(separator: ", ") + "}"
            }
            fields.append(("import", "{\"lines\": \(c.lines), \"failed_calls\": \(names(c.failed)), \"restarted_calls\": \(names(c.restarted)), \"skipped_syscalls\": \(names(c.skipped)), \"other_madvise\": \(c.otherAdvice), \"no_result_calls\": \(names(c.noResult)), \"signals\": \(c.signals), \"tasks_seen_before_clone\": \(c.seenBeforeClone), \"detached_calls\": \(c.detached), \"unfinished_at_exit\": \(c.unfinishedAtExit), \"unfinished_at_end\": \(c.unfinishedAtEnd)}"))
        }
        return "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
    }

    /// Human-readable report, one figure per line.
    public var text: String {
        func dist<V>(_ d: [Int: V]) -> String {
            d.isEmpty ? "-" : d.keys.sorted().map { "\($0):\(d[$0]!)" }.joined(separator: " ")
        }
        return """
            events                          \(events) over \(formatDuration(durationUS)), \(addressSpaces) address spaces
            forks                           \(forks)
            vforks                          \(vforks)
            threads                         \(threads)
            execs                           \(execs) (\(execsFromVfork) from vfork children)
            exits                           \(exits)
            mremap_calls                    \(mremapCalls)
            mremap_moved                    \(mremapMoved)
            mremap_moved_in_fork_children   \(mremapMovedInForkChildren)
            mremap_moved_shared_bytes_bound \(mremapMovedSharedBytesBound)
            max_live_group_size             \(maxLiveGroupSize)
            longest_fork_chain              \(longestForkChain)
            group_size_at_fork              \(dist(groupSizeAtFork))
            group_size_time_us              \(dist(groupSizeTimeUS))

            """
    }
}

func formatDuration(_ us: UInt64) -> String {
    let s = Double(us) / 1e6
    return s < 10 ? "\(Double(Int(s * 1000)) / 1000) s" : "\(Double(Int(s * 10)) / 10) s"
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
