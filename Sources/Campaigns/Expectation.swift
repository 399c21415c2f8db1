import ConcurrentRmap
import RunEngine

/// What a cell is expected to end as: a correct cell passes; a cell with a
/// planted bug fails with one of the violation classes that bug declares
/// (as selftest scores an injection). A campaign passes when every cell
/// meets its expectation, so a matrix of planted bugs passes when each one
/// is caught, and fails when one slips through or is caught as something
/// else.
public struct Expectation: Sendable, Equatable {
    public var injection: Injection

    public init(_ cell: CampaignCell) { injection = cell.injection }

    /// "SUCCESS", or "FAILURE (incomplete-walk|location)".
    public var text: String {
        injection == .none ? "SUCCESS" : "FAILURE (\(SelftestScore.expected(injection)))"
    }

    /// Nil when a cell in `state` with `result` meets the expectation; else
    /// why it does not, in one line.
    public func miss(state: String, result: CellResult?) -> String? {
        if injection == .none {
            if state == CellState.passed.rawValue { return nil }
            if state == CellState.failed.rawValue {
                return "a correct cell failed: \(result.flatMap(FailureSignature.init(result:))?.text ?? "no violation recorded")"
            }
            return "a correct cell ended \(state), not passed"
        }
        switch state {
        case CellState.passed.rawValue:
            return "the planted bug \(injection.rawValue) was not caught (the run passed)"
        case CellState.failed.rawValue:
            // The class that stopped the run: its first violation, a stall,
            // or a leak found at teardown.
            let kind = result?.violations.first?.kind ?? (result?.verdict == "STALL" ? ViolationKind.stall.rawValue : "leak")
            if SelftestScore.matches(injection, kind: kind) { return nil }
            return "the planted bug \(injection.rawValue) was caught as \(kind), not as \(SelftestScore.expected(injection))"
        default:
            return "a cell planting \(injection.rawValue) ended \(state), not failed with \(SelftestScore.expected(injection))"
        }
    }
}
