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
