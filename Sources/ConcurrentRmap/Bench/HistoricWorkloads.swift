#if canImport(Glibc)
import Glibc
#endif

/// The workloads the rmap designs were argued over, as benchmark hooks for
/// `stress schemes` (same rules as MachineBench.swift: one thread, nothing
/// else on the machine, every process gone or left for `teardown`):
///
/// - AIM7 (Rik van Riel, 2010, the case for anon_vma_chain): one parent,
///   N children, each COW-writing most of an inherited range. Under the
///   2.6.7 anon_vma every child's private copy sits on the one anon_vma of
///   the whole family, so each of its walks scans all N+1 VMAs.
/// - The fork chain (Linux 3.19, the anon_vma reuse rule): each process
///   forks the next and exits. Without reuse every generation adds an
///   anon_vma that the chain keeps alive.
/// - The zygote (Android): one parent with many VMAs, many long-lived
///   children; what the rmap's metadata costs at rest.

/// Live rmap metadata of a machine at rest.
public struct BenchMetadata: Sendable, Equatable, Codable {
    /// Live contexts: anongroups or anon_vmas.
    public var contexts: Int
    /// Live list entries: mms on groups, VMAs on anon_vmas, or AVCs.
    public var links: Int
    /// The longest chain of one VMA (AVCs); 1 for the list schemes.
    public var maxChain: Int
    /// Live bytes, as the kernel's slabs would count them.
    public var bytes: Int
    public var liveMMs: Int
    public var liveVMAs: Int
}

/// The rmap walk of one kind of page: how many objects it visited and how
/// many of those mapped the page; `pages` is how many pages of the
/// workload are of this kind.
public struct BenchPageWalk: Sendable, Equatable, Codable {
    public var pages: Int
    public var visited: Int
    public var found: Int
    public var mapcount: Int
    public var wasted: Int { visited - found }
}

/// The AIM7 family after every child COW-wrote its share.
public struct BenchAIM7Figure: Sendable, Equatable {
    public var children: Int
    public var pages: Int
    /// Pages of the range each child wrote (copied on write).
    public var cowPages: Int
    /// A child's private copy; the parent's page every child copied (now
    /// the parent's alone); a page no child wrote (mapped by all).
    public var childCopy: BenchPageWalk
    public var parentOwn: BenchPageWalk
    public var shared: BenchPageWalk
    /// Walks over every category, ns per walk (migration's walk).
    public var nsPerWalk: Double
    public var metadata: BenchMetadata

    /// Objects visited per walk, averaged over every mapped page.
    public var visitsPerPage: Double { perPage { $0.visited } }
    public var wastedPerPage: Double { perPage { $0.wasted } }
    private func perPage(_ f: (BenchPageWalk) -> Int) -> Double {
        let all = [childCopy, parentOwn, shared]
        let n = all.reduce(0) { $0 + $1.pages }
        return n == 0 ? .nan : Double(all.reduce(0) { $0 + $1.pages * f($1) }) / Double(n)
    }
}

/// The fork chain at one generation.
public struct BenchChainSample: Sendable, Equatable, Codable {
    public var generation: Int
    public var metadata: BenchMetadata
    /// The walk of the newest process's own latest copy.
    public var visited: Int
    public var found: Int
}

/// The zygote and its children at rest.
public struct BenchZygoteFigure: Sendable, Equatable {
    public var children: Int
    public var vmas: Int
    public var metadata: BenchMetadata
    /// The same machine with the zygote alone (before any fork).
    public var zygoteOnly: BenchMetadata
    public var bytesPerChild: Double {
        children == 0 ? .nan : Double(metadata.bytes - zygoteOnly.bytes) / Double(children)
    }
}

extension Machine {
    /// AIM7: a parent writes `pages` pages (<= `vmaPages`) of its first
    /// VMA and forks `children` children (`maxProcesses` > children); each
    /// child writes the first `cowPercent`% of them. Nil when it does not fit.
    public func benchAIM7(children: Int, pages: Int, cowPercent: Int, cpu: CPU) -> BenchAIM7Figure? {
        core.bench.benchAIM7(children: children, pages: pages, cowPercent: cowPercent, cpu: cpu)
    }

    /// The fork chain: each process forks the next, which writes one page
    /// of the inherited range, and exits; `generations` times. Samples the
    /// metadata every `sampleEvery` generations (and at the last).
    public func benchForkChain(generations: Int, pages: Int, sampleEvery: Int, cpu: CPU) -> [BenchChainSample]? {
        core.bench.benchForkChain(generations: generations, pages: pages, sampleEvery: sampleEvery, cpu: cpu)
    }

    /// The zygote: a parent writes `pages` pages of each of `vmas` VMAs and
    /// forks `children` children that stay; each writes one page per VMA.
    public func benchZygote(children: Int, vmas: Int, pages: Int, cpu: CPU) -> BenchZygoteFigure? {
        core.bench.benchZygote(children: children, vmas: vmas, pages: pages, cpu: cpu)
    }

    /// The live rmap metadata now (call with the machine quiet).
    public func benchMetadata() -> BenchMetadata { core.bench.benchMetadata() }
}

extension KernelMachine {
    func benchMetadata() -> BenchMetadata {
        // The scheme counts its own objects (`RmapScheme.metadata`): live
        // contexts, links, the longest chain and their bytes in the kernel.
        let m = kernel.rmap.metadata(kernel)
        return BenchMetadata(contexts: m.contexts, links: m.links, maxChain: m.maxChain,
                             bytes: m.bytes, liveMMs: mmsInUse, liveVMAs: vmasInUse)
    }

    /// One walk of the page at (`mm`, `vpn`), counted; reports a walk that
    /// misses a mapping. Nil when nothing is mapped there.
    func benchWalkOnce(_ mm: UInt32, _ vpn: UInt64, pages: Int, _ cpu: CPU) -> BenchPageWalk? {
        let k = kernel
        let f = benchFrameAt(mm, vpn)
        guard f != 0, k.tryPin(f) else { return nil }
        k.lockPage(f)
        defer { k.unlockPage(f); k.put(f, cpu) }
        let r = k.rmapWalk(f, trylock: false, cpu) { _, _, i in
            let pte = k.pte(at: i)
            return (pte.isPresent || pte.isMigration) && pte.target == f
        }
        let mapcount = Int(k.frames[Int(f)].mapcount.load(ordering: .relaxed))
        if r.found != mapcount {
            k.report(.incompleteWalk, frame: f, mm: mm, vpn: vpn, cpu: cpu,
                     "bench walk found \(r.found) of \(mapcount) mappings (\(r.visited) objects visited)")
        }
        return BenchPageWalk(pages: pages, visited: r.visited, found: r.found, mapcount: mapcount)
    }

    /// Mean of several walks of one kind (rounded visits; all of a kind
    /// are alike, the mean guards against an odd one).
    private func benchMeanWalk(_ ws: [BenchPageWalk], pages: Int) -> BenchPageWalk {
        let n = max(ws.count, 1)
        func mean(_ f: (BenchPageWalk) -> Int) -> Int { Int((Double(ws.reduce(0) { $0 + f($1) }) / Double(n)).rounded()) }
        return BenchPageWalk(pages: pages, visited: mean(\.visited), found: mean(\.found), mapcount: mean(\.mapcount))
    }

    func benchAIM7(children n: Int, pages: Int, cowPercent: Int, cpu: CPU) -> BenchAIM7Figure? {
        guard n >= 1, n < config.maxProcesses, (1...config.vmaPages).contains(pages), (0...100).contains(cowPercent) else { return nil }
        let k = kernel
        let parent = benchSpawnMM(cpu)
        guard parent != 0 else { return nil }
        var kids: [(mm: UInt32, slot: Int)] = []
        defer {
            for c in kids { _ = k.exitProcess(slot: c.slot, mm: c.mm, cpu) }
            benchExit(parent, cpu)
        }
        let start = benchVMAs(parent)[0].start
        for d in 0..<UInt64(pages) { guard k.fault(parent, vpn: start + d, write: true, cpu) == .ok else { return nil } }
        let cow = pages * cowPercent / 100
        for _ in 0..<n {
            guard let c = benchForkSlot(parent, cpu) else { return nil }
            kids.append(c)
            for d in 0..<UInt64(cow) { guard k.fault(c.mm, vpn: start + d, write: true, cpu) == .ok else { return nil } }
        }
        // Walk a sample of children (first, middle, last) for each kind.
        let sample = Array(Set([0, n / 2, n - 1])).sorted().map { kids[$0] }
        let t0 = RealPlatform.now()
        var walks = 0
        var copies: [BenchPageWalk] = [], own: [BenchPageWalk] = [], shared: [BenchPageWalk] = []
        if cow > 0 {
            for c in sample {
                for d in [0, cow - 1] { if let w = benchWalkOnce(c.mm, start + UInt64(d), pages: n * cow, cpu) { copies.append(w); walks += 1 } }
            }
            if let w = benchWalkOnce(parent, start, pages: cow, cpu) { own.append(w); walks += 1 }
        }
        if cow < pages, let w = benchWalkOnce(parent, start + UInt64(cow), pages: pages - cow, cpu) { shared.append(w); walks += 1 }
        let ns = RealPlatform.now() - t0
        return BenchAIM7Figure(children: n, pages: pages, cowPages: cow,
                               childCopy: benchMeanWalk(copies, pages: cow > 0 ? n * cow : 0),
                               parentOwn: benchMeanWalk(own, pages: cow > 0 ? cow : 0),
                               shared: benchMeanWalk(shared, pages: pages - cow),
                               nsPerWalk: walks > 0 ? Double(ns) / Double(walks) : .nan,
                               metadata: benchMetadata())
    }

    func benchForkChain(generations g: Int, pages: Int, sampleEvery: Int, cpu: CPU) -> [BenchChainSample]? {
        guard g >= 1, sampleEvery >= 1, (1...config.vmaPages).contains(pages) else { return nil }
        let k = kernel
        var current = benchSpawnMM(cpu)
        guard current != 0 else { return nil }
        defer { benchExit(current, cpu) }
        let start = benchVMAs(current)[0].start
        for d in 0..<UInt64(pages) { guard k.fault(current, vpn: start + d, write: true, cpu) == .ok else { return nil } }
        var out: [BenchChainSample] = []
        for gen in 1...g {
            guard let c = benchForkSlot(current, cpu) else { return nil }
            let vpn = start + UInt64(gen % pages)
            guard k.fault(c.mm, vpn: vpn, write: true, cpu) == .ok else {
                _ = k.exitProcess(slot: c.slot, mm: c.mm, cpu)
                return nil
            }
            benchExit(current, cpu)
            current = c.mm
            if gen % sampleEvery == 0 || gen == g {
                // Retired objects wait for a grace period: count only live ones.
                k.quiesce(cpu)
                let w = benchWalkOnce(current, vpn, pages: 1, cpu)
                out.append(BenchChainSample(generation: gen, metadata: benchMetadata(), visited: w?.visited ?? 0, found: w?.found ?? 0))
            }
        }
        return out
    }

    func benchZygote(children n: Int, vmas: Int, pages: Int, cpu: CPU) -> BenchZygoteFigure? {
        guard n >= 1, n < config.maxProcesses, vmas >= config.vmasPerProcess, vmas <= MachineConfig.maxVMAs,
              (1...config.vmaPages).contains(pages) else { return nil }
        let k = kernel
        let zygote = benchSpawnMM(cpu)
        guard zygote != 0 else { return nil }
        var kids: [(mm: UInt32, slot: Int)] = []
        defer {
            for c in kids { _ = k.exitProcess(slot: c.slot, mm: c.mm, cpu) }
            benchExit(zygote, cpu)
        }
        k.mmapWrite(zygote)
        var ok = true
        while ok && k.vmaCount(zygote) < vmas {
            let s = k.freeSlotStart(zygote, cpu)
            let v = k.newVMA(zygote, start: s, pages: config.vmaPages, pgoff: s, ctx: 0, cpu)
            if v == 0 || !k.insertVMA(zygote, v) {
                if v != 0 { k.freeUnpublishedVMA(v, cpu) }
                ok = false
            }
        }
        k.mmapUnlock(zygote)
        guard ok else { return nil }
        let starts = benchVMAs(zygote).map(\.start)
        for s in starts {
            for d in 0..<UInt64(pages) { guard k.fault(zygote, vpn: s + d, write: true, cpu) == .ok else { return nil } }
        }
        k.quiesce(cpu)
        let alone = benchMetadata()
        for i in 0..<n {
            guard let c = benchForkSlot(zygote, cpu) else { return nil }
            kids.append(c)
            for s in starts { guard k.fault(c.mm, vpn: s + UInt64(i % pages), write: true, cpu) == .ok else { return nil } }
        }
        k.quiesce(cpu)
        return BenchZygoteFigure(children: n, vmas: vmas, metadata: benchMetadata(), zygoteOnly: alone)
    }
}
