/// Per-thread memory that must not share a cache line with another
/// thread's: allocated on a 128-byte boundary (two lines, for the adjacent-
/// line prefetcher) and rounded up to a multiple of it. Without this, two
/// CPUs' counters that happen to sit side by side in the heap bounce one line
/// between the cores on every operation (false sharing).
public enum CacheLine {
    public static let size = 128

    public static func allocate<T: ~Copyable>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let bytes = (MemoryLayout<T>.stride * max(count, 1) + size - 1) / size * size
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: max(size, MemoryLayout<T>.alignment))
            .bindMemory(to: T.self, capacity: max(count, 1))
    }
}

/// An array whose elements each sit in a 128-byte block of their own (two
/// cache lines: adjacent-line prefetchers fetch a line's buddy, so a 64-byte
/// stride would still couple neighbours), for per-object fields that
/// different threads write: per-mm locks and user counts, group reference
/// counts, process-table entries. Element memory is uninitialized until the
/// owner initializes it; `deallocate` frees it without deinitializing.
struct PaddedArray<T: ~Copyable>: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int
    static var stride: Int {
        (MemoryLayout<T>.stride + CacheLine.size - 1) / CacheLine.size * CacheLine.size
    }

    init(count: Int) {
        self.count = count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * Self.stride, alignment: CacheLine.size)
    }

    func deallocate() { base.deallocate() }

    @inline(__always) subscript(i: Int) -> UnsafeMutablePointer<T> {
        (base + i * Self.stride).assumingMemoryBound(to: T.self)
    }

    /// The index of the element at `address`, if it is one of ours (traces
    /// name locks by it).
    func index(of address: UInt) -> Int? {
        let b = UInt(bitPattern: base)
        guard address >= b, address < b + UInt(count * Self.stride), (address - b) % UInt(Self.stride) == 0 else { return nil }
        return Int((address - b) / UInt(Self.stride))
    }
}
