import Foundation

/// A campaign problem the user must fix: a bad plan, an unusable results
/// folder, a batch system that refused the job. Always one line, so the
/// command line can print it as `stress: error: ...` and exit 2.
public struct CampaignError: Error, CustomStringConvertible, Equatable {
    public let message: String

    public init(_ message: String) {
        self.message = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }

    public var description: String { message }
}
