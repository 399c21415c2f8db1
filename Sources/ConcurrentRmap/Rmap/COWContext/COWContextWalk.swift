import Synchronization

/// The rmap walk of the COW context scheme: from the page's context over
/// its subtree, each context's live mm at `page.index`.
extension COWContextRmap {
    /// Lookup under RCU: `page.mapping` (pinned by the page, which the
    /// walker pins), its root; then the root's tree lock for reading, which
    /// protects the subtree (the section ends), or, under the RCU-only walk,
    /// the section lasts the whole walk and no lock is taken.
    ///
    /// The subtree is walked depth first in fork order without a stack:
    /// down to the first child, else on to the next sibling, else up until
    /// an ancestor has one. A child joins at its parent's tail before fork
    /// copies into it, so a walker that reaches the parent's mm after the
    /// copy meets it below. Returns the contexts visited.
    @inline(__always)
    func walk<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU, _ visit: (UInt32, UInt64) -> Void) -> Int {
        let fr = k.frames + Int(frame)
        k.walkReadLock(cpu)
        var inSection = true
        defer { if inSection { k.walkReadUnlock(cpu) } }
        let c = fr.pointee.mapping.load(ordering: .acquiring)
        let vpn = fr.pointee.index.load(ordering: .acquiring)
        let epoch = fr.pointee.remapEpoch.load(ordering: .acquiring)
        guard c != 0 else { return 0 }
        guard slab.contains(c) else {
            k.report(.lifetime, frame: frame, cpu: cpu, "page.mapping names COW context \(c), outside 1...\(slab.capacity)")
            return 0
        }
        let root = ctx(c).pointee.root.load(ordering: .relaxed)
        guard slab.contains(root) else {
            k.report(.lifetime, frame: frame, cpu: cpu, "COW context \(c) names root \(root), outside 1...\(slab.capacity)")
            return 0
        }
        k.raceWindow(cpu)  // between reading page.mapping and locking the tree
        if walkLocked { readLockTree(k, root) }
        defer { if walkLocked { unlockTree(k, root) } }
        let checked = k.checks != .off
        let generation = slab.generation[Int(c)]  // plain read: see SlotFreeTarget
        cpu.pointee.lastGeneration = generation
        if checked && slab.load(c) == SlotState.free {
            k.report(.lifetime, frame: frame, vpn: vpn, cpu: cpu, "page.mapping names freed COW context \(c)")
        }
        if walkLocked {
            k.walkReadUnlock(cpu)
            inSection = false
        }
        let ctxs = self.ctxs
        let limit = slab.capacity
        let mmSlots = k.mms.capacity
        let depthOne = k.inject == .cowWalkDepthOne
        // No record in the tree: every mapping is at page.index (the page
        // lock orders a record's publication before any move of this page).
        let remapped = ctxs[Int(root)].pointee.treeRecords.load(ordering: .acquiring) != 0
        var visited = 0
        var n = c
        walking: while true {
            visited += 1
            if visited == 1 { k.longReaderDelay(cpu) }
            if visited > limit {
                k.report(.groupList, frame: frame, cpu: cpu, "COW context \(c) subtree does not end (cycle)")
                break
            }
            if checked && slab.load(n) == SlotState.free {
                k.report(.lifetime, frame: frame, cpu: cpu, "COW context \(c) subtree reaches freed context \(n)")
                break
            }
            let mm = ctxs[Int(n)].pointee.mm.load(ordering: .acquiring)
            if mm != 0 {
                guard mm >= 1 && Int(mm) <= mmSlots else {
                    k.report(.groupList, frame: frame, cpu: cpu, "COW context \(n) names mm \(mm), outside 1...\(mmSlots)")
                    break
                }
                if remapped {
                    let (a, b) = address(k, context: c, epoch: epoch, index: vpn, in: n)
                    visit(mm, a)
                    if b != a { visit(mm, b) }  // a pending record: either place
                } else {
                    visit(mm, vpn)
                }
            }
            // Down, unless the planted bug stops below the first level.
            let first = ctxs[Int(n)].pointee.firstChild.load(ordering: .acquiring)
            if first != 0 && !(depthOne && n != c) {
                guard slab.contains(first) else {
                    k.report(.groupList, frame: frame, cpu: cpu, "COW context \(n) links to child \(first), outside 1...\(limit)")
                    break
                }
                n = first
                continue
            }
            // Across, or up until an ancestor below the start has a sibling.
            while n != c {
                let next = ctxs[Int(n)].pointee.next.load(ordering: .acquiring)
                if next != 0 {
                    guard slab.contains(next) else {
                        k.report(.groupList, frame: frame, cpu: cpu, "COW context \(n) links to sibling \(next), outside 1...\(limit)")
                        break walking
                    }
                    n = next
                    continue walking
                }
                n = ctxs[Int(n)].pointee.parent.load(ordering: .relaxed)
                guard slab.contains(n) else {
                    k.report(.groupList, frame: frame, cpu: cpu, "COW context subtree of \(c) climbs to context \(n), outside 1...\(limit)")
                    break walking
                }
            }
            break
        }
        // Freed while we walked from it: the page's reference did not pin it.
        if checked && slab.generation[Int(c)] != generation {
            k.report(.lifetime, frame: frame, vpn: vpn, cpu: cpu, "COW context \(c) was freed during an rmap walk over it")
        }
        return visited
    }

    /// Is context `x` (an mm's own) `c` or below it? Climbs `x`'s ancestry,
    /// which its linked contexts keep allocated.
    @inline(__always) func inSubtree(_ x: UInt32, of c: UInt32) -> Bool {
        guard c != 0 else { return false }
        var y = x
        var steps = 0
        while y != 0 && steps <= slab.capacity {
            if y == c { return true }
            guard slab.contains(y) else { return false }
            y = ctxs[Int(y)].pointee.parent.load(ordering: .relaxed)
            steps += 1
        }
        return false
    }

    /// Invariant 1: the mm's context is in the subtree of the page's, and
    /// the page's address there (its index through the remap records, as
    /// the walk computes it) is `vpn`. Under the mm's ptl and mmap lock, or
    /// with the world stopped.
    @inline(__always) func locationOK<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64) -> Bool {
        let x = context(of: mm)
        guard inSubtree(x, of: k.frames[Int(frame)].mapping.load(ordering: .relaxed)) else { return false }
        let (a, b) = address(k, frame: frame, in: x)
        return a == vpn || b == vpn
    }

    // MARK: Remap records

    /// The three words of record `r` of context `c`.
    @inline(__always) func record(_ c: UInt32, _ r: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        s.pointee.records + (Int(c) * COWRecord.max + r) * COWRecord.words
    }

    /// The address of `frame` in the mm of context `x` (in the subtree of
    /// the page's context): see `address(context:epoch:index:in:)`.
    @inline(__always) func address<P>(_ k: Kernel<Self, P>, frame: UInt32, in x: UInt32) -> (UInt64, UInt64) {
        let fr = k.frames + Int(frame)
        let c = fr.pointee.mapping.load(ordering: .acquiring)
        let vpn = fr.pointee.index.load(ordering: .acquiring)
        guard c != 0, slab.contains(c), ctxs[Int(ctx(c).pointee.root.load(ordering: .relaxed))].pointee.treeRecords.load(ordering: .acquiring) != 0 else {
            return (vpn, vpn)
        }
        return address(k, context: c, epoch: fr.pointee.remapEpoch.load(ordering: .acquiring), index: vpn, in: x)
    }

    /// The address, in the mm of context `x`, of a page of context `c` at
    /// `index` with remap epoch `epoch`: `c`'s records from the epoch on,
    /// then, down the path to `x`, each context's records; every context's
    /// records only up to the count its child on the path saw at fork (later
    /// ones moved the parent alone). The second address skips pending
    /// records (a move under way: the PTE may be at either). Recursion
    /// climbs `x`'s ancestry: O(depth below `c`) per call, no allocation.
    func address<P>(_ k: Kernel<Self, P>, context c: UInt32, epoch: UInt32, index: UInt64, in x: UInt32) -> (UInt64, UInt64) {
        applied(k, c, epoch, index, x, upper: UInt32.max, steps: 0)
    }

    private func applied<P>(_ k: Kernel<Self, P>, _ c: UInt32, _ epoch: UInt32, _ index: UInt64, _ x: UInt32,
                            upper: UInt32, steps: Int) -> (UInt64, UInt64) {
        var from: UInt32 = 0
        var a = index, b = index
        if x == c {
            from = k.inject == .cowRemapIgnoresEpoch ? 0 : epoch
        } else {
            let p = ctxs[Int(x)].pointee.parent.load(ordering: .relaxed)
            guard p != 0, slab.contains(p), steps <= slab.capacity else { return (index, index) }  // not below c
            let bound = k.inject == .cowRemapNoForkBound ? UInt32.max : ctxs[Int(x)].pointee.forkRecords.load(ordering: .relaxed)
            (a, b) = applied(k, c, epoch, index, p, upper: bound, steps: steps + 1)
        }
        let to = min(upper, ctxs[Int(x)].pointee.records.load(ordering: .acquiring))
        var r = from
        while r < to {
            let w = record(x, Int(r))
            let meta = w[2].load(ordering: .acquiring)
            let state = meta >> 32
            if state != COWRecord.cancelled {
                let old = w[0].load(ordering: .relaxed), new = w[1].load(ordering: .relaxed)
                let pages = meta & 0xffff_ffff
                if a &- old < pages { a = new &+ (a &- old) }
                if state == COWRecord.done && b &- old < pages { b = new &+ (b &- old) }
            }
            r += 1
        }
        return (a, b)
    }
}
