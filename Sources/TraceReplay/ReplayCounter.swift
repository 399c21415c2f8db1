/// What a replay counts, per worker (plain integers, one writer each),
/// summed at the end. Names are snake_case in the result.
public enum ReplayCounter: Int, CaseIterable, Sendable {
    // Progress.
    case steps, events, stepsSkipped
    // Processes.
    case spawned, spawnedByVforkExec, spawnFailed, forks, forkFailed, execs, execFailed, exits, exitFailed, forkNs, exitNs
    // Mappings.
    case mmapModelled, mmapFile, mmapShared, mmapTableFull, mmapEvicted, mmapEmpty
    case munmapWhole, munmapPartial, munmapNotModelled
    case mremapMoves, mremapMoveFailed, mremapPartialMoves, mremapDontUnmap, mremapResized, mremapNotModelled
    case heapMapped, heapGrowths, heapShrinks, heapNotModelled
    case madviseDrops, madviseOther, madviseNotModelled
    case mprotects, mprotectMadeWritable
    // Generated page touches, and those that did not complete.
    case mapFaults, stackFaults, heapFaults, mprotectFaults, cowWrites, moveReads, touchFailed
    // The background thread.
    case backgroundReclaims, backgroundReclaimed, backgroundMigrations, workerMigrations
    // File mappings modelled: onto the inode of a file the trace names, onto
    // a spare inode (file not named); reads and private writes at mmap.
    case mmapFileNamed, mmapFileSpare, fileReads, fileWrites
    // A mapping's first anonymous page (where anon_vma_prepare makes its
    // anon_vma), by origin: a touch of anonymous memory, a write to a
    // private file mapping; and fork's copy for each child VMA of a parent
    // VMA that had one (anon_vma_fork).
    case anonVmaFirstTouch, anonVmaFileWrite, anonVmaFork
    // Shared anonymous mappings: modelled are counted as `mmapShared`
    // (each a shmem inode); those that found the shmem pool empty or the
    // table full; pages written at mmap.
    case mmapSharedFailed, shmemWrites

    /// snake_case: `mremap_moves`, `fork_ns`.
    public var name: String {
        var out = ""
        for c in String(describing: self) {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }
}

/// One worker's counters and its histogram of group sizes at fork.
final class WorkerCounters: @unchecked Sendable {
    var values = [Int](repeating: 0, count: ReplayCounter.allCases.count)
    /// Index: the child's fork family size (mms related by fork) just after
    /// the fork, up to `WorkerCounters.maxGroup` (the last bucket: larger).
    var groupSizeAtFork = [Int](repeating: 0, count: WorkerCounters.maxGroup + 1)
    static let maxGroup = 256

    @inline(__always) func add(_ c: ReplayCounter, _ n: Int = 1) { values[c.rawValue] &+= n }
    subscript(_ c: ReplayCounter) -> Int { values[c.rawValue] }
}
