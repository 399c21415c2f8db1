import ConcurrentRmap

/// Relative weights of the operations a worker draws from.
public struct OperationMix: Sendable, Equatable, CustomStringConvertible {
    public var weights: [Int]  // indexed by OpKind.rawValue

    /// The default: mostly faults, the rmap walks of reclaim and
    /// migration, and the VMA operations that race them; file mappings,
    /// truncates and shared anonymous mappings (shmem inodes, which
    /// forks then share) at small weights, as a machine sees them.
    public static let `default` = try! OperationMix(parsing: "fault=60,fork=4,exit=4,exec=1,mremap=6,munmap=2,split=2,reclaim=15,migrate=8,mmap-file=2,truncate=1,mmap-shmem=1")

    /// Mixes by name, accepted wherever a mix is: `default`; `walk-heavy`,
    /// where most operations are rmap walks (reclaim and migration) over
    /// pages that forks keep shared; `fault-only`, no rmap walk at all
    /// (the floor the walks are measured against); `truncate-storm`,
    /// truncates racing file faults, file mappings and reclaim (whose
    /// walks meet pages truncate is removing).
    public static let named: [(name: String, mix: String)] = [
        ("default", "fault=60,fork=4,exit=4,exec=1,mremap=6,munmap=2,split=2,reclaim=15,migrate=8,mmap-file=2,truncate=1,mmap-shmem=1"),
        ("walk-heavy", "fault=20,fork=6,exit=6,exec=1,mremap=2,munmap=1,split=1,reclaim=35,migrate=28"),
        ("fault-only", "fault=1"),
        ("truncate-storm", "fault=40,fork=2,exit=2,mmap-file=8,truncate=20,reclaim=25,migrate=3"),
    ]

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case malformed(String), unknownOperation(String), badWeight(String), duplicate(String), allZero
        public var description: String {
            switch self {
            case .malformed(let s): "malformed mix entry '\(s)': expected NAME=WEIGHT,... or a named mix (\(OperationMix.named.map(\.name).joined(separator: ", ")))"
            case .unknownOperation(let s): "unknown operation '\(s)' in mix (known: \(OpKind.allCases.map(\.name).joined(separator: ", ")); or a named mix: \(OperationMix.named.map(\.name).joined(separator: ", ")))"
            case .badWeight(let s): "bad weight in mix entry '\(s)': expected a whole number 0...1000000"
            case .duplicate(let s): "operation '\(s)' appears twice in mix"
            case .allZero: "mix has no operation with a positive weight"
            }
        }
    }

    /// Parses "fault=60,fork=4,...". Operations left out get weight 0.
    public init(parsing given: String) throws {
        let text = OperationMix.named.first { $0.name == given }?.mix ?? given
        weights = Array(repeating: 0, count: OpKind.allCases.count)
        var seen = Set<String>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = part.trimmingCharacters(in: " ")
            let kv = entry.split(separator: "=", omittingEmptySubsequences: false)
            guard kv.count == 2, !kv[0].isEmpty else { throw ParseError.malformed(String(entry)) }
            let name = String(kv[0])
            guard let op = OpKind(name: name) else { throw ParseError.unknownOperation(name) }
            guard let w = Int(kv[1]), w >= 0, w <= 1_000_000 else { throw ParseError.badWeight(String(entry)) }
            guard seen.insert(name).inserted else { throw ParseError.duplicate(name) }
            weights[op.rawValue] = w
        }
        guard weights.contains(where: { $0 > 0 }) else { throw ParseError.allZero }
    }

    public var description: String {
        OpKind.allCases.filter { weights[$0.rawValue] > 0 }.map { "\($0.name)=\(weights[$0.rawValue])" }.joined(separator: ",")
    }

    /// A 1024-entry table: ten random bits pick an operation in O(1).
    /// Every operation with a positive weight gets at least one entry, so
    /// a tiny weight is rounded up to 1/1024, never silently dropped.
    public func table() -> [OpKind] {
        let total = weights.reduce(0, +)
        var t: [OpKind] = []
        var acc = 0
        for op in OpKind.allCases {
            acc += weights[op.rawValue]
            var upto = Int((Double(acc) / Double(total) * 1024).rounded())
            if weights[op.rawValue] > 0 { upto = max(upto, t.count + 1) }
            while t.count < upto { t.append(op) }
        }
        while t.count > 1024 {  // rounding up overshot: trim the most common operation
            let most = OpKind.allCases.max { a, b in t.filter { $0 == a }.count < t.filter { $0 == b }.count }!
            t.remove(at: t.lastIndex(of: most)!)
        }
        while t.count < 1024 { t.append(t.last!) }
        return t
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}
