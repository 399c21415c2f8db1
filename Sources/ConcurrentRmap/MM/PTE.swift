/// A page-table entry: one 64-bit word, guarded by its mm's page-table lock.
///
///     bit 0 present     bits 32...63: frame number (present, migration)
///     bit 1 writable                   or swap slot (swap)
///     bit 2 young (accessed; reclaim's aging clears it)
///     bit 3 swap entry
///     bit 4 migration entry (the frame being migrated; counts in its mapcount)
///
/// Zero is "none". A present entry is writable only while its frame is
/// mapped exactly once (copy-on-write keeps that true).
@frozen public struct PTE: Equatable, Sendable {
    public var raw: UInt64

    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    public static let none = PTE(raw: 0)
    static let presentBit: UInt64 = 1 << 0
    static let writableBit: UInt64 = 1 << 1
    static let youngBit: UInt64 = 1 << 2
    static let swapBit: UInt64 = 1 << 3
    static let migrationBit: UInt64 = 1 << 4

    @inline(__always) static func present(_ frame: UInt32, writable: Bool, young: Bool = true) -> PTE {
        PTE(raw: UInt64(frame) << 32 | presentBit | (writable ? writableBit : 0) | (young ? youngBit : 0))
    }
    @inline(__always) static func swap(_ slot: UInt32) -> PTE { PTE(raw: UInt64(slot) << 32 | swapBit) }
    @inline(__always) static func migration(_ frame: UInt32, writable: Bool) -> PTE {
        PTE(raw: UInt64(frame) << 32 | migrationBit | (writable ? writableBit : 0))
    }

    @inline(__always) public var isNone: Bool { raw == 0 }
    @inline(__always) public var isPresent: Bool { raw & PTE.presentBit != 0 }
    @inline(__always) public var isWritable: Bool { raw & PTE.writableBit != 0 }
    @inline(__always) public var isYoung: Bool { raw & PTE.youngBit != 0 }
    @inline(__always) public var isSwap: Bool { raw & PTE.swapBit != 0 }
    @inline(__always) public var isMigration: Bool { raw & PTE.migrationBit != 0 }
    /// Frame number (present or migration entry) or swap slot (swap entry).
    @inline(__always) public var target: UInt32 { UInt32(truncatingIfNeeded: raw >> 32) }
    /// The frame this entry holds a mapcount on, or 0.
    @inline(__always) var mappedFrame: UInt32 { raw & (PTE.presentBit | PTE.migrationBit) != 0 ? target : 0 }

    @inline(__always) func with(young: Bool) -> PTE {
        PTE(raw: young ? raw | PTE.youngBit : raw & ~PTE.youngBit)
    }
    @inline(__always) func readOnly() -> PTE { PTE(raw: raw & ~PTE.writableBit) }
}
