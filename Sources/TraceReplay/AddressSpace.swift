import ConcurrentRmap

/// A modelled mapping of a trace mm: the trace's address range and the
/// model VMA that stands for it, `unit` trace pages per model page.
struct Region {
    /// The trace range it covers now, [start, end), page-aligned bytes.
    var start: UInt64
    var end: UInt64
    /// The trace address of model page 0 (moves shift it with the range).
    var base: UInt64
    /// Trace pages (4 KiB) per model page.
    var unit: UInt64
    var vma: UInt32
    var pages: Int32
    /// Percent of the model pages faulted when it was mapped (the same
    /// selection is what a child inherits, and what a move reads back).
    var faultPercent: UInt8
    var kind: Kind
    /// The heap: model pages below the break (faulted fully).
    var top: Int32 = 0
    /// The step that last mapped, moved or grew it (`--full-table evict`
    /// replaces the least recently used mapping).
    var lastUse: UInt32 = 0
    /// What backs it; a shared file mapping never holds anonymous pages.
    var backing: Backing = .anon
    /// Whether it holds (or held) an anonymous page: in Linux its VMA then
    /// has an anon_vma, born at its first anonymous page.
    var hasAnon = false

    enum Kind: UInt8 { case mapping, heap, stack }
    enum Backing: UInt8 { case anon, privateFile, sharedFile }

    /// Model pages [lo, hi) that the trace range [x, y) covers in this region.
    @inline(__always) func modelPages(_ x: UInt64, _ y: UInt64) -> (Int, Int) {
        let lo = max(x, start), hi = min(y, end)
        guard lo < hi else { return (0, 0) }
        let p0 = lo >= base ? (lo - base) / 4096 / unit : 0
        let p1 = hi > base ? ((hi - base + 4095) / 4096 + unit - 1) / unit : 0
        let n = UInt64(pages)
        return (Int(min(p0, n)), Int(min(p1, n)))
    }

    /// The model pages a region of `pages` faults at `percent`: page i when
    /// floor((i+1)p/100) > floor(ip/100), an even spread.
    @inline(__always) static func selected(_ i: Int, _ percent: Int) -> Bool {
        (i + 1) * percent / 100 > i * percent / 100
    }
}

/// One trace mm during the replay: its process in the model (pinned while
/// it lives) and its modelled mappings. Only the worker holding the mm
/// reads or writes it (the ready queue's mutex hands it over).
struct MMState {
    /// The next step to run.
    var cursor: UInt32 = Step.end
    var process: PinnedProcess?
    /// Created but not modelled (the process table or memory was full, or
    /// its parent was not modelled): its steps are skipped and counted.
    var failed = false
    var regions: [Region] = []
    /// Steps of this mm since its last migration (`--migrate-every`).
    var sinceMigration = 0
}

/// Page-aligned end of [a, a + length): lengths are bytes as the program
/// passed them (rounded up to pages), addresses below 2^57 (the reader checks).
@inline(__always) func pageEnd(_ a: UInt64, _ length: UInt64) -> UInt64 {
    a &+ ((length &+ 4095) & ~4095)
}
