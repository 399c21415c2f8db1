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
/// - Background reclaim (kswapd) works on the worker's memory node, only
///   while fewer than a quarter of the node's frames are free; allocations
///   that find none run direct reclaim.
/// - Locality: a worker spends `locality` percent of its process operations
///   (and of its migrations, which then move a page of that process, as
///   NUMA balancing does) on its own share of the process table: slots
///   congruent to its number modulo the worker count. A kernel's scheduler
///   keeps a task on its CPU the same way; without it every worker touches
///   every process's page tables, and two workers measure the traffic of
///   those cache lines between their cores instead of the rmap.
public struct Workload: Sendable {
    public let population: Int
    /// How far fork and exit let a share's process count stray from its
    /// target before they go idle.
    public let slack: Int
    public let familySize: Int
    public let processes: Int
    public let lowWatermark: Int
    public let workers: Int
    public let locality: UInt64
    /// The script of a named workload (`--workload`), nil for the mixes.
    let driver: ShapeDriver?

    public init(_ s: RunSettings) {
        processes = s.processes
        population = s.effectivePopulation
        slack = max(1, population / max(1, s.threads) / 8)
        familySize = s.familySize
        var c = s.machineConfig
        c.expectedCPUs = s.threads
        lowWatermark = c.frames / c.nodes / 4
        workers = s.threads
        locality = UInt64(s.locality)
        driver = s.workload.isScript ? ShapeDriver(shape: s.workload, workers: s.threads, processes: s.processes) : nil
    }

    /// Pins a process for an operation: one of the worker's own share most
    /// of the time, any process otherwise (or when its share is empty).
    @inline(__always)
    func pick(_ m: Machine, _ cpu: CPU) -> PinnedProcess? {
        let id = cpu.pointee.id
        if id < processes && cpu.pointee.random() % 100 < locality {
            let share = (processes - id + workers - 1) / workers
            if let p = m.pinProcess(near: id + workers * cpu.pointee.random(below: share), stride: workers, cpu: cpu) {
                return p
            }
        }
        return m.pinProcess(near: cpu.pointee.random(below: processes), cpu: cpu)
    }

    /// The population target of the share of slot `slot` (the population
    /// split evenly over the workers' shares of the table).
    @inline(__always) func target(ofShareOf slot: Int) -> Int {
        let shares = min(workers, processes)
        let share = slot % shares
        return population / shares + (share < population % shares ? 1 : 0)
    }

    /// Starts the population (on the calling thread, registered with RCU),
    /// each share of the table filled to its target. Returns how many
    /// processes run.
    public func populate(_ m: Machine, cpu: CPU) -> Int {
        // A script starts its own processes.
        if driver != nil { return 0 }
        let shares = min(workers, processes)
        for share in 0..<shares {
            var tries = 0
            while m.processCount(inShareOf: share) < target(ofShareOf: share) && tries < population * 4 {
                tries += 1
                if !m.spawnProcess(cpu: cpu, near: share, stride: shares) { break }
            }
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
            guard m.freeFramesBelow(lowWatermark, cpu: cpu) else { return false }
            return m.reclaim(cpu: cpu, scan: 64, target: 16) > 0
        case .migrate:
            cpu.pointee.note(op, mm: 0, arg: 0)
            if cpu.pointee.random() % 100 < locality, let p = pick(m, cpu) {
                defer { m.unpin(p, cpu: cpu) }
                return m.migrate(in: p, cpu: cpu)
            }
            return m.migrate(cpu: cpu)
        case .truncate:
            cpu.pointee.note(op, mm: 0, arg: 0)
            return m.truncate(cpu: cpu)
        default:
            break
        }
        if let driver {
            cpu.pointee.note(op, mm: 0, arg: 0)
            return driver.step(m, cpu)
        }
        guard let p = pick(m, cpu) else {
            // Everything exited (a population of 1 and an exit): start again.
            cpu.pointee.note(op, mm: 0, arg: 0)
            return m.spawnProcess(cpu: cpu, near: cpu.pointee.id % processes, stride: min(workers, processes))
        }
        defer { m.unpin(p, cpu: cpu) }
        switch op {
        case .fault:
            return m.fault(p, write: cpu.pointee.random() & 1 == 0, cpu: cpu)
        case .fork:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            // The child goes to its parent's share of the table, as a
            // scheduler starts a child on its parent's CPU.
            guard m.processCount(inShareOf: p.slot) < target(ofShareOf: p.slot) + slack else { return false }
            guard let child = m.fork(p, cpu: cpu, near: p.slot, stride: min(workers, processes)) else { return false }
            if familySize > 0 && m.familySize(child) > familySize {
                _ = m.execForkedChild(child, cpu: cpu)
            }
            m.unpin(child, cpu: cpu)
            return true
        case .exit:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            guard m.processCount(inShareOf: p.slot) > max(0, target(ofShareOf: p.slot) - slack), m.processCount > 1 else { return false }
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
        case .split:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            return m.split(p, cpu: cpu)
        case .mmapFile:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            return m.mmapFile(p, cpu: cpu)
        case .mmapShmem:
            cpu.pointee.note(op, mm: p.mm, arg: UInt32(p.slot))
            return m.mmapShmem(p, cpu: cpu)
        case .reclaim, .migrate, .truncate:
            return false
        }
    }
}
