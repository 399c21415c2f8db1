/// Page reclaim: a clock scan over the frame table, young-bit aging through
/// the rmap, and swap-out.
///
/// Locks: page lock (trylock: reclaim never waits for one) -> RCU read side
/// -> ptl (trylock). A failed trylock leaves the page mapped there; that is
/// not a bug, so completeness is only checked for walks without failures.
///
/// Swap-out order: every PTE becomes a swap entry first, the content word is
/// copied into the slot when the first one is converted (from then on the
/// page is read-only everywhere and pinned, so no write can follow), and the
/// frame is freed when the last mapping and our pin are gone.
extension Kernel {
    /// Reclaim over every node in turn, `scan` frames of each (tests and
    /// benchmarks); returns how many were freed (stops at `target`).
    @discardableResult
    func reclaim(_ cpu: CPU, scan: Int, target: Int) -> Int {
        var freed = 0
        for n in 0..<frameNodes.count where freed < target {
            freed += reclaim(cpu, node: n, scan: min(scan, frameNodes.stretch(n).count), target: target - freed)
        }
        return freed
    }

    /// Scans up to `scan` frames of memory node `node` (its own clock);
    /// returns how many it freed (stops at `target`).
    @discardableResult
    func reclaim(_ cpu: CPU, node: Int, scan: Int, target: Int) -> Int {
        var freed = 0
        let stretch = frameNodes.stretch(node % frameNodes.count)
        let n = UInt32(stretch.count)
        // Claim the whole stretch of the clock at once: one shared-line
        // update per scan instead of one per frame.
        let first = frameNodes.advanceClock(node % frameNodes.count, by: scan)
        for d in 0..<UInt32(truncatingIfNeeded: scan) {
            let f = stretch.first + ((first &+ d) % n)
            cpu.pointee.count(.reclaimScanned)
            let fl = frames[Int(f)].flags.load(ordering: .relaxed)
            guard fl & FrameFlags.anon != 0 && fl & FrameFlags.free == 0 else { continue }
            guard isolate(f, cpu) else { continue }
            let done = shrink(f, cpu)
            putBack(f, cpu)
            if done { freed += 1; if freed >= target { break } }
        }
        return freed
    }

    /// The scanners' isolate step (reclaim, migration, and the tests that
    /// migrate a page they chose): pin a frame that may be freed meanwhile,
    /// trylock its page lock, then re-check under the lock that it is still
    /// an anonymous page with at least one mapping. True when `f` is pinned,
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
        if frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.anon != 0
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

    /// Ages or swaps out one locked, pinned page. True when it was unmapped
    /// everywhere (our put then frees it).
    private func shrink(_ f: UInt32, _ cpu: CPU) -> Bool {
        var referenced = false
        _ = rmapWalk(f, trylock: true, cpu) { _, _, i in
            let pte = PTE(raw: ptes[i])
            if pte.isPresent && pte.target == f && pte.isYoung {
                ptes[i] = pte.with(young: false).raw
                referenced = true
            }
        }
        if referenced {
            frames[Int(f)].flags.bitwiseOr(FrameFlags.referenced, ordering: .relaxed)
            cpu.pointee.count(.reclaimReferenced)
            return false
        }
        let s = cacheAlloc(.swapSlots, cpu)
        guard s != 0 else { cpu.pointee.count(.swapFull); return false }
        swapVpn[Int(s)].store(frames[Int(f)].index.load(ordering: .relaxed), ordering: .relaxed)
        // Our own reference on the slot for the walk: without it, a swap-in
        // of the first converted PTE would free the slot while later PTEs
        // are still being pointed at it.
        swapCount[Int(s)].store(1, ordering: .relaxed)
        var written = false
        let stats = rmapWalk(f, trylock: true, cpu) { mm, vpn, i in
            let pte = PTE(raw: ptes[i])
            guard pte.isPresent && pte.target == f else { return }
            if !written {
                swapContent[Int(s)].store(frames[Int(f)].content.load(ordering: .relaxed), ordering: .releasing)
                written = true
            }
            swapCount[Int(s)].add(1, ordering: .relaxed)
            raceWindow(cpu)  // read-to-write window: only the ptl closes it
            ptes[i] = PTE.swap(s).raw  // present -> swap: leaf use count unchanged
            mapDec(f, cpu)
            put(f, cpu)  // cannot free: we hold a pin
        }
        swapPut(s, cpu)  // frees the slot if no PTE points at it any more
        let left = frames[Int(f)].mapcount.load(ordering: .relaxed)
        if left != 0 && stats.trylockFailed == 0 && checks != .off {
            report(.incompleteWalk, frame: f, vpn: frames[Int(f)].index.load(ordering: .relaxed), cpu: cpu,
                   "swap-out walk visited \(stats.visited) mms and left \(left) mappings")
        }
        if left == 0 { cpu.pointee.count(.swapOut); return true }
        return false
    }
}
