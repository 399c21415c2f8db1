import Synchronization

/// The process-table subsystem: which mm each process runs (published with
/// release), the count of processes per share of the table, and the fork
/// families.
///
/// Shares: slot modulo `config.shares` (one per expected CPU). The workload
/// keeps a worker to its own share and forks children into their parent's,
/// so each count is written by one CPU; a single count would be written by
/// every CPU on every fork and exit.
///
/// Layout: each share's entries are contiguous (slot s lives at block
/// `(s % shares) * perShare + s / shares`). Interleaved, a worker scanning
/// its own share (every `shares`-th slot) would step over the neighbours'
/// blocks, and the hardware's stream prefetcher would pull lines that the
/// other CPUs are writing.
struct ProcessTable {
    /// Entries padded: pinProcess reads entries that fork, exit and exec of
    /// other processes write. Reach them through `entry(_:)`.
    private let procs: PaddedArray<Atomic<UInt32>>
    private let perShare: Int
    let shareCounts: PaddedArray<Atomic<Int>>
    let families: Families
    let size: Int
    let shares: Int

    init(config: MachineConfig) {
        size = config.maxProcesses
        shares = config.shares
        perShare = (size + shares - 1) / shares
        procs = PaddedArray(count: perShare * shares)
        for i in 0..<perShare * shares { procs[i].initialize(to: Atomic(0)) }
        shareCounts = PaddedArray(count: shares)
        for i in 0..<shares { shareCounts[i].initialize(to: Atomic(0)) }
        families = Families(mmSlots: config.mmSlots, nodes: config.nodes)
    }

    func destroy() {
        for i in 0..<perShare * shares { procs[i].deinitialize(count: 1) }
        procs.deallocate()
        for i in 0..<shares { shareCounts[i].deinitialize(count: 1) }
        shareCounts.deallocate()
        families.destroy()
    }

    /// The entry of table slot `s` (0 <= s < size): the mm it runs, or 0.
    @inline(__always) func entry(_ s: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        shares == 1 ? procs[s] : procs[(s % shares) * perShare + s / shares]
    }

    /// Visits slots r, r + stride, r + 2*stride, ... below `size` (r = slot
    /// mod stride), starting at `slot` and wrapping, until `body` returns
    /// true; returns that slot. A scan of one share (stride == shares) walks
    /// its contiguous blocks in order, with no division per slot.
    @inline(__always)
    func scan(from slot: Int, stride: Int, _ body: (Int, UnsafeMutablePointer<Atomic<UInt32>>) -> Bool) -> Int? {
        let start = slot % size
        let r = start % stride
        let count = (size - r + stride - 1) / stride
        var i = start / stride
        for _ in 0..<count {
            let s = r + i * stride
            let e = stride == shares ? procs[r * perShare + i] : entry(s)
            if body(s, e) { return s }
            i += 1
            if i == count { i = 0 }
        }
        return nil
    }

    /// Processes in the table (a sum of the per-share counts).
    var count: Int {
        var n = 0
        for i in 0..<shares { n += shareCounts[i].pointee.load(ordering: .relaxed) }
        return n
    }

    /// The share counts against the table's entries.
    func audit(_ report: (Violation) -> Void) {
        var per = [Int](repeating: 0, count: shares)
        for s in 0..<size where entry(s).pointee.load(ordering: .relaxed) != 0 { per[s % shares] += 1 }
        for i in 0..<shares where per[i] != shareCounts[i].pointee.load(ordering: .relaxed) {
            report(Violation(kind: .lifetime, detail: "process-table share \(i) counts \(shareCounts[i].pointee.load(ordering: .relaxed)) processes, holds \(per[i])"))
        }
    }

    func leakCheck(_ report: (Violation) -> Void) {
        if count != 0 { report(Violation(kind: .leak, detail: "\(count) processes still in the table")) }
        if families.pool.inUse != 0 { report(Violation(kind: .leak, detail: "\(families.pool.inUse) fork families still allocated")) }
    }
}
