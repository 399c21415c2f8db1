#if canImport(Glibc)
import Glibc
#endif

/// Benchmark hooks for comparing the rmap schemes (`stress schemes`): fork
/// trees of a given shape (with exec in part of them), fork+exit against
/// the number of VMAs, mremap against the share of pages still shared
/// after fork, and swap-in from a sharer through the swap cache.
///
/// Same rules as MachineBench.swift: single-threaded on an RCU-registered
/// thread with a CPU of this machine, nothing else running on it; only the
/// named part is timed; every process the hook starts has exited when it
/// returns (or is left for `teardown`, which must report no leaks).

/// Cost of walking the rmap of one page, as a walk of migration does it:
/// page pinned and locked, each object's ptl taken (blocking), the PTE at
/// the page's address looked up.
public struct BenchWalkFigure: Sendable, Equatable {
    public var walks: Int
    public var ns: UInt64
    /// Objects (mms or VMAs) the last walk visited, and the mappings of the
    /// page it found; every other visit was wasted.
    public var visited: Int
    public var found: Int
    /// The page's mapcount when walked: a complete walk finds all of them.
    public var mapcount: Int
    public var wasted: Int { visited - found }
    public var nsPerWalk: Double { walks > 0 ? Double(ns) / Double(walks) : .nan }
}

/// A fork tree and the walks of three of its pages.
public struct BenchTree: Sendable, Equatable {
    /// Processes forked in the tree, the root included (exec'd ones count).
    public var mms: Int
    /// Children that exec'd right after fork (their images, and whatever
    /// they fork, no longer map the root's pages).
    public var execed: Int
    /// mms that map the root's shared page.
    public var sharers: Int
    /// Written by the root before any fork: mapped by every sharer.
    public var shared: BenchWalkFigure
    /// A page the deepest sharer copied on write after the tree was built
    /// (in a VMA that had pages before fork): mapped by that mm only.
    public var privateCOW: BenchWalkFigure
    /// A page the deepest sharer touched first, in a VMA nobody had touched
    /// before fork: mapped by that mm only.
    public var privateFresh: BenchWalkFigure
    /// rmap contexts (anongroups or anon_vmas), VMAs and mms in use on the
    /// machine with the tree built (the tree is all it runs).
    public var contexts: Int
    public var vmas: Int
    public var liveMMs: Int
    /// The scheme's live rmap bytes with the tree built, as it counts them
    /// itself (`RmapScheme.metadata`): per-page chains included.
    public var metadataBytes: Int
}

/// One mremap point: `calls` moves of a VMA whose pages a forked child
/// still shares in part; only the mremap calls are timed.
public struct BenchMremapFigure: Sendable, Equatable {
    public var calls: Int
    public var ns: UInt64
    /// Pages copied (anongroup: still shared), re-indexed (anongroup:
    /// exclusive) and moved untouched (anon_vma), over all calls.
    public var copied: Int
    public var reindexed: Int
    public var kept: Int
}

/// Swap-in from a sharer: a parent's pages, shared with a forked child,
/// swapped out (kept in the swap cache), then read back by both.
public struct BenchSwapFigure: Sendable, Equatable {
    public var pages: Int
    /// Of the parent's pages, how many reclaim swapped out.
    public var swappedOut: Int
    /// Swap-ins that mapped the cached page, that copied it (the scheme
    /// refused the cached page there), and that read the slot (nothing cached).
    public var hits: Int
    public var copies: Int
    public var reads: Int
    /// Distinct frames the two processes map afterwards (pages: all shared
    /// again; 2 × pages: nothing shared).
    public var framesAfter: Int
    /// The read faults of both processes.
    public var faultNs: UInt64
}

extension Machine {
    /// Builds a fork tree: a root with 2+ VMAs (`vmasPerProcess >= 2`)
    /// writes two pages of its first VMA, then every node down to `depth`
    /// forks `children` children; with `exec`, every even-numbered child of
    /// each parent (the first included) execs right after fork. Walks three
    /// pages (see `BenchTree`), each about `walkVisits / visited` times.
    /// Needs `maxProcesses` >= the tree's size; nil when it does not fit.
    public func benchForkTree(children: Int, depth: Int, exec: Bool, walkVisits: Int, cpu: CPU) -> BenchTree? {
        core.bench.benchForkTree(children: children, depth: depth, exec: exec, walkVisits: walkVisits, cpu: cpu)
    }

    /// fork + exit of a child of a process with `vmas` VMAs (`vmasPerProcess
    /// <= vmas <= MachineConfig.maxVMAs`), every page written; (ns, forks).
    public func benchForkExitVMAs(vmas: Int, iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int)? {
        core.bench.benchForkExitVMAs(vmas: vmas, iterations: iterations, cpu: cpu)
    }

    /// mremap of a populated VMA (`vmaPages` pages) after fork, with
    /// `sharedPercent`% of its pages still shared with the child (the child
    /// wrote the rest, so they are exclusive); a fresh child per call.
    public func benchMremapShared(sharedPercent: Int, iterations: Int, cpu: CPU) -> BenchMremapFigure? {
        core.bench.benchMremapShared(sharedPercent: sharedPercent, iterations: iterations, cpu: cpu)
    }

    /// A parent writes `pages` pages (<= `vmaPages`), forks, the pages are
    /// swapped out and kept in the swap cache; with `mremapChild` the child
    /// moves its VMA first (Hugh Dickins' case); then the parent and the
    /// child read every page back.
    public func benchSwapShared(pages: Int, mremapChild: Bool, cpu: CPU) -> BenchSwapFigure? {
        core.bench.benchSwapShared(pages: pages, mremapChild: mremapChild, cpu: cpu)
    }

    /// Bytes of rmap metadata the scheme adds per VMA and per mm.
    public var rmapMetadataBytes: (perVMA: Int, perMM: Int) { core.bench.benchMetadataBytes() }
}

extension KernelMachine {
    func benchMetadataBytes() -> (perVMA: Int, perMM: Int) { R.metadataBytes }

    /// fork of the process running `parent`; the child's mm and table slot
    /// (the table holds its only reference), nil when out of room.
    func benchForkSlot(_ parent: UInt32, _ cpu: CPU) -> (mm: UInt32, slot: Int)? {
        let k = kernel
        var r = k.fork(parent, cpu)
        if r.result == .outOfMemory { k.quiesce(cpu); r = k.fork(parent, cpu) }
        guard r.result == .ok else { return nil }
        k.mmPut(r.child, cpu)
        return (r.child, r.slot)
    }

    /// Table index and start of the VMAs of `mm`, in table order.
    func benchVMAs(_ mm: UInt32) -> [(t: Int, start: UInt64)] {
        let k = kernel
        var out: [(t: Int, start: UInt64)] = []
        for t in 0..<MachineConfig.maxVMAs where k.vmaHandle(mm, t) != 0 { out.append((t, k.vmaStart(k.vmaHandle(mm, t)))) }
        return out
    }

    // MARK: Fork trees

    func benchForkTree(children c: Int, depth d: Int, exec: Bool, walkVisits: Int, cpu: CPU) -> BenchTree? {
        precondition(c >= 1 && d >= 1)
        guard config.vmasPerProcess >= 2, config.vmaPages >= 2 else { return nil }
        var total = 1, level = 1
        for _ in 0..<d {
            level = level.multipliedReportingOverflow(by: c).partialValue
            total += level
            guard total <= config.maxProcesses else { return nil }
        }
        let k = kernel
        let root = benchSpawnMM(cpu)
        guard root != 0 else { return nil }
        let v = benchVMAs(root)
        let sharedVPN = v[0].start, cowVPN = v[0].start + 1, freshVPN = v[1].start
        guard k.fault(root, vpn: sharedVPN, write: true, cpu) == .ok,
              k.fault(root, vpn: cowVPN, write: true, cpu) == .ok else { return nil }
        var frontier: [(mm: UInt32, sharer: Bool)] = [(root, true)]
        var mms = 1, sharers = 1, execed = 0
        var deepest = root
        for _ in 0..<d {
            var next: [(mm: UInt32, sharer: Bool)] = []
            next.reserveCapacity(frontier.count * c)
            for (p, sharing) in frontier {
                for i in 0..<c {
                    guard let (child, slot) = benchForkSlot(p, cpu) else { return nil }
                    mms += 1
                    if exec && i % 2 == 0 {
                        // The exec'd image starts a new context: it and what
                        // it forks never map the root's pages.
                        guard k.execProcess(slot: slot, mm: child, cpu) else { return nil }
                        execed += 1
                        next.append((k.processes.entry(slot).pointee.load(ordering: .acquiring), false))
                    } else {
                        if sharing { sharers += 1; deepest = child }
                        next.append((child, sharing))
                    }
                }
            }
            frontier = next
        }
        guard k.fault(deepest, vpn: cowVPN, write: true, cpu) == .ok,
              k.fault(deepest, vpn: freshVPN, write: true, cpu) == .ok else { return nil }
        let shared = benchWalkPage(root, sharedVPN, walkVisits: walkVisits, cpu)
        let cow = benchWalkPage(deepest, cowVPN, walkVisits: walkVisits, cpu)
        let fresh = benchWalkPage(deepest, freshVPN, walkVisits: walkVisits, cpu)
        return BenchTree(mms: mms, execed: execed, sharers: sharers, shared: shared, privateCOW: cow, privateFresh: fresh,
                         contexts: contextsInUse, vmas: vmasInUse, liveMMs: mmsInUse,
                         metadataBytes: kernel.rmap.metadata(kernel).bytes)
    }

    /// Walks the page mapped at (`mm`, `vpn`) as migration does, about
    /// `walkVisits / visited` times; reports a walk that misses a mapping.
    func benchWalkPage(_ mm: UInt32, _ vpn: UInt64, walkVisits: Int, _ cpu: CPU) -> BenchWalkFigure {
        let k = kernel
        let f = benchFrameAt(mm, vpn)
        precondition(f != 0, "bench tree page is not mapped")
        let pinned = k.tryPin(f)  // kept out of precondition: -Ounchecked drops its argument
        precondition(pinned)
        k.lockPage(f)
        defer { k.unlockPage(f); k.put(f, cpu) }
        let body = { (_: UInt32, _: UInt64, i: Int) -> Bool in
            let pte = k.pte(at: i)
            return (pte.isPresent || pte.isMigration) && pte.target == f
        }
        let first = k.rmapWalk(f, trylock: false, cpu, body)
        let walks = max(8, walkVisits / max(first.visited, 1))
        var last = first
        let t0 = RealPlatform.now()
        for _ in 0..<walks { last = k.rmapWalk(f, trylock: false, cpu, body) }
        let ns = RealPlatform.now() - t0
        let mapcount = Int(k.frames[Int(f)].mapcount.load(ordering: .relaxed))
        if last.found != mapcount {
            k.report(.incompleteWalk, frame: f, mm: mm, vpn: vpn, cpu: cpu,
                     "bench walk found \(last.found) of \(mapcount) mappings (\(last.visited) objects visited)")
        }
        return BenchWalkFigure(walks: walks, ns: ns, visited: last.visited, found: last.found, mapcount: mapcount)
    }

    // MARK: fork + exit against VMAs

    func benchForkExitVMAs(vmas n: Int, iterations: Int, cpu: CPU) -> (ns: UInt64, count: Int)? {
        guard n >= config.vmasPerProcess, n <= MachineConfig.maxVMAs, iterations >= 1 else { return nil }
        let k = kernel
        let parent = benchSpawnMM(cpu)
        guard parent != 0 else { return nil }
        // mmap of fresh anonymous VMAs, as munmap's remap does.
        k.mmapWrite(parent)
        var ok = true
        while ok && k.vmaCount(parent) < n {
            let start = k.freeSlotStart(parent, cpu)
            let v = k.newVMA(parent, start: start, pages: config.vmaPages, pgoff: start, ctx: 0, cpu)
            if v == 0 || !k.insertVMA(parent, v) {
                if v != 0 { k.freeUnpublishedVMA(v, cpu) }
                ok = false
            }
        }
        k.mmapUnlock(parent)
        defer { benchExit(parent, cpu) }
        guard ok else { return nil }
        for vpn in benchVPNs(parent) { guard k.fault(parent, vpn: vpn, write: true, cpu) == .ok else { return nil } }
        var total: UInt64 = 0
        for _ in 0..<iterations {
            var t0 = RealPlatform.now()
            var r = k.fork(parent, cpu)
            if r.result == .outOfMemory {
                k.quiesce(cpu)  // mm slots come back after a grace period
                t0 = RealPlatform.now()
                r = k.fork(parent, cpu)
            }
            guard r.result == .ok else { return nil }
            k.mmPut(r.child, cpu)
            _ = k.exitProcess(slot: r.slot, mm: r.child, cpu)
            total += RealPlatform.now() - t0
        }
        return (total, iterations)
    }

    // MARK: mremap after fork

    func benchMremapShared(sharedPercent: Int, iterations: Int, cpu: CPU) -> BenchMremapFigure? {
        guard (0...100).contains(sharedPercent), iterations >= 1 else { return nil }
        let k = kernel
        let parent = benchSpawnMM(cpu)
        guard parent != 0 else { return nil }
        defer { benchExit(parent, cpu) }
        let start0 = benchVMAs(parent)[0].start
        for d in 0..<UInt64(config.vmaPages) { guard k.fault(parent, vpn: start0 + d, write: true, cpu) == .ok else { return nil } }
        let pages = config.vmaPages
        let shared = pages * sharedPercent / 100
        let e0 = (cpu.pointee.eventCount(.mremapCopy), cpu.pointee.eventCount(.mremapMove), cpu.pointee.eventCount(.mremapKeep))
        var total: UInt64 = 0
        for _ in 0..<iterations {
            guard let (child, slot) = benchForkSlot(parent, cpu) else { return nil }
            // The child writes the pages that are not to stay shared: each
            // becomes exclusive in both processes.
            let (t, start) = benchVMAs(parent)[0]
            for d in shared..<pages { _ = k.fault(child, vpn: start + UInt64(d), write: true, cpu) }
            let t0 = RealPlatform.now()
            k.mmapWrite(parent)
            let ok = k.mremapLocked(parent, vma: t, to: k.freeSlotStart(parent, cpu), cpu)
            k.mmapUnlock(parent)
            total += RealPlatform.now() - t0
            _ = k.exitProcess(slot: slot, mm: child, cpu)
            guard ok else { return nil }
        }
        return BenchMremapFigure(calls: iterations, ns: total,
                                 copied: Int(cpu.pointee.eventCount(.mremapCopy) - e0.0),
                                 reindexed: Int(cpu.pointee.eventCount(.mremapMove) - e0.1),
                                 kept: Int(cpu.pointee.eventCount(.mremapKeep) - e0.2))
    }

    // MARK: Swap-in from a sharer

    func benchSwapShared(pages n: Int, mremapChild: Bool, cpu: CPU) -> BenchSwapFigure? {
        guard n >= 1, n <= config.vmaPages, n <= config.swapSlots / 2 else { return nil }
        let k = kernel
        let parent = benchSpawnMM(cpu)
        guard parent != 0 else { return nil }
        defer { benchExit(parent, cpu) }
        let start = benchVMAs(parent)[0].start
        for d in 0..<UInt64(n) { guard k.fault(parent, vpn: start + d, write: true, cpu) == .ok else { return nil } }
        guard let (child, slot) = benchForkSlot(parent, cpu) else { return nil }
        defer { _ = k.exitProcess(slot: slot, mm: child, cpu) }
        func swapped() -> Int {
            k.ptlLock(parent)
            defer { k.ptlUnlock(parent) }
            var s = 0
            for d in 0..<UInt64(n) {
                let i = k.pteIndex(parent, start + d)
                if i >= 0 && k.pte(at: i).isSwap { s += 1 }
            }
            return s
        }
        // The first pass ages (clears young bits), the next swaps out and
        // keeps the pages in the swap cache, as kswapd does.
        for _ in 0..<4 where swapped() < n { k.reclaim(cpu, scan: config.frames, target: Int.max, keepCached: true) }
        let out = swapped()
        var childStart = start
        if mremapChild {
            k.mmapWrite(child)
            let t = benchVMAs(child)[0].t
            childStart = k.freeSlotStart(child, cpu)
            let ok = k.mremapLocked(child, vma: t, to: childStart, cpu)
            k.mmapUnlock(child)
            guard ok else { return nil }
        }
        let e0 = (cpu.pointee.eventCount(.swapCacheHit), cpu.pointee.eventCount(.swapCacheCopy), cpu.pointee.eventCount(.swapIn))
        let t0 = RealPlatform.now()
        for d in 0..<UInt64(n) { _ = k.fault(parent, vpn: start + d, write: false, cpu) }
        for d in 0..<UInt64(n) { _ = k.fault(child, vpn: childStart + d, write: false, cpu) }
        let ns = RealPlatform.now() - t0
        var frames = Set<UInt32>()
        for d in 0..<UInt64(n) {
            frames.insert(benchFrameAt(parent, start + d))
            frames.insert(benchFrameAt(child, childStart + d))
        }
        frames.remove(0)
        return BenchSwapFigure(pages: n, swappedOut: out,
                               hits: Int(cpu.pointee.eventCount(.swapCacheHit) - e0.0),
                               copies: Int(cpu.pointee.eventCount(.swapCacheCopy) - e0.1),
                               reads: Int(cpu.pointee.eventCount(.swapIn) - e0.2),
                               framesAfter: frames.count, faultNs: ns)
    }
}
