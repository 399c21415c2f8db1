import Synchronization

/// The anon_vma_chain scheme's audit, leak check and metadata count, with
/// the world stopped: chains and sets agree both ways; roots, parents and
/// the counts (refcount, num_children, num_active_vmas) match a recount.
/// That every mapped page is reachable by its walk is invariant 1
/// (`locationOK`), checked for every PTE by the machine's audit.
extension AnonVMAChainRmap {
    func audit<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        let nav = avSlab.capacity, navc = avcSlab.capacity
        var active = [Int32](repeating: 0, count: nav + 1)
        var onChain = [Bool](repeating: false, count: navc + 1)
        // Chains of the live VMAs of live mms.
        for m in 1...k.config.mmSlots where k.spaces.isLiveOrDying(m) {
            for t in 0..<MachineConfig.maxVMAs {
                let v = k.vmaHandle(UInt32(m), t)
                guard v != 0, k.spaces.vmas.contains(v) else { continue }
                let own = k.vmaCtx(v)
                if own != 0 {
                    if !avSlab.contains(own) || avSlab.load(own) != SlotState.live {
                        report(Violation(kind: .lifetime, mm: UInt32(m), detail: "VMA \(v) has anon_vma \(own), which is not live"))
                        continue
                    }
                    active[Int(own)] += 1
                }
                var c = chains[Int(v)].head.load(ordering: .relaxed)
                var length: Int32 = 0, newer: UInt32 = 0, root: UInt32 = 0, hasOwn = false
                while c != 0 && Int(length) <= navc {
                    guard avcSlab.contains(c), avcSlab.load(c) == SlotState.live else {
                        report(Violation(kind: .lifetime, mm: UInt32(m), detail: "VMA \(v) chain reaches AVC \(c), which is not live"))
                        break
                    }
                    onChain[Int(c)] = true
                    let av = avcs[Int(c)].anonVma.load(ordering: .relaxed)
                    if avcs[Int(c)].vma.load(ordering: .relaxed) != v {
                        report(Violation(kind: .groupList, mm: UInt32(m), detail: "AVC \(c) on VMA \(v)'s chain names VMA \(avcs[Int(c)].vma.load(ordering: .relaxed))"))
                    }
                    if avcs[Int(c)].vmaPrev.load(ordering: .relaxed) != newer {
                        report(Violation(kind: .groupList, mm: UInt32(m), detail: "VMA \(v) chain: back link of AVC \(c) broken"))
                    }
                    if !avSlab.contains(av) || avSlab.load(av) != SlotState.live {
                        report(Violation(kind: .lifetime, mm: UInt32(m), detail: "VMA \(v) chain names anon_vma \(av), which is not live"))
                    } else {
                        let r = rootOf(av)
                        if root == 0 { root = r } else if r != root {
                            report(Violation(kind: .groupList, mm: UInt32(m), detail: "VMA \(v) chain spans two trees (roots \(root) and \(r))"))
                        }
                    }
                    if av == own { hasOwn = true }
                    newer = c
                    length += 1
                    c = avcs[Int(c)].vmaNext.load(ordering: .relaxed)
                }
                if newer != chains[Int(v)].tail.load(ordering: .relaxed) || length != chains[Int(v)].length.load(ordering: .relaxed) {
                    report(Violation(kind: .groupList, mm: UInt32(m), detail: "VMA \(v) chain: \(length) AVCs ending at \(newer), head says \(chains[Int(v)].length.load(ordering: .relaxed)) ending at \(chains[Int(v)].tail.load(ordering: .relaxed))"))
                }
                if own != 0 && !hasOwn {
                    report(Violation(kind: .groupList, mm: UInt32(m), detail: "VMA \(v) is not in the set of its own anon_vma \(own)"))
                }
                if own == 0 && length != 0 {
                    report(Violation(kind: .groupList, mm: UInt32(m), detail: "VMA \(v) has a chain of \(length) but no anon_vma"))
                }
            }
        }
        // Sets, and the recount of every anon_vma's counts.
        var children = [Int32](repeating: 0, count: nav + 1)
        var refs = [Int32](repeating: 0, count: nav + 1)
        for av in 1...nav where avSlab.load(UInt32(av)) == SlotState.live {
            let a = anonVMAs[av]
            let root = a.pointee.root.load(ordering: .relaxed), parent = a.pointee.parent.load(ordering: .relaxed)
            guard avSlab.contains(root), avSlab.contains(parent), avSlab.load(root) == SlotState.live, avSlab.load(parent) == SlotState.live else {
                report(Violation(kind: .lifetime, detail: "anon_vma \(av) has root \(root) and parent \(parent), not both live"))
                continue
            }
            if rootOf(parent) != root || (root == UInt32(av)) != (parent == UInt32(av)) {
                report(Violation(kind: .groupList, detail: "anon_vma \(av): root \(root) and parent \(parent) (root \(rootOf(parent))) disagree"))
            }
            if root != UInt32(av) { refs[Int(root)] += 1 }
            var count: Int32 = 0, last: UInt32 = 0
            var c = a.pointee.first.load(ordering: .relaxed)
            while c != 0 && Int(count) <= navc {
                guard avcSlab.contains(c), avcSlab.load(c) == SlotState.live else {
                    report(Violation(kind: .lifetime, detail: "anon_vma \(av) set reaches AVC \(c), which is not live"))
                    break
                }
                if avcs[Int(c)].anonVma.load(ordering: .relaxed) != UInt32(av) {
                    report(Violation(kind: .groupList, detail: "AVC \(c) in anon_vma \(av)'s set names anon_vma \(avcs[Int(c)].anonVma.load(ordering: .relaxed))"))
                }
                if !onChain[Int(c)] {
                    report(Violation(kind: .groupList, detail: "AVC \(c) in anon_vma \(av)'s set is on no live VMA's chain (VMA \(avcs[Int(c)].vma.load(ordering: .relaxed)))"))
                }
                if avcs[Int(c)].prev.load(ordering: .relaxed) != last {
                    report(Violation(kind: .groupList, detail: "anon_vma \(av) set: back link of AVC \(c) broken"))
                }
                last = c
                count += 1
                c = avcs[Int(c)].next.load(ordering: .relaxed)
            }
            if last != a.pointee.last.load(ordering: .relaxed) || count != a.pointee.count.load(ordering: .relaxed) {
                report(Violation(kind: .groupList, detail: "anon_vma \(av) set: \(count) AVCs ending at \(last), count says \(a.pointee.count.load(ordering: .relaxed)) ending at \(a.pointee.last.load(ordering: .relaxed))"))
            }
            if count == 0 {
                report(Violation(kind: .leak, detail: "anon_vma \(av) has an empty set but is live"))
            } else {
                refs[av] += 1
                children[Int(parent)] += 1
            }
        }
        for av in 1...nav where avSlab.load(UInt32(av)) == SlotState.live {
            let a = anonVMAs[av]
            let nc = a.pointee.numChildren.load(ordering: .relaxed), na = a.pointee.numActiveVMAs.load(ordering: .relaxed)
            let rc = a.pointee.refcount.load(ordering: .relaxed)
            if nc != children[av] || na != active[av] || rc != refs[av] {
                report(Violation(kind: .groupList, detail: "anon_vma \(av): num_children \(nc), num_active_vmas \(na), refcount \(rc); recount \(children[av]), \(active[av]), \(refs[av])"))
            }
        }
        // Every AVC allocated is on a live VMA's chain.
        for c in 1...navc where avcSlab.load(UInt32(c)) == SlotState.live && !onChain[c] {
            report(Violation(kind: .leak, detail: "AVC \(c) is live but on no live VMA's chain"))
        }
        // Mapped pages name a live anon_vma (an unmapped swap-cache page may
        // name a dead one: it takes a new one when mapped again).
        for f in 1...k.config.frames {
            let fl = k.frames[f].flags.load(ordering: .relaxed)
            guard fl & FrameFlags.anon != 0 && fl & FrameFlags.free == 0,
                  k.frames[f].mapcount.load(ordering: .relaxed) > 0 else { continue }
            let av = k.frames[f].mapping.load(ordering: .relaxed)
            if !avSlab.contains(av) || avSlab.load(av) != SlotState.live {
                report(Violation(kind: .lifetime, frame: UInt32(f), detail: "mapped page names anon_vma \(av), which is not live"))
            }
        }
    }

    func leakCheck<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        let left = avSlab.pool.inUse - k.caches.cachedCount(.contexts)
        if left != 0 { report(Violation(kind: .leak, detail: "\(left) anon_vmas still allocated")) }
        if avcSlab.pool.inUse != 0 { report(Violation(kind: .leak, detail: "\(avcSlab.pool.inUse) anon_vma_chains still allocated")) }
    }

    /// Live anon_vmas and AVCs, the longest chain, and their slab bytes
    /// (what Android measures). Counted by scanning: statistics only.
    func metadata<P>(_ k: Kernel<Self, P>) -> RmapMetadata {
        var m = RmapMetadata()
        for av in 1...avSlab.capacity where avSlab.load(UInt32(av)) == SlotState.live { m.contexts += 1 }
        for c in 1...avcSlab.capacity where avcSlab.load(UInt32(c)) == SlotState.live { m.links += 1 }
        for v in 1...s.pointee.vmaCapacity where k.spaces.vmas.load(UInt32(v)) == SlotState.live {
            m.maxChain = max(m.maxChain, Int(chains[v].length.load(ordering: .relaxed)))
        }
        m.bytes = m.contexts * AnonVMAChainRmap.anonVMABytes + m.links * AnonVMAChainRmap.avcBytes
        return m
    }
}
