import Foundation

/// A number with `digits` decimals, for reports and status lines.
public func fmt(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
/// A number with no decimals.
public func f0(_ v: Double) -> String { fmt(v, 0) }
/// A number with one decimal.
public func f1(_ v: Double) -> String { fmt(v, 1) }
