/// What a failure looks like with the run-specific numbers taken out:
/// the broken invariant, the operation that found it (or "audit"), and the
/// detail with frames, handles and addresses replaced by "#". The same bug
/// hit on different seeds, thread counts or flavors gets the same signature,
/// so a campaign's failures group into a few lines.
public struct FailureSignature: Hashable, Codable, Sendable, Comparable {
    public var kind: String
    /// The operation in progress, "audit" for a stop-the-world or teardown
    /// check, "worker" for a worker with no operation named.
    public var op: String
    public var detail: String

    public init(kind: String, op: String, detail: String) {
        self.kind = kind; self.op = op; self.detail = detail
    }

    /// The signature of a failing run: its first violation, else its first
    /// leak, else its verdict. Nil for a SUCCESS.
    public init?(result: CellResult) {
        if let v = result.violations.first {
            let op = v.op ?? ((v.cpu ?? -1) >= 0 ? "worker" : "audit")
            self.init(kind: v.kind ?? "unknown", op: op, detail: Self.normalise(v.detail ?? ""))
        } else if let leak = result.leaks.first {
            self.init(kind: "leak", op: "teardown", detail: Self.normalise(leak))
        } else if let verdict = result.verdict, verdict != "SUCCESS" {
            self.init(kind: verdict.lowercased(), op: "-", detail: "no violation recorded")
        } else {
            return nil
        }
    }

    public var text: String { "\(kind) in \(op): \(detail)" }

    /// Replaces every number (decimal, hex, with a fraction) by "#" and
    /// squeezes spaces: "page.mapping/index (1, 0x2bedf)" and
    /// "page.mapping/index (3, 0x2650e)" read the same.
    public static func normalise(_ detail: String) -> String {
        var out = ""
        var chars = Array(detail)[...]
        while let c = chars.first {
            if c.isASCII && c.isNumber {
                var rest = chars.dropFirst()
                var hex = false
                if c == "0", let x = rest.first, x == "x" || x == "X", rest.dropFirst().first?.isHexDigit == true {
                    rest = rest.dropFirst()
                    hex = true
                }
                while let d = rest.first, (hex ? d.isHexDigit : d.isASCII && d.isNumber) || d == "." || d == "_" {
                    rest = rest.dropFirst()
                }
                if !out.hasSuffix("#") { out.append("#") }
                chars = rest
            } else if c.isWhitespace {
                if !out.isEmpty && !out.hasSuffix(" ") { out.append(" ") }
                chars = chars.dropFirst()
            } else {
                out.append(c)
                chars = chars.dropFirst()
            }
        }
        return out.hasSuffix(" ") ? String(out.dropLast()) : out
    }

    public static func < (a: FailureSignature, b: FailureSignature) -> Bool { a.text < b.text }
}
