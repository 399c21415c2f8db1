/// Page reclaim: a clock scan over the frame table, young-bit aging through
/// the rmap, and swap-out.
///
/// Locks (order: `LockClass`): pageLock and each ptl by trylock only, the
/// scheme's walk protection between them. A failed trylock leaves the page
/// mapped there; that is not a bug, so completeness is only checked for
/// walks without failures.
///
/// Swap-out: the page goes into the swap cache (a new slot gets a copy of
/// its content; a page already cached keeps its slot: it was never written
/// while cached, since cached pages are mapped read-only and a write copies
/// or uncaches them), then every PTE becomes a swap entry. The page stays
/// in the cache, unmapped, so a swap-in can map it again; a later pass of
/// the clock frees cached pages that nobody maps.
extension Kernel {
    /// Reclaim over every node in turn, `scan` frames of each (tests and
    /// benchmarks); returns how many were freed (stops at `target`).
    @discardableResult
    func reclaim(_ cpu: CPU, scan: Int, target: Int, keepCached: Bool = true) -> Int {
        var freed = 0
        let nodes = frameTable.nodes
        for n in 0..<nodes.count where freed < target {
            freed += reclaim(cpu, node: n, scan: min(scan, nodes.stretch(n).count), target: target - freed,
                             keepCached: keepCached)
        }
        return freed
    }

    /// Scans up to `scan` frames of memory node `node` (its own clock);
    /// returns how many it freed (stops at `target`). With `keepCached`
    /// (kswapd), a page swapped out stays in the swap cache until the clock
    /// comes round again, so a sharer that faults it meanwhile maps it
    /// again; without (direct reclaim: an allocation is waiting), it is
    /// freed at once.
    @discardableResult
    func reclaim(_ cpu: CPU, node: Int, scan: Int, target: Int, keepCached: Bool = true) -> Int {
        var freed = 0
        let nodes = frameTable.nodes
        let stretch = nodes.stretch(node % nodes.count)
        let n = UInt32(stretch.count)
        // Claim the whole stretch of the clock at once: one shared-line
        // update per scan instead of one per frame.
        let first = nodes.advanceClock(node % nodes.count, by: scan)
        for d in 0..<UInt32(truncatingIfNeeded: scan) {
            let f = stretch.first + ((first &+ d) % n)
            cpu.pointee.count(.reclaimScanned)
            let fl = frames[Int(f)].flags.load(ordering: .relaxed)
            if fl & (FrameFlags.pageCache | FrameFlags.anon | FrameFlags.free) == FrameFlags.pageCache {
                if shrinkFilePage(f, cpu) { freed += 1; if freed >= target { break } }
                continue
            }
            guard fl & FrameFlags.anon != 0 && fl & FrameFlags.free == 0 else { continue }
            if fl & FrameFlags.swapCache != 0 && frames[Int(f)].mapcount.load(ordering: .relaxed) == 0 {
                if freeCachedPage(f, cpu) { freed += 1; if freed >= target { break } }
                continue
            }
            guard isolate(f, cpu) else { continue }
            let unmapped = shrink(f, cpu)
            if unmapped && !keepCached {
                swapCacheRemove(f, cpu)
                unlockPage(f)
                put(f, cpu)  // the cache's reference
                put(f, cpu)  // our pin: frees it, unless a swap-in pinned it a moment
                cpu.pointee.count(.swapCacheFreed)
                freed += 1
                if freed >= target { break }
            } else {
                putBack(f, cpu)
            }
        }
        return freed
    }

    /// The scanners' isolate step (reclaim, migration, and the tests that
    /// migrate a page they chose): pin a frame that may be freed meanwhile,
    /// trylock its page lock, then re-check under the lock that it is still
    /// an anonymous or page cache page with at least one mapping. True when `f` is pinned,
    /// locked and mapped; the caller ends with `putBack`. False leaves
    /// nothing held.
    ///
    /// Why the re-check closes the window: a frame is being set up (a fault's
    /// first touch or COW copy, a swap-in, mremap's private copy) while it
    /// holds only its allocation reference, so the pin alone succeeds on it.
    /// Every such path sets `mapping`/`index`, publishes `anon` (release) and
    /// sets mapcount inside the ptl section that installs its PTE. A scanner
    /// that sees `anon` (acquire) and mapcount > 0 therefore reads the new
    /// mapping and index, and its walk blocks on that ptl until the PTE is
    /// in place, so it finds it. A frame that is not yet anonymous, or whose
    /// mapcount is still 0, is not a page anybody can walk: it is skipped.
    func isolate(_ f: UInt32, _ cpu: CPU) -> Bool {
        guard tryPin(f) else { return false }
        guard tryLockPage(f) else { put(f, cpu); return false }
        if frames[Int(f)].flags.load(ordering: .acquiring) & (FrameFlags.anon | FrameFlags.pageCache) != 0
            && frames[Int(f)].mapcount.load(ordering: .relaxed) > 0 {
            return true
        }
        unlockPage(f)
        put(f, cpu)
        return false
    }

    /// Ends what `isolate` began: unlock, then drop the pin (which frees a
    /// page that was unmapped everywhere meanwhile).
    func putBack(_ f: UInt32, _ cpu: CPU) {
        unlockPage(f)
        put(f, cpu)
    }

    /// A swap-cache page that no PTE maps: out of the cache and freed, if
    /// it is still so once pinned and locked. True when freed.
    private func freeCachedPage(_ f: UInt32, _ cpu: CPU) -> Bool {
        guard tryPin(f) else { return false }
        guard tryLockPage(f) else { put(f, cpu); return false }
        let fr = frames + Int(f)
        guard fr.pointee.flags.load(ordering: .acquiring) & FrameFlags.swapCache != 0,
              fr.pointee.mapcount.load(ordering: .relaxed) == 0 else {
            unlockPage(f); put(f, cpu)
            return false
        }
        swapCacheRemove(f, cpu)
        unlockPage(f)
        put(f, cpu)  // the cache's reference
        // Our pin: the last reference unless a swap-in pinned it meanwhile
        // (it then finds it out of the cache and lets go).
        let last = fr.pointee.refcount.load(ordering: .acquiring) == 1
        put(f, cpu)
        if last { cpu.pointee.count(.swapCacheFreed) }
        return last
    }

    /// Ages or swaps out one locked, pinned page. True when it was unmapped
    /// everywhere (it is then in the swap cache, still locked and pinned).
    private func shrink(_ f: UInt32, _ cpu: CPU) -> Bool {
        var referenced = false
        _ = rmapWalk(f, trylock: true, cpu) { _, _, i in
            let pte = pte(at: i)
            guard pte.isPresent && pte.target == f else { return pte.mappedFrame == f }
            if pte.isYoung {
                setPTE(at: i, pte.with(young: false))
                referenced = true
            }
            return true
        }
        if referenced {
            frames[Int(f)].flags.bitwiseOr(FrameFlags.referenced, ordering: .relaxed)
            cpu.pointee.count(.reclaimReferenced)
            return false
        }
        var s = frames[Int(f)].swapSlot.load(ordering: .relaxed)
        if frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.swapCache == 0 {
            s = cacheAlloc(.swapSlots, cpu)
            guard s != 0 else { cpu.pointee.count(.swapFull); return false }
            // The slot's copy, then the cache entry (its reference keeps the
            // slot alive while PTEs are pointed at it).
            swap.content[Int(s)].store(frames[Int(f)].content.load(ordering: .relaxed), ordering: .releasing)
            guard swapCacheAdd(f, slot: s) else {
                report(.swapCount, frame: f, cpu: cpu, "fresh swap slot \(s) already has a page in the swap cache")
                return false
            }
        }
        let stats = rmapWalk(f, trylock: true, cpu) { mm, vpn, i in
            let pte = pte(at: i)
            guard pte.isPresent && pte.target == f else { return pte.mappedFrame == f }
            // The content again, under this ptl: a writable PTE (the only
            // mapping, and then no swap entry names the slot yet) may have
            // written since the copy above.
            swap.content[Int(s)].store(frames[Int(f)].content.load(ordering: .relaxed), ordering: .releasing)
            swap.count[Int(s)].wrappingAdd(1, ordering: .relaxed)
            raceWindow(cpu)  // read-to-write window: only the ptl closes it
            setPTE(at: i, .swap(s))  // present -> swap: leaf use count unchanged
            mapDec(f, cpu)
            rmap.pteCleared(self, frame: f, mm: mm, vpn: vpn, cpu: cpu)
            put(f, cpu)  // cannot free: we hold a pin
            return true
        }
        let left = frames[Int(f)].mapcount.load(ordering: .relaxed)
        if left != 0 && stats.trylockFailed == 0 && checks != .off {
            report(.incompleteWalk, frame: f, vpn: frames[Int(f)].index.load(ordering: .relaxed), cpu: cpu,
                   "swap-out walk visited \(stats.visited) objects and left \(left) mappings")
        }
        if left == 0 { cpu.pointee.count(.swapOut); return true }
        return false
    }
}
