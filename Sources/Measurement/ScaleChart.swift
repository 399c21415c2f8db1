import Foundation
import StressSupport

/// A line chart drawn as inline SVG: an x axis at true spacing (linear, or
/// log 2 for counts spanning a wide range, so 1, 2, 4, 8 are where they
/// belong and perfect scaling draws straight), linear or log y axis, one
/// polyline per series, error bars offset per series so they do not hide
/// each other, and an optional shaded "oversubscribed" region. Reference
/// (perfect-scaling) lines do not set the y range and are clipped to the
/// plot; the legend sits below the plot, so a long entry is never cut off.
/// No scripts, no external resources.
///
/// Element classes (stable, the tests and check-report.sh count them):
/// `series` for a data polyline, `ideal` for a perfect-scaling polyline,
/// `errbar` for an error bar, `oversubscribed` for the shaded region.
public struct LineChart: Sendable {
    public struct Point: Sendable {
        public var x: Double
        public var y: Double
        public var lo: Double?
        public var hi: Double?
        public init(x: Double, y: Double, lo: Double? = nil, hi: Double? = nil) { self.x = x; self.y = y; self.lo = lo; self.hi = hi }
    }

    public struct Series: Sendable {
        public var name: String
        public var color: String
        public var points: [Point]
        /// A perfect-scaling (reference) line: dashed, no markers.
        public var ideal = false
        public var dashed = false
        public init(name: String, color: String, points: [Point], ideal: Bool = false, dashed: Bool = false) {
            self.name = name; self.color = color; self.points = points; self.ideal = ideal; self.dashed = dashed
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var xValues: [Double]
    public var series: [Series]
    public var logY = false
    /// x axis in log 2 (counts over a wide range); otherwise linear.
    public var logX = false
    /// x values above this are shaded as oversubscribed.
    public var oversubscribedAbove: Double?
    public var width = 760.0
    public var height = 380.0

    public init(title: String, xLabel: String, yLabel: String, xValues: [Double], series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.xValues = xValues.sorted(); self.series = series
    }

    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    /// Legend entries laid out in rows below the plot: (series index, x, row).
    func legendLayout(width w: Double, left: Double) -> (items: [(Int, Double, Int)], rows: Int) {
        var items: [(Int, Double, Int)] = []
        var x = left, row = 0
        for (i, se) in series.enumerated() {
            let need = 36 + 6.6 * Double(se.name.count) + 18
            if x > left, x + need > w - 8 { row += 1; x = left }
            items.append((i, x, row))
            x += need
        }
        return (items, series.isEmpty ? 0 : row + 1)
    }

    public func svg() -> String {
        let left = 78.0, right = 24.0, top = 36.0, axisBelow = 52.0, legendRow = 17.0
        let legend = legendLayout(width: width, left: left)
        let fullHeight = height + Double(legend.rows) * legendRow + 8
        let pw = width - left - right, ph = height - top - axisBelow
        // A stable id (FNV-1a of what tells charts apart): the same report
        // rebuilt from the same runs is the same text.
        var hash: UInt64 = 0xcbf29ce484222325
        for b in "\(title)|\(yLabel)|\(width)|\(height)".utf8 { hash = (hash ^ UInt64(b)) &* 0x100000001b3 }
        let clip = "plot-\(String(hash, radix: 16))"
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(f0(width))\" height=\"\(f0(fullHeight))\" viewBox=\"0 0 \(f0(width)) \(f0(fullHeight))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<defs><clipPath id=\"\(clip)\"><rect x=\"\(f1(left))\" y=\"\(f1(top))\" width=\"\(f1(pw))\" height=\"\(f1(ph))\"/></clipPath></defs>\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(f0(width))\" height=\"\(f0(fullHeight))\" fill=\"#fff\"/>\n"
        s += "<text x=\"\(f0(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(htmlEscaped(title))</text>\n"

        // y range: measured series only; a perfect-scaling line is clipped
        // rather than allowed to squash the measured lines together.
        var ys: [Double] = []
        for se in series where !se.ideal { for p in se.points { ys.append(p.y); if let l = p.lo { ys.append(l) }; if let h = p.hi { ys.append(h) } } }
        ys = ys.filter { $0.isFinite && (!logY || $0 > 0) }
        let (yMin, yMax, ticks) = logY ? LineChart.logTicks(ys) : LineChart.linearTicks(ys)
        func ypos(_ v: Double) -> Double {
            let t = logY ? (log10(max(v, yMin * 1e-3)) - log10(yMin)) / (log10(yMax) - log10(yMin)) : (v - yMin) / (yMax - yMin)
            return top + ph * (1 - t)
        }
        // Values over a 16x range or more go on a log 2 axis even when not
        // asked: at linear spacing the small ones would sit on each other.
        let positive = xValues.filter { $0.isFinite && $0 > 0 }
        let logX = self.logX || (positive.count == xValues.count && (positive.last ?? 0) >= 16 * (positive.first ?? 1))
        let xs = xValues.filter { $0.isFinite && (!logX || $0 > 0) }
        let x0 = xs.first ?? 0, x1 = xs.last ?? 1
        func xt(_ x: Double) -> Double { logX ? log2(max(x, 1e-9)) : x }
        func xpos(_ x: Double) -> Double {
            guard x1 > x0 else { return left + pw / 2 }
            return left + pw * (0.04 + 0.92 * (xt(x) - xt(x0)) / (xt(x1) - xt(x0)))
        }
        // Error bars and markers of series k are shifted by a few pixels
        // so that series with equal figures stay visible side by side.
        let measured = series.indices.filter { !series[$0].ideal }
        func offset(_ i: Int) -> Double {
            guard let k = measured.firstIndex(of: i), measured.count > 1 else { return 0 }
            return (Double(k) - Double(measured.count - 1) / 2) * 5
        }

        // oversubscribed region
        if let limit = oversubscribedAbove, let firstOver = xs.firstIndex(where: { $0 > limit }) {
            let xa: Double
            if firstOver == 0 { xa = left } else { xa = (xpos(xs[firstOver - 1]) + xpos(xs[firstOver])) / 2 }
            s += "<rect class=\"oversubscribed\" x=\"\(f1(xa))\" y=\"\(f1(top))\" width=\"\(f1(left + pw - xa))\" height=\"\(f1(ph))\" fill=\"#f2e6d9\"/>\n"
            s += "<text x=\"\(f1(xa + 4))\" y=\"\(f1(top + 14))\" fill=\"#8a5a2b\" font-size=\"11\">oversubscribed (&gt; \(f0(limit)) CPUs)</text>\n"
        }
        // grid and axes
        for t in ticks {
            let y = ypos(t)
            s += "<line x1=\"\(f1(left))\" y1=\"\(f1(y))\" x2=\"\(f1(left + pw))\" y2=\"\(f1(y))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f1(left - 6))\" y=\"\(f1(y + 4))\" text-anchor=\"end\">\(LineChart.short(t))</text>\n"
        }
        var lastLabel = -Double.infinity
        for x in xs {
            let px = xpos(x)
            s += "<line x1=\"\(f1(px))\" y1=\"\(f1(top + ph))\" x2=\"\(f1(px))\" y2=\"\(f1(top + ph + 5))\" stroke=\"#333\"/>\n"
            // At true spacing close values would print over each other.
            guard px - lastLabel >= 18 else { continue }
            lastLabel = px
            s += "<text x=\"\(f1(px))\" y=\"\(f1(top + ph + 18))\" text-anchor=\"middle\">\(LineChart.short(x))</text>\n"
        }
        s += "<line x1=\"\(f1(left))\" y1=\"\(f1(top))\" x2=\"\(f1(left))\" y2=\"\(f1(top + ph))\" stroke=\"#333\"/>\n"
        s += "<line x1=\"\(f1(left))\" y1=\"\(f1(top + ph))\" x2=\"\(f1(left + pw))\" y2=\"\(f1(top + ph))\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(f1(left + pw / 2))\" y=\"\(f1(top + ph + 38))\" text-anchor=\"middle\">\(htmlEscaped(xLabel))\(logX ? " (log 2 scale)" : "")</text>\n"
        s += "<text transform=\"translate(16,\(f1(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(htmlEscaped(yLabel))\(logY ? " (log scale)" : "")</text>\n"

        // series
        for (i, se) in series.enumerated() {
            let pts = se.points.filter { $0.y.isFinite && (!logY || $0.y > 0) && xs.contains($0.x) }
            guard !pts.isEmpty else { continue }
            let dx = offset(i)
            let coords = pts.map { "\(f1(xpos($0.x) + dx)),\(f1(ypos($0.y)))" }.joined(separator: " ")
            let dash = se.ideal ? " stroke-dasharray=\"6 4\" stroke-opacity=\"0.55\"" : (se.dashed ? " stroke-dasharray=\"3 3\"" : "")
            let clipped = se.ideal ? " clip-path=\"url(#\(clip))\"" : ""
            s += "<polyline class=\"\(se.ideal ? "ideal" : "series")\" data-name=\"\(htmlEscaped(se.name))\" points=\"\(coords)\" fill=\"none\" stroke=\"\(se.color)\" stroke-width=\"\(se.ideal ? 1.5 : 2)\"\(dash)\(clipped)/>\n"
            guard !se.ideal else { continue }
            for p in pts {
                let px = xpos(p.x) + dx
                if let lo = p.lo, let hi = p.hi, lo.isFinite, hi.isFinite {
                    let y0 = ypos(lo), y1 = ypos(hi)
                    s += "<path class=\"errbar\" d=\"M\(f1(px)) \(f1(y0))V\(f1(y1))M\(f1(px - 3)) \(f1(y0))h6M\(f1(px - 3)) \(f1(y1))h6\" stroke=\"\(se.color)\" fill=\"none\"/>\n"
                }
                s += "<circle cx=\"\(f1(px))\" cy=\"\(f1(ypos(p.y)))\" r=\"3\" fill=\"\(se.color)\"><title>\(htmlEscaped(se.name)): \(LineChart.short(p.x)) → \(LineChart.short(p.y))</title></circle>\n"
            }
        }
        // legend, below the plot and its axis label
        for (i, lx, row) in legend.items {
            let se = series[i]
            let ly = height + Double(row) * legendRow
            let dash = se.ideal ? " stroke-dasharray=\"6 4\" stroke-opacity=\"0.55\"" : (se.dashed ? " stroke-dasharray=\"3 3\"" : "")
            s += "<g class=\"legend\"><line x1=\"\(f1(lx))\" y1=\"\(f1(ly))\" x2=\"\(f1(lx + 22))\" y2=\"\(f1(ly))\" stroke=\"\(se.color)\" stroke-width=\"2\"\(dash)/>"
            s += "<text x=\"\(f1(lx + 28))\" y=\"\(f1(ly + 4))\" font-size=\"11\">\(htmlEscaped(se.name))</text></g>\n"
        }
        s += "</svg>\n"
        return s
    }

    // MARK: Axis helpers

    static func linearTicks(_ ys: [Double]) -> (Double, Double, [Double]) {
        let hi = max(ys.max() ?? 1, 0)
        guard hi > 0 else { return (0, 1, [0, 0.5, 1]) }
        let raw = hi * 1.08 / 5
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        let top = ceil(hi * 1.08 / step) * step
        return (0, top, stride(from: 0, through: top + step / 2, by: step).map { $0 })
    }

    static func logTicks(_ ys: [Double]) -> (Double, Double, [Double]) {
        let lo = ys.min() ?? 1, hi = ys.max() ?? 10
        let a = floor(log10(max(lo, 1e-12))), b = max(ceil(log10(max(hi, 1e-12))), a + 1)
        return (pow(10, a), pow(10, b), stride(from: a, through: b, by: 1).map { pow(10, $0) })
    }

    /// 1234567 -> "1.23M"; 0.5 -> "0.5".
    public static func short(_ v: Double) -> String {
        let a = abs(v)
        if a >= 1e9 { return trim(v / 1e9) + "G" }
        if a >= 1e6 { return trim(v / 1e6) + "M" }
        if a >= 1e4 { return trim(v / 1e3) + "k" }
        return trim(v)
    }

    private static func trim(_ v: Double) -> String {
        var s = String(format: abs(v) >= 100 ? "%.0f" : (abs(v) >= 10 ? "%.1f" : "%.2f"), v)
        if s.contains(".") { while s.hasSuffix("0") { s.removeLast() }; if s.hasSuffix(".") { s.removeLast() } }
        return s
    }
}

