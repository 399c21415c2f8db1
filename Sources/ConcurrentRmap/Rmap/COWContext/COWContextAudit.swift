import Synchronization

/// The COW context scheme's audit (all operations paused), leak check and
/// metadata.
extension COWContextRmap {
    func audit<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        let n = slab.capacity
        func live(_ c: UInt32) -> Bool { slab.contains(c) && slab.load(c) == SlotState.live }
        // Expected memory references: tree membership, pages, a root's
        // other contexts.
        var expectRefs = [Int32](repeating: 0, count: n + 1)
        for c in 1...n where slab.load(UInt32(c)) == SlotState.live {
            let x = ctx(UInt32(c))
            if x.pointee.linked.load(ordering: .relaxed) != 0 { expectRefs[c] += 1 }
            let root = x.pointee.root.load(ordering: .relaxed)
            if root != UInt32(c) {
                if live(root) { expectRefs[Int(root)] += 1 } else {
                    report(Violation(kind: .lifetime, detail: "COW context \(c) names root \(root), which is not live"))
                }
            }
        }
        for m in 1...k.config.mmSlots {
            let c = own[m].pointee.load(ordering: .relaxed)
            guard c != 0 else { continue }
            if !k.spaces.isLiveOrDying(m) {
                report(Violation(kind: .groupList, mm: UInt32(m), detail: "a free mm slot still names COW context \(c)"))
                continue
            }
            guard live(c) else {
                report(Violation(kind: .lifetime, mm: UInt32(m), detail: "mm's COW context \(c) is not live"))
                continue
            }
            if ctx(c).pointee.mm.load(ordering: .relaxed) != UInt32(m) || ctx(c).pointee.linked.load(ordering: .relaxed) == 0 {
                report(Violation(kind: .groupList, mm: UInt32(m), detail: "mm's COW context \(c) names mm \(ctx(c).pointee.mm.load(ordering: .relaxed)) (linked \(ctx(c).pointee.linked.load(ordering: .relaxed)))"))
            }
        }
        for f in 1...k.config.frames {
            let fl = k.frames[f].flags.load(ordering: .relaxed)
            guard fl & FrameFlags.anon != 0 && fl & FrameFlags.free == 0 else { continue }
            let c = k.frames[f].mapping.load(ordering: .relaxed)
            guard live(c) else {
                report(Violation(kind: .lifetime, frame: UInt32(f), detail: "page.mapping names COW context \(c), which is not live"))
                continue
            }
            expectRefs[Int(c)] += 1
        }
        for c in 1...n where slab.load(UInt32(c)) == SlotState.live {
            let h = UInt32(c)
            let x = ctx(h)
            let linked = x.pointee.linked.load(ordering: .relaxed) != 0
            let mm = x.pointee.mm.load(ordering: .relaxed)
            let parent = x.pointee.parent.load(ordering: .relaxed)
            let root = x.pointee.root.load(ordering: .relaxed)
            if mm != 0 && (!k.mms.contains(mm) || own[Int(mm)].pointee.load(ordering: .relaxed) != h) {
                report(Violation(kind: .groupList, detail: "COW context \(c) names mm \(mm), whose context is another"))
            }
            if (parent == 0) != (root == h) {
                report(Violation(kind: .groupList, detail: "COW context \(c): parent \(parent) but root \(root)"))
            }
            if linked && parent != 0 {
                if !live(parent) || ctx(parent).pointee.linked.load(ordering: .relaxed) == 0 {
                    report(Violation(kind: .groupList, detail: "COW context \(c) is in the tree under context \(parent), which is not"))
                } else if ctx(parent).pointee.root.load(ordering: .relaxed) != root
                            || ctx(parent).pointee.depth.load(ordering: .relaxed) + 1 != x.pointee.depth.load(ordering: .relaxed) {
                    report(Violation(kind: .groupList, detail: "COW context \(c): root or depth disagrees with parent \(parent)"))
                }
            }
            // Children: back links, tail, parent, membership.
            var children: Int32 = 0
            var last: UInt32 = 0
            var child = x.pointee.firstChild.load(ordering: .relaxed)
            while child != 0 && children <= Int32(n) {
                guard live(child) else {
                    report(Violation(kind: .lifetime, detail: "COW context \(c) lists child \(child), which is not live"))
                    break
                }
                let y = ctx(child)
                if y.pointee.parent.load(ordering: .relaxed) != h || y.pointee.linked.load(ordering: .relaxed) == 0 {
                    report(Violation(kind: .groupList, detail: "COW context \(c) lists child \(child) of parent \(y.pointee.parent.load(ordering: .relaxed)) (linked \(y.pointee.linked.load(ordering: .relaxed)))"))
                }
                if y.pointee.prev.load(ordering: .relaxed) != last {
                    report(Violation(kind: .groupList, detail: "COW context \(c): child \(child)'s back link broken"))
                }
                last = child
                children += 1
                child = y.pointee.next.load(ordering: .relaxed)
            }
            if last != x.pointee.lastChild.load(ordering: .relaxed) {
                report(Violation(kind: .groupList, detail: "COW context \(c): last child is \(x.pointee.lastChild.load(ordering: .relaxed)), list ends at \(last)"))
            }
            let users = x.pointee.users.load(ordering: .relaxed)
            let expectUsers = children + (mm != 0 ? 1 : 0)
            if users != expectUsers || (linked != (users > 0)) {
                report(Violation(kind: .groupList, detail: "COW context \(c) has \(users) users, \(expectUsers) counted (mm \(mm), \(children) children), linked \(linked)"))
            }
            // Remap records: within the bound, well formed, none pending
            // (no mremap is under way), the fork bound within the parent's.
            let nrec = x.pointee.records.load(ordering: .relaxed)
            if Int(nrec) > COWRecord.max {
                report(Violation(kind: .groupList, detail: "COW context \(c) has \(nrec) remap records, more than \(COWRecord.max)"))
            } else {
                for r in 0..<Int(nrec) {
                    let w = record(h, r)
                    let old = w[0].load(ordering: .relaxed), new = w[1].load(ordering: .relaxed)
                    let meta = w[2].load(ordering: .relaxed)
                    let pages = meta & 0xffff_ffff, state = meta >> 32
                    if pages == 0 || (old < new + pages && new < old + pages) || state > COWRecord.cancelled {
                        report(Violation(kind: .groupList, detail: "COW context \(c) remap record \(r) malformed: 0x\(String(old, radix: 16)) -> 0x\(String(new, radix: 16)), \(pages) pages, state \(state)"))
                    } else if state == COWRecord.pending {
                        report(Violation(kind: .groupList, detail: "COW context \(c) remap record \(r) still pending with no mremap under way"))
                    }
                }
            }
            // Linked only: a detached context's parent slot may be reused.
            if linked && parent != 0 && live(parent) && x.pointee.forkRecords.load(ordering: .relaxed) > ctx(parent).pointee.records.load(ordering: .relaxed) {
                report(Violation(kind: .groupList, detail: "COW context \(c) forked after \(x.pointee.forkRecords.load(ordering: .relaxed)) remap records of its parent, which has fewer"))
            }
            let rc = x.pointee.refcount.load(ordering: .relaxed)
            if rc != expectRefs[c] {
                report(Violation(kind: .groupList, detail: "COW context \(c) refcount \(rc), expected \(expectRefs[c]) (tree, pages, contexts under a root)"))
            }
        }
    }

    func leakCheck<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        let left = slab.pool.inUse - k.caches.cachedCount(.contexts)
        if left != 0 {
            report(Violation(kind: .leak, detail: "\(left) COW contexts still allocated"))
        }
    }

    /// Live contexts, their parent links, the deepest tree (generations
    /// from a root, counted in contexts) and the bytes they take.
    func metadata<P>(_ k: Kernel<Self, P>) -> RmapMetadata {
        var m = RmapMetadata()
        for c in 1...slab.capacity where slab.load(UInt32(c)) == SlotState.live {
            m.contexts += 1
            if ctx(UInt32(c)).pointee.parent.load(ordering: .relaxed) != 0 { m.links += 1 }
            m.maxChain = max(m.maxChain, Int(ctx(UInt32(c)).pointee.depth.load(ordering: .relaxed)) + 1)
        }
        m.bytes = m.contexts * COWContextRmap.contextBytes
        return m
    }
}
