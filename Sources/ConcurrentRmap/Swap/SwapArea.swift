import Synchronization

/// The swap subsystem: slots of swapped-out content and the swap cache.
///
/// A slot holds a copy of a page's content and a count: one per swap PTE
/// that names it and one for the swap cache while a page of memory is that
/// slot's copy (the reclaimer converts PTEs under the cache's reference). At 0 the slot
/// is poisoned and freed.
///
/// The swap cache: swap-out leaves the page in memory, in the cache
/// (`cached[slot]` = the frame, the frame flagged `swapCache` with
/// `swapSlot` = the slot, one reference each way), while PTEs point at the
/// slot. A swap-in that finds the page there maps it again instead of
/// copying it, if the scheme's rule allows (`RmapScheme.canMapCached`): the
/// page comes back shared. Reclaim frees cached pages that nobody maps on
/// its next pass. A cached page is never written: a write fault copies it.
///
/// Locking: entries change under the page lock of the cached frame; slot
/// counts are atomics.
struct SwapArea {
    let content: UnsafeMutablePointer<Atomic<UInt64>>
    let count: UnsafeMutablePointer<Atomic<Int32>>
    /// The frame in the swap cache for each slot, 0 if none.
    let cached: UnsafeMutablePointer<Atomic<UInt32>>
    let pool: NodePool
    let slots: Int

    init(slots: Int, nodes: Int) {
        self.slots = slots
        content = .allocate(capacity: slots + 1)
        count = .allocate(capacity: slots + 1)
        cached = .allocate(capacity: slots + 1)
        for i in 0...slots {
            (content + i).initialize(to: Atomic(Frame.poison))
            (count + i).initialize(to: Atomic(0))
            (cached + i).initialize(to: Atomic(0))
        }
        pool = NodePool(capacity: slots, nodes: nodes, trackOwnership: true)
    }

    func destroy() {
        content.deinitialize(count: slots + 1); content.deallocate()
        count.deinitialize(count: slots + 1); count.deallocate()
        cached.deinitialize(count: slots + 1); cached.deallocate()
        pool.destroy()
    }

    @inline(__always) func contains(_ s: UInt32) -> Bool { s >= 1 && Int(s) <= slots }

    /// Counts against the swap entries a page-table walk found (`entries`,
    /// by slot) and the swap cache against the frames.
    func audit(entries: [Int32], frames: UnsafeMutablePointer<Frame>, cachedInPools: Int, _ report: (Violation) -> Void) {
        var referenced = 0
        for s in 1...slots {
            let c = count[s].load(ordering: .relaxed)
            let f = cached[s].load(ordering: .relaxed)
            let expect = entries[s] + (f != 0 ? 1 : 0)
            if c != expect {
                report(Violation(kind: .swapCount, detail: "swap slot \(s) count \(c), \(entries[s]) swap entries\(f != 0 ? " and the swap cache" : "")"))
            }
            if expect > 0 { referenced += 1 }
            if f != 0 {
                let fl = frames[Int(f)].flags.load(ordering: .relaxed)
                if fl & FrameFlags.swapCache == 0 || frames[Int(f)].swapSlot.load(ordering: .relaxed) != UInt32(s) {
                    report(Violation(kind: .swapCount, frame: f, detail: "swap cache names frame \(f) for slot \(s), which is not its copy"))
                }
            }
        }
        let allocated = pool.inUse - cachedInPools
        if referenced != allocated {
            report(Violation(kind: .swapCount, detail: "\(allocated) swap slots allocated, \(referenced) referenced"))
        }
    }

    func leakCheck(_ report: (Violation) -> Void) {
        if pool.inUse != 0 { report(Violation(kind: .leak, detail: "\(pool.inUse) swap slots still allocated")) }
        for s in 1...slots where cached[s].load(ordering: .relaxed) != 0 {
            report(Violation(kind: .leak, detail: "swap cache still holds slot \(s)"))
            break
        }
    }
}

enum SwapCacheLookup { case none, busy, cached(UInt32) }

/// Swap slots and the swap cache.
extension Kernel {
    /// Drops a reference to slot `s`; the last frees it.
    func swapPut(_ s: UInt32, _ cpu: CPU) {
        guard swap.contains(s) else {
            report(.swapCount, cpu: cpu, "swap entry names slot \(s), outside 1...\(config.swapSlots)")
            return
        }
        let now = swap.count[Int(s)].wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            swap.content[Int(s)].store(Frame.poison, ordering: .relaxed)
            cacheFree(.swapSlots, s, cpu)
        } else if now < 0 {
            report(.swapCount, cpu: cpu, "swap slot \(s) count went negative")
        }
    }

    /// Puts locked page `f` into the swap cache as the copy of slot `s`
    /// (one reference each way). False, with nothing changed, when the slot
    /// already has a page there (a racing swap-in cached its own).
    func swapCacheAdd(_ f: UInt32, slot s: UInt32) -> Bool {
        guard swap.cached[Int(s)].compareExchange(expected: 0, desired: f, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        swap.count[Int(s)].wrappingAdd(1, ordering: .relaxed)
        refInc(f)
        frames[Int(f)].swapSlot.store(s, ordering: .relaxed)
        frames[Int(f)].flags.bitwiseOr(FrameFlags.swapCache, ordering: .releasing)
        return true
    }

    /// Takes locked page `f` out of the swap cache and drops the slot's
    /// reference. The frame's reference from the cache is the caller's to
    /// drop, after it unlocks the page (the drop may free the frame).
    func swapCacheRemove(_ f: UInt32, _ cpu: CPU) {
        let s = frames[Int(f)].swapSlot.load(ordering: .relaxed)
        swap.cached[Int(s)].store(0, ordering: .releasing)
        frames[Int(f)].flags.bitwiseAnd(~FrameFlags.swapCache, ordering: .releasing)
        frames[Int(f)].swapSlot.store(0, ordering: .relaxed)
        swapPut(s, cpu)
    }

    /// Migration: locked `to` takes locked `from`'s place in the swap cache
    /// (`from` keeps its cache reference for the caller to drop).
    func swapCacheMove(from: UInt32, to: UInt32) {
        let s = frames[Int(from)].swapSlot.load(ordering: .relaxed)
        refInc(to)
        frames[Int(to)].swapSlot.store(s, ordering: .relaxed)
        frames[Int(to)].flags.bitwiseOr(FrameFlags.swapCache, ordering: .releasing)
        swap.cached[Int(s)].store(to, ordering: .releasing)
        frames[Int(from)].flags.bitwiseAnd(~FrameFlags.swapCache, ordering: .releasing)
        frames[Int(from)].swapSlot.store(0, ordering: .relaxed)
    }

    /// The swap cache's page for slot `s`, pinned and locked (trylock: the
    /// caller holds a ptl), if it is there and still that slot's copy;
    /// `.busy` when it is there but locked (the caller drops its ptl,
    /// waits and retries).
    func swapCacheLookup(_ s: UInt32, _ cpu: CPU) -> SwapCacheLookup {
        let f = swap.cached[Int(s)].load(ordering: .acquiring)
        guard f != 0 else { return .none }
        guard tryPin(f) else { return .busy }  // being freed: the entry goes soon
        guard tryLockPage(f) else { put(f, cpu); return .busy }
        if frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.swapCache != 0
            && frames[Int(f)].swapSlot.load(ordering: .relaxed) == s {
            return .cached(f)
        }
        unlockPage(f)
        put(f, cpu)
        return .busy
    }

    /// Empties the swap cache (teardown: after every process exited, no
    /// swap entry is left and every cached page can go).
    func dropSwapCache(_ cpu: CPU) {
        for s in 1...config.swapSlots {
            let f = swap.cached[Int(s)].load(ordering: .acquiring)
            guard f != 0, tryPin(f) else { continue }
            lockPage(f)
            if frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.swapCache != 0 {
                swapCacheRemove(f, cpu)
                unlockPage(f)
                put(f, cpu)  // the cache's reference
            } else {
                unlockPage(f)
            }
            put(f, cpu)  // our pin
        }
    }
}
