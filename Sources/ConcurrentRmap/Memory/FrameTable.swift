import Synchronization

/// The frame subsystem's tables: every frame (struct page) and the free
/// frames per memory node.
struct FrameTable {
    let frames: UnsafeMutablePointer<Frame>
    /// Free frames per memory node, and each node's reclaim clock.
    let nodes: FrameNodes
    let count: Int

    init(count: Int, nodes n: Int) {
        self.count = count
        frames = CacheLine.allocate(Frame.self, count: count + 1)
        for i in 0...count { (frames + i).initialize(to: Frame()) }
        nodes = FrameNodes(frames: count, nodes: n)
    }

    func destroy() {
        frames.deinitialize(count: count + 1)
        frames.deallocate()
        nodes.destroy()
    }

    /// Free frames must be free in every field (flags, counts, poison): part
    /// of invariant 2, for the frames the walk over page tables never sees.
    func auditFree(_ report: (Violation) -> Void) {
        for f in 1...count {
            let fr = frames + f
            guard fr.pointee.flags.load(ordering: .relaxed) & FrameFlags.free != 0 else { continue }
            let mc = fr.pointee.mapcount.load(ordering: .relaxed)
            let rc = fr.pointee.refcount.load(ordering: .relaxed)
            let ct = fr.pointee.content.load(ordering: .relaxed)
            if mc != 0 || rc != 0 || ct != Frame.poison || fr.pointee.swapSlot.load(ordering: .relaxed) != 0 {
                report(Violation(kind: .freedWhileMapped, frame: UInt32(f),
                                 detail: "free frame: mapcount \(mc), refcount \(rc), poisoned \(ct == Frame.poison)"))
            }
        }
    }

    /// After teardown: every frame free and poisoned, every pool full.
    func leakCheck(_ report: (Violation) -> Void) {
        if nodes.inUse != 0 {
            report(Violation(kind: .leak, detail: "\(nodes.inUse) frames still allocated"))
        }
        for f in 1...count {
            let fr = frames + f
            if fr.pointee.flags.load(ordering: .relaxed) != FrameFlags.free || fr.pointee.refcount.load(ordering: .relaxed) != 0
                || fr.pointee.mapcount.load(ordering: .relaxed) != 0 || fr.pointee.content.load(ordering: .relaxed) != Frame.poison {
                report(Violation(kind: .leak, frame: UInt32(f), detail: "frame not free and poisoned after teardown"))
                break
            }
        }
    }
}

/// Frames: reference and map counts, the page lock, allocation and free.
///
/// Counts change with `wrappingAdd`/`wrappingSubtract` (one `lock xadd`),
/// as the kernel's atomic_inc does: the checked `add` traps on overflow and
/// compiles to a compare-exchange loop, several times dearer on every fault,
/// fork and walk. A count that goes wrong is caught where it matters, by
/// the "went negative" reports and the audit, with a verdict, not a trap.
extension Kernel {
    /// Migration's copy of an anonymous page's anchor: `to` names what
    /// `from` names (`mapping`, `index`) and becomes anonymous (release:
    /// the scans read the flag first). The schemes' `pageCloned` share it.
    @inline(__always) func copyAnonAnchor(from: UInt32, to: UInt32) {
        frames[Int(to)].index.store(frames[Int(from)].index.load(ordering: .relaxed), ordering: .relaxed)
        frames[Int(to)].mapping.store(frames[Int(from)].mapping.load(ordering: .relaxed), ordering: .relaxed)
        frames[Int(to)].flags.bitwiseOr(FrameFlags.anon, ordering: .releasing)
    }

    @inline(__always) func refInc(_ f: UInt32) { frames[Int(f)].refcount.wrappingAdd(1, ordering: .relaxed) }

    /// get_page_unless_zero: pin a frame that may be freed concurrently.
    @inline(__always) func tryPin(_ f: UInt32) -> Bool {
        var c = frames[Int(f)].refcount.load(ordering: .relaxed)
        while c > 0 {
            let (done, now) = frames[Int(f)].refcount.compareExchange(
                expected: c, desired: c + 1, ordering: .acquiring)
            if done { return true }
            c = now
        }
        return false
    }

    /// The injected bug's view of a mapcount: a plain Int32 over the
    /// atomic's storage, so that ThreadSanitizer sees the unsynchronized
    /// accesses for what they are. The offset is checked in `init`.
    @inline(__always) func plainMapcount(_ f: UInt32) -> UnsafeMutablePointer<Int32> {
        (UnsafeMutableRawPointer(frames + Int(f)) + Frame.mapcountOffset).assumingMemoryBound(to: Int32.self)
    }

    @inline(__always) func mapInc(_ f: UInt32, _ cpu: CPU) {
        if inject == .racyMapcount {
            let v = plainMapcount(f).pointee
            raceWindow(cpu)
            plainMapcount(f).pointee = v + 1
        } else {
            frames[Int(f)].mapcount.wrappingAdd(1, ordering: .relaxed)
        }
    }

    @inline(__always) func mapDec(_ f: UInt32, _ cpu: CPU) {
        let now: Int32
        if inject == .racyMapcount {
            let v = plainMapcount(f).pointee
            raceWindow(cpu)
            now = v - 1
            plainMapcount(f).pointee = now
        } else {
            now = frames[Int(f)].mapcount.wrappingSubtract(1, ordering: .relaxed).newValue
        }
        if now < 0 && checks != .off {
            report(.mapcount, frame: f, cpu: cpu, "mapcount went negative (\(now))")
        }
    }

    /// put_page: drop a pin or a mapping's reference; frees on the last one.
    @inline(__always) func put(_ f: UInt32, _ cpu: CPU) {
        let now = frames[Int(f)].refcount.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            freePage(f, cpu)
        } else if now < 0 {
            report(.refcount, frame: f, cpu: cpu, "refcount went negative (\(now))")
        }
    }

    /// The last reference is gone: detach from the rmap, poison, free into
    /// this CPU's cache.
    func freePage(_ f: UInt32, _ cpu: CPU) {
        let fr = frames + Int(f)
        let fl = fr.pointee.flags.load(ordering: .relaxed)
        if fl & FrameFlags.free != 0 {
            // Refuse: pushing it again would hand one frame to two owners.
            report(.freedWhileMapped, frame: f, cpu: cpu, "frame freed twice")
            return
        }
        let mc = fr.pointee.mapcount.load(ordering: .relaxed)
        if mc != 0 {
            report(.freedWhileMapped, frame: f, cpu: cpu, "frame freed with mapcount \(mc)")
        }
        if fl & FrameFlags.swapCache != 0 {
            report(.swapCount, frame: f, cpu: cpu, "frame freed while still in the swap cache (slot \(fr.pointee.swapSlot.load(ordering: .relaxed)))")
        }
        if fl & FrameFlags.pageCache != 0 {
            report(.refcount, frame: f, cpu: cpu, "frame freed while still in the page cache")
        }
        if fl & FrameFlags.anon != 0 {
            rmap.pageFreed(self, frame: f, cpu: cpu)
        }
        fr.pointee.content.store(Frame.poison, ordering: .relaxed)
        fr.pointee.index.store(Frame.poison, ordering: .relaxed)
        fr.pointee.mapping.store(0, ordering: .relaxed)
        fr.pointee.swapSlot.store(0, ordering: .relaxed)
        fr.pointee.flags.store(FrameFlags.free, ordering: .releasing)
        cpu.pointee.count(.pagesFreed)
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        let ok = caches.push(s, .frames, f, spillTo: frameTable.nodes)
        caches.unlock(s)
        if !ok { report(.freedWhileMapped, frame: f, cpu: cpu, "frame pool overflow: a frame was freed twice") }
    }

    /// Allocates a frame, running direct reclaim when memory is short.
    /// Never call with a ptl held: reclaim takes ptls. Returns 0 when out of
    /// memory. The frame comes back with refcount 1 and nothing else set.
    ///
    /// Order of the hand-out: `flags = 0` first, then `refcount = 1` with
    /// release. A scanner that read this frame's flags in its previous life
    /// pins it with `tryPin`, whose compare-exchange acquires: once its pin
    /// succeeds it sees flags already 0, so the page-lock bit its trylock
    /// then sets cannot be erased by our store (on a weakly ordered CPU a
    /// relaxed pair could land in the other order).
    func allocFrame(_ cpu: CPU) -> UInt32 {
        let nodes = frameTable.nodes
        let s = cpu.pointee.cacheSlot
        let home = cpu.pointee.node % nodes.count
        var attempt = 0
        var f: UInt32 = 0
        // The order is Linux's slow path: the local node, then other nodes
        // above their reserve, then direct reclaim of the local node; only
        // when that was not enough the other CPUs' caches are drained
        // (drain_all_pages), every node's reserve is open and reclaim goes
        // round the other nodes. Draining or raiding other nodes first
        // would make every allocation under pressure pull cache lines and
        // frames from the other CPUs, which Linux avoids.
        while true {
            caches.lock(s)
            f = caches.pop(s, .frames, of: nodes.pool(home))
            if f == 0 {
                for k in 0..<nodes.count {
                    let n = (home + k) % nodes.count
                    if k > 0 && attempt < 2 && nodes.pool(n).available <= nodes.remoteReserve(n) { continue }
                    if caches.refill(s, .frames, from: nodes.pool(n)) > 0 {
                        f = caches.pop(s, .frames, of: nodes.pool(n))
                        break
                    }
                }
            }
            caches.unlock(s)
            if f != 0 { break }
            // Free frames may be parked in other CPUs' caches: none is
            // "out of memory" before they are drained.
            if attempt >= 1 && caches.drainOthers(.frames, except: s, to: nodes) > 0 { continue }
            if attempt == 4 { return 0 }
            attempt += 1
            cpu.pointee.count(.directReclaim)
            // The home node first; later attempts go round the others.
            reclaim(cpu, node: (home + attempt - 1) % nodes.count, scan: 256, target: 16, keepCached: false)
        }
        return handOut(f, cpu)
    }

    /// A frame from this CPU's own cache, or 0 when it is empty: no pool
    /// lock, no drain and no reclaim, so it may be called with a ptl held
    /// (as Linux takes an atomic allocation from the per-cpu lists). The
    /// fault path tries it first and falls back to dropping the ptl and
    /// calling `allocFrame`.
    @inline(__always) func allocFrameCached(_ cpu: CPU) -> UInt32 {
        let nodes = frameTable.nodes
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        let f = caches.pop(s, .frames, of: nodes.pool(cpu.pointee.node % nodes.count))
        caches.unlock(s)
        return f == 0 ? 0 : handOut(f, cpu)
    }

    /// The checks and stores every allocated frame gets (see `allocFrame`
    /// for their order).
    @inline(__always) private func handOut(_ f: UInt32, _ cpu: CPU) -> UInt32 {
        let fr = frames + Int(f)
        if checks != .off {
            let fl = fr.pointee.flags.load(ordering: .acquiring)
            let rc = fr.pointee.refcount.load(ordering: .relaxed)
            let mc = fr.pointee.mapcount.load(ordering: .relaxed)
            let ct = fr.pointee.content.load(ordering: .relaxed)
            if fl != FrameFlags.free || rc != 0 || mc != 0 || ct != Frame.poison {
                report(.freedWhileMapped, frame: f, cpu: cpu,
                       "free frame in use: flags=\(fl) refcount=\(rc) mapcount=\(mc) poisoned=\(ct == Frame.poison)")
            }
        }
        fr.pointee.flags.store(0, ordering: .relaxed)
        fr.pointee.refcount.store(1, ordering: .releasing)
        return f
    }

    /// Free frames: in the node pools or parked in a CPU's cache.
    var freeFrames: Int { frameTable.nodes.available + caches.cachedCount(.frames) }

    /// Whether fewer than `n` frames of the CPU's node are free (kswapd's
    /// check): the node's pool and the CPU's own cache. Other CPUs' caches
    /// are left out, as Linux's watermarks leave out the per-CPU page
    /// lists: reading them would pull every CPU's cache line (written by
    /// its owner on every allocation) into every check.
    @inline(__always) func freeFramesBelow(_ n: Int, cpu: CPU) -> Bool {
        let pool = frameTable.nodes.pool(cpu.pointee.node % frameTable.nodes.count).available
        if pool >= n { return false }
        return pool + caches.count(cpu.pointee.cacheSlot, .frames).pointee.load(ordering: .relaxed) < n
    }

    // MARK: The page lock

    /// The page lock's key for lock-order bookkeeping: the frame number,
    /// tagged so that it never equals a pthread lock's address.
    @inline(__always) static func pageLockKey(_ f: UInt32) -> UInt { UInt(f) | (1 << (UInt.bitWidth - 1)) }

    @inline(__always) private func tryLockPageBit(_ f: UInt32) -> Bool {
        frames[Int(f)].flags.bitwiseOr(FrameFlags.locked, ordering: .acquiring).oldValue & FrameFlags.locked == 0
    }

    @inline(__always) func tryLockPage(_ f: UInt32, file: StaticString = #fileID, line: UInt = #line) -> Bool {
        let ok = tryLockPageBit(f)
        if ok { P.acquired(.pageLock, key: Self.pageLockKey(f), trylock: true, LockSite(file, line)) }
        return ok
    }

    /// lock_page: waits (through the platform) until the page lock is free.
    /// `nested`: migration's new page, locked while holding the old one.
    func lockPage(_ f: UInt32, nested: Bool = false, file: StaticString = #fileID, line: UInt = #line) {
        // Checked before the wait, as a pthread lock is.
        P.acquired(nested ? .pageLockNested : .pageLock, key: Self.pageLockKey(f), trylock: false, LockSite(file, line))
        while !tryLockPageBit(f) { P.relax() }
    }

    @inline(__always) func unlockPage(_ f: UInt32) {
        P.released(.pageLock, key: Self.pageLockKey(f))
        frames[Int(f)].flags.bitwiseAnd(~FrameFlags.locked, ordering: .releasing)
    }

    // MARK: Per-CPU caches of the pools

    /// Returns everything the CPU has cached to the pools, and queues its
    /// retired slots (before the CPU goes away, and before a leak check).
    func drain(_ cpu: CPU) {
        flushRetired(cpu)
        completeGracePeriod(cpu)
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        caches.spillAll(s, .frames, to: frameTable.nodes)
        for kind in CacheKind.allCases where kind != .frames { caches.spillAll(s, kind, to: pool(for: kind)) }
        caches.unlock(s)
    }

    /// The pool behind a cache kind (frames have their nodes instead).
    @inline(__always) func pool(for kind: CacheKind) -> NodePool {
        switch kind {
        case .frames: preconditionFailure("frames go through allocFrame/freePage and their nodes")
        case .leaves: spaces.leafPool
        case .swapSlots: swap.pool
        case .mms: spaces.mms.pool
        case .vmas: spaces.vmas.pool
        case .contexts: rmap.slotPool
        case .families: processes.families.pool
        }
    }

    /// A handle of `kind` from this CPU's cache, refilled from the pool in
    /// a batch; when the pool is dry, the other CPUs' caches are drained
    /// before giving up. 0 when none is free.
    @inline(__always) func cacheAlloc(_ kind: CacheKind, _ cpu: CPU) -> UInt32 {
        let pool = pool(for: kind)
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        var h = caches.pop(s, kind, of: pool)
        if h == 0 && caches.refill(s, kind, from: pool, node: cpu.pointee.node) > 0 { h = caches.pop(s, kind, of: pool) }
        caches.unlock(s)
        if h == 0 && caches.drainOthers(kind, except: s, to: pool) > 0 { h = pool.alloc() }
        if h == 0 && kind.freedAfterGracePeriod { expediteGracePeriod(cpu) }
        return h
    }

    /// Returns a handle of `kind` through this CPU's cache. A handle that is
    /// not allocated (a double free) is refused and reported.
    @inline(__always) func cacheFree(_ kind: CacheKind, _ h: UInt32, _ cpu: CPU) {
        let pool = pool(for: kind)
        guard pool.release(h) else {
            report(.lifetime, cpu: cpu, "\(kind.name) \(h) freed twice (or never allocated)")
            return
        }
        let s = cpu.pointee.cacheSlot
        caches.lock(s)
        let ok = caches.push(s, kind, h, spillTo: pool)
        caches.unlock(s)
        if !ok { report(.lifetime, cpu: cpu, "\(kind.name) pool overflow while freeing \(h)") }
    }
}
