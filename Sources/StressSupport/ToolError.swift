import Foundation

/// A problem the user must fix: an unusable file or folder, a program that
/// cannot be started, a bad plan, a batch system that refused a job. Always
/// one line, so the command line can print it as `stress: error: ...`.
/// (Campaigns call it `CampaignError`.)
public struct ToolError: Error, CustomStringConvertible, Equatable {
    public let message: String

    public init(_ message: String) {
        self.message = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }

    public var description: String { message }
}
