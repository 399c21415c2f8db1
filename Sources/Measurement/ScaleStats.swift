import ConcurrentRmap
import Foundation

/// Summary of repeated measurements of one figure.
public struct Spread: Sendable, Equatable, Codable {
    public var n: Int
    public var median: Double
    public var min: Double
    public var max: Double
    public var mean: Double
    /// Sample standard deviation (0 for one value).
    public var stddev: Double

    public init(_ values: [Double]) {
        let v = values.filter { $0.isFinite }.sorted()
        n = v.count
        guard !v.isEmpty else { median = .nan; min = .nan; max = .nan; mean = .nan; stddev = .nan; return }
        median = v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
        min = v.first!
        max = v.last!
        let m = v.reduce(0, +) / Double(v.count)
        mean = m
        var ss = 0.0
        for x in v { ss += (x - m) * (x - m) }
        stddev = v.count > 1 ? (ss / Double(v.count - 1)).squareRoot() : 0
    }

    /// Standard deviation as a percentage of the mean.
    public var stddevPercent: Double { mean != 0 ? stddev / abs(mean) * 100 : 0 }
    /// (max - min) / median as a percentage: the spread the reports quote.
    public var rangePercent: Double { median > 0 ? (max - min) / median * 100 : 0 }
}

/// Change from `base` to `new` in percent (+10 means 10% more).
public func percentChange(base: Double, new: Double) -> Double {
    guard base != 0, base.isFinite, new.isFinite else { return .nan }
    return (new - base) / abs(base) * 100
}

/// The points of a sweep grouped into series (one per sync choice, or per
/// sync/rcu pair when several RCU flavors ran) and thread counts.
public struct ScaleTable: Sendable {
    public struct SeriesKey: Hashable, Sendable, Comparable {
        public var sync: String
        public var rcu: String
        public init(sync: String, rcu: String) { self.sync = sync; self.rcu = rcu }
        public static func < (a: SeriesKey, b: SeriesKey) -> Bool {
            let order = ["rcu", "rwlock", "mutex"]
            let ia = order.firstIndex(of: a.sync) ?? 99, ib = order.firstIndex(of: b.sync) ?? 99
            if ia != ib { return ia < ib }
            if a.sync != b.sync { return a.sync < b.sync }
            return a.rcu < b.rcu
        }
    }

    public let runs: [ScaleRun]
    public let series: [SeriesKey]
    public let threads: [Int]
    public let multipleRCU: Bool

    public init(_ runs: [ScaleRun]) {
        self.runs = runs
        series = Set(runs.map { SeriesKey(sync: $0.sync, rcu: $0.rcu) }).sorted()
        threads = Set(runs.map(\.threads)).sorted()
        multipleRCU = Set(runs.map(\.rcu)).count > 1
    }

    public func name(_ k: SeriesKey) -> String { multipleRCU ? "\(k.sync)/\(k.rcu)" : k.sync }

    public func runs(_ k: SeriesKey, threads t: Int) -> [ScaleRun] {
        runs.filter { $0.sync == k.sync && $0.rcu == k.rcu && $0.threads == t }
    }

    public func values(_ k: SeriesKey, threads t: Int, _ metric: (ScaleRun) -> Double?) -> [Double] {
        runs(k, threads: t).compactMap(metric)
    }

    public func spread(_ k: SeriesKey, threads t: Int, _ metric: (ScaleRun) -> Double?) -> Spread? {
        let v = values(k, threads: t, metric)
        return v.isEmpty ? nil : Spread(v)
    }

    /// Operations that ran in any run, in OpKind order.
    public var operations: [String] {
        var names = Set<String>()
        for r in runs { for (k, v) in r.result.ops where v.completed > 0 { names.insert(k) } }
        let order = ScaleReport.opOrder
        return order.filter(names.contains) + names.subtracting(order).sorted()
    }

    /// The perfect-scaling line of a series: its median at the smallest
    /// thread count, divided by that count, times N.
    public func idealLine(_ k: SeriesKey, _ metric: (ScaleRun) -> Double?) -> [(threads: Int, value: Double)] {
        guard let t0 = threads.first(where: { !values(k, threads: $0, metric).isEmpty }),
              let base = spread(k, threads: t0, metric)?.median else { return [] }
        return threads.map { (threads: $0, value: base / Double(t0) * Double($0)) }
    }
}
