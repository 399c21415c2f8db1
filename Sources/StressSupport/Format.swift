import Foundation

/// A number with no decimals, for reports and status lines.
public func f0(_ v: Double) -> String { String(format: "%.0f", v) }
/// A number with one decimal, for reports and status lines.
public func f1(_ v: Double) -> String { String(format: "%.1f", v) }
