import Synchronization

/// The rmap walk of the anon_vma_chain scheme: folio_lock_anon_vma_read,
/// then rmap_walk_anon over the page's anon_vma's set of AVCs.
extension AnonVMAChainRmap {
    /// The lookup: inside a read-side section, read `page.mapping` (the
    /// anon_vma may be freed and reused at any time: its slot only waits for
    /// a grace period), its root, take the root's lock for reading, and
    /// re-check that the page is still mapped: a mapped page keeps a VMA in
    /// its anon_vma's set, which keeps the anon_vma and its root alive. The
    /// lock then protects the walk and the section ends. Under the RCU-only
    /// walk (a what-if: no kernel walked the chain without the lock) the
    /// section lasts the whole walk instead.
    ///
    /// Inlined into each caller so that the visit closure is inlined too.
    @inline(__always)
    func walk<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU, _ visit: (UInt32, UInt64) -> Void) -> Int {
        let fr = k.frames + Int(frame)
        k.walkReadLock(cpu)
        var inSection = true
        defer { if inSection { k.walkReadUnlock(cpu) } }
        let av = fr.pointee.mapping.load(ordering: .acquiring)
        let index = fr.pointee.index.load(ordering: .acquiring)
        guard av != 0 else { return 0 }
        guard avSlab.contains(av) else {
            k.report(.lifetime, frame: frame, cpu: cpu, "page.mapping names anon_vma \(av), outside 1...\(avSlab.capacity)")
            return 0
        }
        let root = rootOf(av)
        guard avSlab.contains(root) else {
            k.report(.lifetime, frame: frame, cpu: cpu, "anon_vma \(av) names root \(root), outside 1...\(avSlab.capacity)")
            return 0
        }
        k.raceWindow(cpu)  // between reading page.mapping and locking the root
        let locked = walkLocked && k.inject != .avcWalkNoRootLock
        if locked { readLockRoot(k, root) }
        defer { if locked { unlockRoot(k, root) } }
        let stateAtLookup = avSlab.load(av)
        let generation = avSlab.generation[Int(av)]  // plain read: see SlotFreeTarget
        if fr.pointee.mapcount.load(ordering: .acquiring) == 0 { return 0 }
        let checked = k.checks != .off
        if checked && stateAtLookup != SlotState.live {
            k.report(.lifetime, frame: frame, vpn: index, cpu: cpu,
                     "rmap walk uses anon_vma \(av), which was \(SlotState.name(stateAtLookup)) when looked up")
        }
        if checked && rootOf(av) != root {
            k.report(.lifetime, frame: frame, vpn: index, cpu: cpu, "anon_vma \(av) changed its root from \(root) during the lookup")
        }
        // The lock protects the walk now; the planted bug holds neither.
        if walkLocked || k.inject == .avcWalkNoRootLock {
            k.walkReadUnlock(cpu)
            inSection = false
        }
        var visited = 0
        let vmaSlots = k.spaces.vmas.capacity
        let vmaStates = k.spaces.vmas
        let avcs = self.avcs
        let avcStates = avcSlab
        let limit = avcSlab.capacity
        var c = anonVMAs[Int(av)].pointee.first.load(ordering: .acquiring)
        while c != 0 {
            guard avcStates.contains(c) else {
                k.report(.groupList, frame: frame, cpu: cpu, "anon_vma \(av) set links to AVC \(c), outside 1...\(limit)")
                break
            }
            if checked && avcStates.load(c) == SlotState.free {
                k.report(.lifetime, frame: frame, cpu: cpu, "anon_vma \(av) set reaches freed AVC \(c)")
                break
            }
            let vma = avcs[Int(c)].vma.load(ordering: .acquiring)
            guard vma >= 1 && Int(vma) <= vmaSlots else {
                k.report(.groupList, frame: frame, cpu: cpu, "AVC \(c) of anon_vma \(av) names VMA \(vma), outside 1...\(vmaSlots)")
                break
            }
            visited += 1
            if visited == 1 { k.longReaderDelay(cpu) }
            if checked && vmaStates.load(vma) == SlotState.free {
                k.report(.lifetime, frame: frame, cpu: cpu, "anon_vma \(av) set reaches freed VMA \(vma)")
                break
            }
            if let at = k.vmaAddress(vma, index: index) { visit(at.mm, at.vpn) }
            c = avcs[Int(c)].next.load(ordering: .acquiring)
            if visited > limit {
                k.report(.groupList, frame: frame, cpu: cpu, "anon_vma \(av) set does not end (cycle)")
                break
            }
        }
        // Freed while we walked it: its free did not wait for the lock or a
        // grace period.
        if checked && avSlab.generation[Int(av)] != generation {
            k.report(.lifetime, frame: frame, vpn: index, cpu: cpu, "anon_vma \(av) was freed during an rmap walk over it")
        }
        return visited
    }
}
