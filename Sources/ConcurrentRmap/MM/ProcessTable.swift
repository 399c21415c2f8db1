import Synchronization

/// The process-table subsystem: which mm each process runs (published with
/// release), the count of processes per share of the table, and the fork
/// families.
///
/// Shares: slot modulo `config.shares` (one per expected CPU). The workload
/// keeps a worker to its own share and forks children into their parent's,
/// so each count is written by one CPU; a single count would be written by
/// every CPU on every fork and exit.
struct ProcessTable {
    /// Entries padded: pinProcess reads entries that fork, exit and exec of
    /// other processes write.
    let procs: PaddedArray<Atomic<UInt32>>
    let shareCounts: PaddedArray<Atomic<Int>>
    let families: Families
    let size: Int
    let shares: Int

    init(config: MachineConfig) {
        size = config.maxProcesses
        shares = config.shares
        procs = PaddedArray(count: size)
        for i in 0..<size { procs[i].initialize(to: Atomic(0)) }
        shareCounts = PaddedArray(count: shares)
        for i in 0..<shares { shareCounts[i].initialize(to: Atomic(0)) }
        families = Families(mmSlots: config.mmSlots)
    }

    func destroy() {
        for i in 0..<size { procs[i].deinitialize(count: 1) }
        procs.deallocate()
        for i in 0..<shares { shareCounts[i].deinitialize(count: 1) }
        shareCounts.deallocate()
        families.destroy()
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
        for s in 0..<size where procs[s].pointee.load(ordering: .relaxed) != 0 { per[s % shares] += 1 }
        for i in 0..<shares where per[i] != shareCounts[i].pointee.load(ordering: .relaxed) {
            report(Violation(kind: .lifetime, detail: "process-table share \(i) counts \(shareCounts[i].pointee.load(ordering: .relaxed)) processes, holds \(per[i])"))
        }
    }

    func leakCheck(_ report: (Violation) -> Void) {
        if count != 0 { report(Violation(kind: .leak, detail: "\(count) processes still in the table")) }
        if families.pool.inUse != 0 { report(Violation(kind: .leak, detail: "\(families.pool.inUse) fork families still allocated")) }
    }
}
