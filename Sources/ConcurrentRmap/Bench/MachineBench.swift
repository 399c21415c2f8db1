#if canImport(Glibc)
import Glibc
#endif

/// Benchmark hooks: single-purpose drivers of the kernel's internal
/// operations, for `stress bench` and the walk-cost sweep of `stress scale`.
///
/// Every function here runs on the calling thread, which must be registered
/// with RCU and pass a CPU made by `makeCPU` on this machine. Nothing here may
/// run concurrently with stress workers on the same machine, except
/// `benchListWalk`, which only reads. They return nanoseconds of the timed
/// part only; setup and cleanup (spawning, exiting, waiting for grace periods)
/// are left out. End with `teardown(cpu:)` as usual: it must report no leaks.

/// A group built for walking: one root process forked `members - 1` times
/// (fork without exec, so every child joins the root's anongroup), with
/// `pages` written pages that every member maps.
public struct BenchGroup: Sendable {
    public let root: UInt32
    public let members: Int
    /// Virtual page numbers of the shared pages.
    public let vpns: [UInt64]
}

/// What one walk of a benchmark does at each member mm.
public enum BenchWalkMode: Sendable {
    /// The rmap walk of migration: page pinned and locked, each mm's
    /// page-table lock taken (blocking), the PTE looked up, nothing changed.
    case rmapWalk
    /// Reclaim's aging walk: trylock of each ptl, clear the young bit.
    case reclaimAging
    /// The anongroup list traversal alone under the group's protection
    /// (RCU read side, rwlock read lock or mutex, per `MachineConfig.sync`),
    /// without page lock or page-table locks. Safe to run from several
    /// threads at once on one group.
    case listOnly
}

/// The benchmark hooks a specialized core provides (see `KernelMachine`);
/// `Machine` forwards its public bench methods here, so each timed loop
/// runs inside specialized code.
protocol MachineBenchDriver {
    func benchGroup(size: Int, pages: Int, cpu: CPU) -> BenchGroup?
    func benchFrame(_ g: BenchGroup, page: Int) -> UInt32
    func benchWalk(_ g: BenchGroup, page: Int, iterations: Int, mode: BenchWalkMode, cpu: CPU) -> (ns: UInt64, visited: Int)
    func benchMigrate(_ g: BenchGroup, page: Int, iterations: Int, cpu: CPU) -> UInt64
    func benchFirstTouch(faults: Int, cpu: CPU) -> (ns: UInt64, count: Int)
    func benchCOW(faults: Int, cpu: CPU) -> (ns: UInt64, count: Int)
    func benchForkExit(iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int)
    func benchMremap(iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int)
    // The scheme comparison's hooks (SchemeBench.swift).
    func benchForkTree(children: Int, depth: Int, exec: Bool, walkVisits: Int, cpu: CPU) -> BenchTree?
    func benchForkExitVMAs(vmas: Int, iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int)?
    func benchMremapShared(sharedPercent: Int, iterations: Int, cpu: CPU) -> BenchMremapFigure?
    func benchSwapShared(pages: Int, mremapChild: Bool, cpu: CPU) -> BenchSwapFigure?
    func benchMetadataBytes() -> (perVMA: Int, perMM: Int)
    // The historic workloads (HistoricWorkloads.swift).
    func benchAIM7(children: Int, pages: Int, cowPercent: Int, cpu: CPU) -> BenchAIM7Figure?
    func benchForkChain(generations: Int, pages: Int, sampleEvery: Int, cpu: CPU) -> [BenchChainSample]?
    func benchZygote(children: Int, vmas: Int, pages: Int, cpu: CPU) -> BenchZygoteFigure?
    func benchMetadata() -> BenchMetadata
    // The file workloads (FileWorkloads.swift).
    func benchLibraryWalk(processes: Int, walks: Int, cpu: CPU) -> BenchFileWalkFigure?
    func benchFileWindowsWalk(mappings: Int, walks: Int, cpu: CPU) -> BenchFileWalkFigure?
}

extension Machine {
    /// Builds a fork tree of `size` mms for walking: one process writes
    /// `pages` pages of its first VMA, then forks `size - 1` times (no exec,
    /// so every child shares the pages: one anongroup, or one anon_vma
    /// listing every child's copy of the VMA). Needs `maxProcesses >= size`
    /// and `pages <= vmaPages`. Nil when the machine is too small.
    public func benchGroup(size: Int, pages: Int, cpu: CPU) -> BenchGroup? { core.bench.benchGroup(size: size, pages: pages, cpu: cpu) }
    /// The frame of the group's shared page `page` (it changes on migration).
    public func benchFrame(_ g: BenchGroup, page: Int) -> UInt32 { core.bench.benchFrame(g, page: page) }
    /// Walks the rmap of shared page `page` `iterations` times; returns the
    /// total nanoseconds and the objects visited per walk (of the last walk).
    public func benchWalk(_ g: BenchGroup, page: Int, iterations: Int, mode: BenchWalkMode, cpu: CPU) -> (ns: UInt64, visited: Int) {
        core.bench.benchWalk(g, page: page, iterations: iterations, mode: mode, cpu: cpu)
    }
    /// Migrates shared page `page` `iterations` times (each migration walks
    /// twice and rewrites every member's PTE); returns total nanoseconds.
    public func benchMigrate(_ g: BenchGroup, page: Int, iterations: Int, cpu: CPU) -> UInt64 {
        core.bench.benchMigrate(g, page: page, iterations: iterations, cpu: cpu)
    }
    /// First-touch write faults over every page of freshly spawned processes
    /// until `faults` were taken; returns (ns, faults).
    public func benchFirstTouch(faults: Int, cpu: CPU) -> (ns: UInt64, count: Int) { core.bench.benchFirstTouch(faults: faults, cpu: cpu) }
    /// Copy-on-write faults of a forked child over every page; returns (ns, faults).
    public func benchCOW(faults: Int, cpu: CPU) -> (ns: UInt64, count: Int) { core.bench.benchCOW(faults: faults, cpu: cpu) }
    /// fork + exit of a child of a populated process; returns (ns, forks).
    public func benchForkExit(iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int) { core.bench.benchForkExit(iterations: iterations, cpu: cpu) }
    /// mremap of a populated, unshared VMA; returns (ns, calls).
    public func benchMremap(iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int) { core.bench.benchMremap(iterations: iterations, cpu: cpu) }
}

extension KernelMachine {
    // MARK: Building blocks

    /// Spawns a process and installs it; returns its mm, or 0 when out of
    /// slots (after one grace-period wait and retry).
    func benchSpawnMM(_ cpu: CPU) -> UInt32 {
        let k = kernel
        for attempt in 0..<2 {
            let mm = k.newProcessMM(cpu)
            if mm != 0 {
                if k.installProcess(mm, near: 0) >= 0 { return mm }
                k.mmPut(mm, cpu)
                return 0
            }
            if attempt == 0 { k.quiesce(cpu) }
        }
        return 0
    }

    /// A new process with every page of its VMAs written once.
    func benchPopulatedMM(_ cpu: CPU) -> UInt32 {
        let mm = benchSpawnMM(cpu)
        precondition(mm != 0, "bench machine out of process slots")
        for v in benchVPNs(mm) { _ = kernel.fault(mm, vpn: v, write: true, cpu) }
        return mm
    }

    /// Exits the process running `mm` (the table's reference is dropped, so
    /// the mm is torn down).
    func benchExit(_ mm: UInt32, _ cpu: CPU) {
        let k = kernel
        for s in 0..<config.maxProcesses where k.processes.entry(s).pointee.load(ordering: .acquiring) == mm {
            _ = k.exitProcess(slot: s, mm: mm, cpu)
            return
        }
    }

    /// Every page of every VMA of `mm`, in VMA order.
    func benchVPNs(_ mm: UInt32) -> [UInt64] {
        let k = kernel
        var out: [UInt64] = []
        for t in 0..<MachineConfig.maxVMAs where k.vmaHandle(mm, t) != 0 {
            let v = k.vmaHandle(mm, t)
            let first = k.vmaStart(v)
            for d in 0..<UInt64(k.vmaPages(v)) { out.append(first + d) }
        }
        return out
    }

    /// The frame mapped at `vpn` in `mm`, 0 if none.
    func benchFrameAt(_ mm: UInt32, _ vpn: UInt64) -> UInt32 {
        let k = kernel
        k.ptlLock(mm)
        defer { k.ptlUnlock(mm) }
        let i = k.pteIndex(mm, vpn)
        guard i >= 0 else { return 0 }
        let pte = k.pte(at: i)
        return pte.isPresent || pte.isMigration ? pte.target : 0
    }

    /// Forks the process of `parent` and returns the child's mm, or 0.
    /// Waits for a grace period once when out of mm slots.
    func benchFork(_ parent: UInt32, _ cpu: CPU) -> UInt32 {
        let k = kernel
        var r = k.fork(parent, cpu)
        if r.result == .outOfMemory { k.quiesce(cpu); r = k.fork(parent, cpu) }
        guard r.result == .ok else { return 0 }
        k.mmPut(r.child, cpu)  // the table keeps it
        return r.child
    }

    // MARK: Groups and walks

    /// Builds an anongroup of `size` mms: one process writes `pages` pages of
    /// its first VMA, then forks `size - 1` times. Needs `maxProcesses >= size`
    /// and `pages <= vmaPages`. Nil when the machine is too small.
    func benchGroup(size: Int, pages: Int, cpu: CPU) -> BenchGroup? {
        precondition(size >= 1 && pages >= 1)
        guard size <= config.maxProcesses, pages <= config.vmaPages else { return nil }
        let k = kernel
        let root = benchSpawnMM(cpu)
        guard root != 0 else { return nil }
        let vpns = Array(benchVPNs(root).prefix(pages))
        for v in vpns { guard k.fault(root, vpn: v, write: true, cpu) == .ok else { return nil } }
        for _ in 1..<max(size, 1) {
            guard benchFork(root, cpu) != 0 else { return nil }
        }
        return BenchGroup(root: root, members: size, vpns: vpns)
    }

    /// The frame of the group's shared page `page` (it changes on migration).
    func benchFrame(_ g: BenchGroup, page: Int) -> UInt32 {
        benchFrameAt(g.root, g.vpns[page])
    }

    /// Walks the rmap of shared page `page` `iterations` times; returns the
    /// total nanoseconds and the mms visited per walk (of the last walk).
    func benchWalk(_ g: BenchGroup, page: Int, iterations: Int, mode: BenchWalkMode, cpu: CPU) -> (ns: UInt64, visited: Int) {
        let k = kernel
        let f = benchFrame(g, page: page)
        precondition(f != 0, "bench group page \(page) is not mapped")
        var visited = 0
        switch mode {
        case .listOnly:
            let t0 = RealPlatform.now()
            for _ in 0..<iterations {
                visited = k.rmap.walk(k, frame: f, cpu: cpu) { _, _ in }
            }
            return (RealPlatform.now() - t0, visited)
        case .rmapWalk, .reclaimAging:
            let pinned = k.tryPin(f)  // kept out of precondition: -Ounchecked drops its argument
            precondition(pinned)
            k.lockPage(f)
            defer { k.unlockPage(f); k.put(f, cpu) }
            let trylock = mode == .reclaimAging
            let t0 = RealPlatform.now()
            if trylock {
                for _ in 0..<iterations {
                    visited = k.rmapWalk(f, trylock: true, cpu) { _, _, i in
                        let pte = k.pte(at: i)
                        guard pte.isPresent && pte.target == f else { return false }
                        if pte.isYoung { k.setPTE(at: i, pte.with(young: false)) }
                        return true
                    }.visited
                }
            } else {
                var found = 0
                for _ in 0..<iterations {
                    visited = k.rmapWalk(f, trylock: false, cpu) { _, _, i in
                        let pte = k.pte(at: i)
                        guard pte.isPresent && pte.target == f else { return false }
                        found &+= 1
                        return true
                    }.visited
                }
                if found != iterations * g.members {
                    k.report(.incompleteWalk, frame: f, cpu: cpu,
                             "bench walk found \(found) mappings in \(iterations) walks of \(g.members) mms")
                }
            }
            return (RealPlatform.now() - t0, visited)
        }
    }

    /// Migrates shared page `page` `iterations` times (each migration walks
    /// twice and rewrites every member's PTE); returns total nanoseconds.
    func benchMigrate(_ g: BenchGroup, page: Int, iterations: Int, cpu: CPU) -> UInt64 {
        let k = kernel
        var total: UInt64 = 0
        for _ in 0..<iterations {
            let target = k.allocFrame(cpu)
            precondition(target != 0, "bench machine out of frames")
            let t0 = RealPlatform.now()
            let f = benchFrame(g, page: page)
            let pinned = f != 0 && k.tryPin(f)  // kept out of precondition (see above)
            precondition(pinned)
            k.lockPage(f)
            k.migrateLocked(f, to: target, cpu)
            total += RealPlatform.now() - t0
        }
        return total
    }

    // MARK: Faults, fork, mremap

    /// First-touch write faults over every page of freshly spawned processes
    /// until `faults` were taken; returns (ns, faults).
    func benchFirstTouch(faults: Int, cpu: CPU) -> (ns: UInt64, count: Int) {
        let k = kernel
        var total: UInt64 = 0, n = 0
        while n < faults {
            let mm = benchSpawnMM(cpu)
            precondition(mm != 0, "bench machine out of process slots")
            let vpns = benchVPNs(mm)
            let t0 = RealPlatform.now()
            for v in vpns { _ = k.fault(mm, vpn: v, write: true, cpu) }
            total += RealPlatform.now() - t0
            n += vpns.count
            benchExit(mm, cpu)
        }
        return (total, n)
    }

    /// Copy-on-write faults: a parent writes every page, forks, and the child
    /// writes every page (each a COW copy). Only the child's faults are timed.
    func benchCOW(faults: Int, cpu: CPU) -> (ns: UInt64, count: Int) {
        let k = kernel
        let parent = benchPopulatedMM(cpu)
        let vpns = benchVPNs(parent)
        var total: UInt64 = 0, n = 0
        let copiesBefore = cpu.pointee.eventCount(.cowCopy)
        while n < faults {
            let child = benchFork(parent, cpu)
            precondition(child != 0, "bench fork failed")
            let t0 = RealPlatform.now()
            for v in vpns { _ = k.fault(child, vpn: v, write: true, cpu) }
            total += RealPlatform.now() - t0
            n += vpns.count
            benchExit(child, cpu)
        }
        benchExit(parent, cpu)
        let copies = Int(cpu.pointee.eventCount(.cowCopy) - copiesBefore)
        if copies != n {
            k.report(.content, cpu: cpu, "COW bench: \(copies) copies for \(n) faults")
        }
        return (total, n)
    }

    /// fork + exit of a child of a process with every page of its VMAs
    /// written; returns (ns, forks). Grace-period waits are not timed.
    func benchForkExit(iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int) {
        let k = kernel
        let parent = benchPopulatedMM(cpu)
        var total: UInt64 = 0
        for _ in 0..<iterations {
            var t0 = RealPlatform.now()
            var r = k.fork(parent, cpu)
            if r.result == .outOfMemory {
                k.quiesce(cpu)  // mm slots come back after a grace period
                t0 = RealPlatform.now()
                r = k.fork(parent, cpu)
            }
            precondition(r.result == .ok, "bench fork failed: \(r.result)")
            k.mmPut(r.child, cpu)  // our pin; the table keeps the child
            total += RealPlatform.now() - t0
            let t1 = RealPlatform.now()
            _ = k.exitProcess(slot: r.slot, mm: r.child, cpu)
            total += RealPlatform.now() - t1
        }
        benchExit(parent, cpu)
        return (total, iterations)
    }

    /// mremap of the first VMA (every page written, none shared) to a free
    /// position, `iterations` times; returns (ns, calls).
    func benchMremap(iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int) {
        let k = kernel
        let mm = benchPopulatedMM(cpu)
        var total: UInt64 = 0
        let movesBefore = cpu.pointee.eventCount(.mremapMove) + cpu.pointee.eventCount(.mremapKeep)
        for _ in 0..<iterations {
            let t0 = RealPlatform.now()
            k.mmapWrite(mm)
            let t = (0..<MachineConfig.maxVMAs).first { k.vmaHandle(mm, $0) != 0 }!
            let ok = k.mremapLocked(mm, vma: t, to: k.freeSlotStart(mm, cpu), cpu)
            k.mmapUnlock(mm)
            total += RealPlatform.now() - t0
            precondition(ok, "bench mremap failed")
        }
        let moves = Int(cpu.pointee.eventCount(.mremapMove) + cpu.pointee.eventCount(.mremapKeep) - movesBefore)
        if moves != iterations * config.vmaPages {
            k.report(.location, cpu: cpu, "mremap bench: \(moves) page moves for \(iterations) calls")
        }
        benchExit(mm, cpu)
        return (total, iterations)
    }

}

extension Machine {
    // MARK: Primitives

    /// `iterations` RCU read-side sections (lock + unlock), on a registered thread.
    public static func benchRCUReadSection(iterations: Int) -> UInt64 {
        let t0 = RealPlatform.now()
        for _ in 0..<iterations {
            RCU.readLock()
            RCU.readUnlock()
        }
        return RealPlatform.now() - t0
    }

    /// `iterations` pthread rwlock read lock + unlock pairs on one lock.
    public static func benchRWLockRead(iterations: Int) -> UInt64 {
        let locks = RWLockArray(count: 1)
        defer { locks.destroy() }
        let t0 = RealPlatform.now()
        for _ in 0..<iterations {
            locks.readLock(0)
            locks.unlock(0)
        }
        return RealPlatform.now() - t0
    }

    /// Convenience for a quick look: builds a group of `groupSize` mms on a
    /// fresh machine and returns ns per rmap walk of a shared page. Registers
    /// the calling thread with RCU for the duration (it must not be already).
    public static func benchWalk(groupSize: Int, iterations: Int, sync: ListSync = .rcu) throws -> Double {
        var c = MachineConfig()
        c.frames = 1024
        c.swapSlots = 64
        c.maxProcesses = groupSize + 4
        c.vmasPerProcess = 1
        c.sync = sync
        let m = try Machine(config: c)
        return RCU.withRegisteredThread {
            let cpu = m.makeCPU(id: 0, seed: 1)
            var ns = Double.nan
            if let g = m.benchGroup(size: groupSize, pages: 1, cpu: cpu) {
                ns = Double(m.benchWalk(g, page: 0, iterations: iterations, mode: .rmapWalk, cpu: cpu).ns) / Double(iterations)
            }
            m.releaseCPU(cpu)
            let closer = m.makeCPU(id: 1, seed: 1)
            _ = m.teardown(cpu: closer)
            m.releaseCPU(closer)
            return ns
        }
    }
}
