import Foundation

/// How sure a figure is, with methods whose names mean what they say.
///
/// The 95% interval of a median is the distribution-free one from order
/// statistics: with n repeats, the k-th smallest and k-th largest values
/// hold the true median with probability 1 - 2 P(Binomial(n, 1/2) < k).
/// Below 6 repeats no pair of order statistics reaches 95% (5 repeats give
/// 93.75%), so there is no interval to give, and the reports say so.
///
/// "A is faster than B" is an exact two-sided Mann–Whitney U test over the
/// repeats of each side: no assumption about the shape of the noise (a
/// shared machine's throughput is skewed), and with few repeats the
/// smallest reachable p is large, so the test cannot claim what the data
/// cannot show (2 against 2 repeats: p is at least 1/3).
public enum Confidence {
    public static let level = 0.95
    public static let alpha = 0.05

    /// log of n choose k.
    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// P(Binomial(n, 1/2) <= k).
    static func binomialCDF(_ n: Int, _ k: Int) -> Double {
        guard k >= 0 else { return 0 }
        var p = 0.0
        for i in 0...min(k, n) { p += exp(logChoose(n, i) - Double(n) * log(2)) }
        return min(p, 1)
    }

    /// The smallest number of repeats with a 95% order-statistic interval.
    public static let minRepeatsForInterval = 6

    /// The 95% interval of the median of `values` from order statistics,
    /// and its exact coverage (at least 95%); nil below 6 finite values.
    public static func medianInterval(_ values: [Double]) -> (lo: Double, hi: Double, coverage: Double)? {
        let v = values.filter(\.isFinite).sorted()
        let n = v.count
        guard n >= minRepeatsForInterval else { return nil }
        // The largest k (1-based) whose two tails together stay within alpha.
        var k = 0
        while k + 1 <= n / 2, 2 * binomialCDF(n, k) <= alpha { k += 1 }
        guard k >= 1 else { return nil }
        return (v[k - 1], v[n - k], 1 - 2 * binomialCDF(n, k - 1))
    }

    /// Exact two-sided p-value of the Mann–Whitney U test of `a` against
    /// `b`. U counts the pairs where a's value is larger (ties count one
    /// half); its null distribution is the no-ties one, exact for the
    /// continuous figures measured here.
    public static func mannWhitneyP(_ a: [Double], _ b: [Double]) -> Double? {
        let x = a.filter(\.isFinite), y = b.filter(\.isFinite)
        let n = x.count, m = y.count
        guard n >= 1, m >= 1, n + m <= 200 else { return nil }
        var u = 0.0
        for p in x { for q in y { u += p > q ? 1 : (p == q ? 0.5 : 0) } }
        // counts[k]: arrangements with U = k, by the recurrence
        // f(n, m, u) = f(n-1, m, u-m) + f(n, m-1, u), as doubles (no overflow).
        let maxU = n * m
        var f = [[Double]](repeating: [Double](repeating: 0, count: maxU + 1), count: m + 1)
        for j in 0...m { f[j][0] = 1 }  // n' = 0
        for _ in 1...n {
            var g = [[Double]](repeating: [Double](repeating: 0, count: maxU + 1), count: m + 1)
            // g[j] = f_{i}(j), built from f_{i-1}(j) shifted by j, and g[j-1].
            for j in 0...m {
                for k in 0...maxU {
                    var c = k >= j ? f[j][k - j] : 0
                    if j > 0 { c += g[j - 1][k] }
                    g[j][k] = c
                }
            }
            f = g
        }
        let counts = f[m]
        let total = counts.reduce(0, +)
        let mean = Double(maxU) / 2
        let d = abs(u - mean)
        var tail = 0.0
        for (k, c) in counts.enumerated() where abs(Double(k) - mean) >= d - 1e-9 { tail += c }
        return min(1, tail / total)
    }

    /// The smallest two-sided p-value reachable with n against m repeats.
    public static func smallestP(_ n: Int, _ m: Int) -> Double {
        guard n >= 1, m >= 1 else { return 1 }
        return min(1, 2 / exp(logChoose(n + m, n)))
    }

    /// The decision on "is A faster than B", from their repeats and the
    /// machine's own noise (percent; nil when not measured).
    public struct Decision: Sendable, Equatable {
        public enum Outcome: String, Sendable {
            case faster = "faster"
            case slower = "slower"
            case noDifference = "cannot be told apart"
            case withinNoise = "within the machine's noise"
            case tooFew = "too few repeats to tell"
        }
        public var ratio: Double
        public var p: Double?
        /// The two sides' ranges of repeats do not overlap; nil when a side
        /// has one repeat (its noise is not known).
        public var exceedsBothSides: Bool?
        public var outcome: Outcome
        /// Why, in words, for the reports.
        public var reason: String
    }

    public static func decide(_ a: [Double], over b: [Double], machineNoisePercent: Double? = nil) -> Decision? {
        let x = a.filter(\.isFinite), y = b.filter(\.isFinite)
        guard !x.isEmpty, !y.isEmpty else { return nil }
        let ma = Spread(x).median, mb = Spread(y).median
        guard mb > 0, ma.isFinite else { return nil }
        let ratio = ma / mb
        let separate: Bool? = x.count < 2 || y.count < 2 ? nil : (x.min()! > y.max()! || x.max()! < y.min()!)
        let change = abs(ratio - 1) * 100
        guard smallestP(x.count, y.count) < alpha else {
            return Decision(ratio: ratio, p: nil, exceedsBothSides: separate, outcome: .tooFew,
                            reason: String(format: "%d against %d repeats can never reach p < %.2f", x.count, y.count, alpha))
        }
        let p = mannWhitneyP(x, y) ?? 1
        if p >= alpha {
            return Decision(ratio: ratio, p: p, exceedsBothSides: separate, outcome: .noDifference,
                            reason: String(format: "p = %.3f", p))
        }
        if let noise = machineNoisePercent, change <= noise {
            return Decision(ratio: ratio, p: p, exceedsBothSides: separate, outcome: .withinNoise,
                            reason: String(format: "p = %.3f, but the %.1f%% difference is within the machine's %.1f%% noise", p, change, noise))
        }
        guard separate == true else {
            return Decision(ratio: ratio, p: p, exceedsBothSides: separate, outcome: .noDifference,
                            reason: String(format: "p = %.3f, but the ranges of the repeats overlap", p))
        }
        return Decision(ratio: ratio, p: p, exceedsBothSides: true, outcome: ratio > 1 ? .faster : .slower,
                        reason: String(format: "p = %.3f", p))
    }

    /// The warning for a machine that gave fewer free cores than threads
    /// asked: measured parallelism (speedup of 2 spinning threads over 1)
    /// well below min(2, threads). Nil when no warning is due.
    public static func starvedMachine(measuredParallelism: Double?, mostThreads: Int) -> String? {
        guard let p = measuredParallelism, p.isFinite, mostThreads >= 2 else { return nil }
        let wanted = 2.0
        guard p < 0.75 * wanted else { return nil }
        return String(format: "STARVED MACHINE: measured parallelism %.2fx for 2 spinning threads (2.00 = two free cores), runs asked for up to %d threads: multi-thread figures measure the machine's other load, not the design's scaling", p, mostThreads)
    }
}
