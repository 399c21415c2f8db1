/// splitmix64 (Steele, Lea and Flood): the one seed-derivation function of
/// the project. Every stream that must follow from a seed (CPU streams,
/// scheduler choices, exploration seeds, bootstrap resampling) starts here.
public struct SplitMix64: Sendable {
    public static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= Self.gamma
        return Self.finalize(state)
    }

    /// A value in 0..<n (n >= 1).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// The output function: a bijective scramble of one word.
    @inline(__always) public static func finalize(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
