import ConcurrentRmap

/// The workload policy of a stress run: which process an operation acts
/// on, and the bounds that keep the run's shape still (the population of
/// processes, the size of fork families, kswapd's watermark). The model
/// (`Machine`) provides the operations; this decides when to call them.
///
/// Shape, and why it holds still:
/// - `population` processes are started before the workers run. fork and
///   exit are idle when they would move the count more than `slack` away
///   from it, so with equal weights the count hovers there instead of
///   drifting to the table's bounds.
/// - A fork whose family (mms related by fork without exec) already has
///   `familySize` members is followed at once by exec in the child, as a
///   shell's fork+exec: families, and with them rmap walk lengths, stay
///   bounded instead of growing for the whole run.
/// - Background reclaim (kswapd) works only while fewer than a quarter of
///   the frames are free; allocations that find none run direct reclaim.
public struct Workload: Sendable {
    public let population: Int
    public let slack: Int
    public let familySize: Int
    public let processes: Int
    public let lowWatermark: Int

    public init(_ s: RunSettings) {
        processes = s.processes
        population = s.effectivePopulation
        slack = max(1, population / 8)
        familySize = s.familySize
        lowWatermark = s.frames / 4
    }

    /// Starts the population (on the calling thread, registered with RCU).
    /// Returns how many processes run.
    public func populate(_ m: Machine, cpu: CPU) -> Int {
        var guardCount = 0
        while m.processCount < population && guardCount < population * 4 {
            guardCount += 1
            if !m.spawnProcess(cpu: cpu) { break }
        }
        return m.processCount
    }

    /// Runs one operation of kind `op`. False when it had nothing to act on
    /// (an idle attempt).
    @inline(__always)
    public func perform(_ op: OpKind, on m: Machine, cpu: CPU) -> Bool {
        switch op {
        case .reclaim:
            cpu.pointee.note(op, mm: 0, arg: 0)
            guard m.freeFrames < lowWatermark else { return false }
            return m.reclaim(cpu: cpu, scan: 64, target: 16) > 0
        case .migrate:
            cpu.pointee.note(op, mm: 0, arg: 0)
            return m.migrate(cpu: cpu)
        default:
            break
        }
        guard let p = m.pinProcess(near: cpu.pointee.random(below: processes), cpu: cpu) else {
            // Everything exited (a population of 1 and an exit): start again.
            cpu.pointee.note(op, mm: 0, arg: 0)
            return m.spawnProcess(cpu: cpu)
        }
        defer { m.unpin(p, cpu: cpu) }
        switch op {
        case .fault:
            return m.fault(p, write: cpu.pointee.random() & 1 == 0, cpu: cpu)
        case .fork:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            guard m.processCount < population + slack else { return false }
            guard let child = m.fork(p, cpu: cpu) else { return false }
            if familySize > 0 && m.familySize(child) > familySize {
                _ = m.execForkedChild(child, cpu: cpu)
            }
            m.unpin(child, cpu: cpu)
            return true
        case .exit:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            guard m.processCount > max(1, population - slack) else { return false }
            return m.exit(p, cpu: cpu)
        case .exec:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            return m.exec(p, cpu: cpu)
        case .mremap:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            return m.mremap(p, cpu: cpu)
        case .munmap:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            return m.munmap(p, cpu: cpu)
        case .reclaim, .migrate:
            return false
        }
    }
}
