/// i_mmap as an interval tree (`--i-mmap tree`): each inode's VMAs keyed
/// by their file range [pgoff, pgoff + pages), each node augmented by the
/// largest range end in its subtree, as Linux's vma_interval_tree (3.7;
/// prio_tree before it, 2.6.7). A walk for page index i descends only into
/// subtrees whose largest end reaches i and stops at the first node that
/// starts beyond it: about log M + k nodes for k covering VMAs out of M,
/// where the list visits all M.
///
/// Balance: a treap (priority a hash of the VMA handle, max-heap ordered)
/// rather than Linux's red-black tree: the same O(log M) expected depth and
/// the same augmentation, with rotations the only restructuring. Equal
/// starts go right, so a VMA inserted later (fork's child, mremap's copy,
/// split's upper half) comes after the VMAs it copies in the walk's order,
/// the guarantee the list gets from linking at its tail.
///
/// Nodes live in the VMA records (`tLeft`, `tRight`, `tParent`, `tLast`,
/// `tMax`): no allocation. Every change is under the inode's i_mmap lock
/// for writing; walks hold it for reading. A resize (split, merge, tail
/// munmap) keeps the start and recomputes the maxima up to the root under
/// the same lock (Linux removes and re-inserts in vma_adjust).
extension Kernel {
    @inline(__always) func tLeft(_ v: UInt32) -> UInt32 { vmaRecord(v).pointee.tLeft.load(ordering: .relaxed) }
    @inline(__always) func tRight(_ v: UInt32) -> UInt32 { vmaRecord(v).pointee.tRight.load(ordering: .relaxed) }
    @inline(__always) func tParent(_ v: UInt32) -> UInt32 { vmaRecord(v).pointee.tParent.load(ordering: .relaxed) }
    @inline(__always) func tStart(_ v: UInt32) -> UInt64 { vmaRecord(v).pointee.pgoff.load(ordering: .relaxed) }
    @inline(__always) func tLast(_ v: UInt32) -> UInt64 { vmaRecord(v).pointee.tLast.load(ordering: .relaxed) }
    @inline(__always) func tMax(_ v: UInt32) -> UInt64 { vmaRecord(v).pointee.tMax.load(ordering: .relaxed) }

    /// The treap priority of VMA `v`: a fixed hash of its handle.
    @inline(__always) static func treePriority(_ v: UInt32) -> UInt64 {
        var z = UInt64(v) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (z ^ (z >> 31)) | 1
    }

    /// The augmented value of `v` from its own end and its children's maxima.
    @inline(__always) func treeSubtreeMax(_ v: UInt32) -> UInt64 {
        var m = tLast(v)
        let l = tLeft(v), r = tRight(v)
        if l != 0 { m = max(m, tMax(l)) }
        if r != 0 { m = max(m, tMax(r)) }
        return m
    }

    /// Replaces child `old` of `parent` (0: the root) by `new`.
    private func treeReplaceChild(_ ino: UInt32, _ parent: UInt32, _ old: UInt32, _ new: UInt32) {
        if parent == 0 {
            files.inode[Int(ino)].root.store(new, ordering: .relaxed)
        } else if tLeft(parent) == old {
            vmaRecord(parent).pointee.tLeft.store(new, ordering: .relaxed)
        } else {
            vmaRecord(parent).pointee.tRight.store(new, ordering: .relaxed)
        }
        if new != 0 { vmaRecord(new).pointee.tParent.store(parent, ordering: .relaxed) }
    }

    /// Rotates `x` above its parent; in-order sequence unchanged.
    private func treeRotateUp(_ ino: UInt32, _ x: UInt32) {
        let p = tParent(x), g = tParent(p)
        if tLeft(p) == x {
            let b = tRight(x)
            vmaRecord(p).pointee.tLeft.store(b, ordering: .relaxed)
            if b != 0 { vmaRecord(b).pointee.tParent.store(p, ordering: .relaxed) }
            vmaRecord(x).pointee.tRight.store(p, ordering: .relaxed)
        } else {
            let b = tLeft(x)
            vmaRecord(p).pointee.tRight.store(b, ordering: .relaxed)
            if b != 0 { vmaRecord(b).pointee.tParent.store(p, ordering: .relaxed) }
            vmaRecord(x).pointee.tLeft.store(p, ordering: .relaxed)
        }
        vmaRecord(p).pointee.tParent.store(x, ordering: .relaxed)
        treeReplaceChild(ino, g, p, x)
        vmaRecord(p).pointee.tMax.store(treeSubtreeMax(p), ordering: .relaxed)
        vmaRecord(x).pointee.tMax.store(treeSubtreeMax(x), ordering: .relaxed)
    }

    /// Recomputes the maxima from `v` up to the root.
    private func treeFixUp(_ v: UInt32) {
        var n = v
        while n != 0 {
            vmaRecord(n).pointee.tMax.store(treeSubtreeMax(n), ordering: .relaxed)
            n = tParent(n)
        }
    }

    /// vma_interval_tree_insert. i_mmap lock held for writing.
    func treeInsert(_ ino: UInt32, _ v: UInt32) {
        let r = vmaRecord(v)
        let start = r.pointee.pgoff.load(ordering: .relaxed)
        let last = start + UInt64(r.pointee.pages.load(ordering: .relaxed)) - 1
        r.pointee.tLeft.store(0, ordering: .relaxed)
        r.pointee.tRight.store(0, ordering: .relaxed)
        r.pointee.tLast.store(last, ordering: .relaxed)
        r.pointee.tMax.store(last, ordering: .relaxed)
        var parent: UInt32 = 0
        var n = files.inode[Int(ino)].root.load(ordering: .relaxed)
        var goLeft = false
        while n != 0 {
            // The augmentation on the way down: every ancestor's subtree
            // now holds `last`. The planted bug skips it.
            if inject != .iMmapTreeStaleMax && tMax(n) < last { vmaRecord(n).pointee.tMax.store(last, ordering: .relaxed) }
            parent = n
            goLeft = start < tStart(n)
            n = goLeft ? tLeft(n) : tRight(n)
        }
        r.pointee.tParent.store(parent, ordering: .relaxed)
        if parent == 0 {
            files.inode[Int(ino)].root.store(v, ordering: .relaxed)
        } else if goLeft {
            vmaRecord(parent).pointee.tLeft.store(v, ordering: .relaxed)
        } else {
            vmaRecord(parent).pointee.tRight.store(v, ordering: .relaxed)
        }
        let prio = Self.treePriority(v)
        while tParent(v) != 0 && Self.treePriority(tParent(v)) < prio { treeRotateUp(ino, v) }
    }

    /// vma_interval_tree_remove: rotates `v` down to at most one child,
    /// splices it out, and fixes the maxima above. i_mmap lock held for
    /// writing.
    func treeRemove(_ ino: UInt32, _ v: UInt32) {
        while tLeft(v) != 0 && tRight(v) != 0 {
            let l = tLeft(v), r = tRight(v)
            treeRotateUp(ino, Self.treePriority(l) > Self.treePriority(r) ? l : r)
        }
        let child = tLeft(v) != 0 ? tLeft(v) : tRight(v)
        let parent = tParent(v)
        treeReplaceChild(ino, parent, v, child)
        treeFixUp(parent)
        let r = vmaRecord(v)
        r.pointee.tLeft.store(0, ordering: .relaxed)
        r.pointee.tRight.store(0, ordering: .relaxed)
        r.pointee.tParent.store(0, ordering: .relaxed)
    }

    /// A linked VMA's range changed end (its start never does): its key and
    /// the maxima above it follow. i_mmap lock held for writing.
    func treeResized(_ v: UInt32) {
        let r = vmaRecord(v)
        r.pointee.tLast.store(r.pointee.pgoff.load(ordering: .relaxed) + UInt64(r.pointee.pages.load(ordering: .relaxed)) - 1,
                              ordering: .relaxed)
        treeFixUp(v)
    }

    /// vma_interval_tree_foreach: calls `body` for each VMA of inode `ino`
    /// whose key overlaps [lo, hi], in key order, until it returns false.
    /// Returns the nodes read (the walk's cost). Iterative, through the
    /// parent links, so that `body` inlines into the loop as the list's
    /// does. i_mmap lock held (the file-walk-no-i-mmap-lock bug walks
    /// without it: a bound on the nodes read keeps a tree rotating under
    /// it from sending the walk round a loop).
    @inline(__always) func treeQuery(_ ino: UInt32, _ lo: UInt64, _ hi: UInt64, _ body: (UInt32) -> Bool) -> Int {
        var touched = 0
        let bound = config.vmaCount * 4
        var n = treeFirst(files.inode[Int(ino)].root.load(ordering: .relaxed), lo, hi, &touched)
        while n != 0 && touched < bound {
            guard body(n) else { break }
            n = treeNext(n, lo, hi, &touched)
        }
        return touched
    }

    /// The first node in order of the subtree at `n` overlapping [lo, hi],
    /// or 0: down the left while its subtree reaches `lo`, else this node,
    /// else the right subtree.
    @inline(__always) private func treeFirst(_ start: UInt32, _ lo: UInt64, _ hi: UInt64, _ touched: inout Int) -> UInt32 {
        var n = start
        guard n != 0 else { return 0 }
        touched += 1
        guard tMax(n) >= lo else { return 0 }
        while true {
            let l = tLeft(n)
            if l != 0 {
                touched += 1
                if tMax(l) >= lo { n = l; continue }
            }
            guard tStart(n) <= hi else { return 0 }
            if tLast(n) >= lo { return n }
            let r = tRight(n)
            guard r != 0 else { return 0 }
            touched += 1
            guard tMax(r) >= lo else { return 0 }
            n = r
        }
    }

    /// The node after `n` in order overlapping [lo, hi], or 0: the first
    /// of its right subtree, else up to the first ancestor reached from a
    /// left child, which is next in order (and the right subtree of that).
    @inline(__always) private func treeNext(_ from: UInt32, _ lo: UInt64, _ hi: UInt64, _ touched: inout Int) -> UInt32 {
        var n = from
        while true {
            let r = tRight(n)
            if r != 0 {
                let f = treeFirst(r, lo, hi, &touched)
                if f != 0 { return f }
            }
            // Up past every ancestor whose right subtree we came from.
            // (Bounded: an unlocked walk may meet a rotation's brief
            // two-node parent cycle.)
            var child = n
            var p = tParent(n)
            var climbed = 0
            while p != 0 && tRight(p) == child && climbed < config.vmaCount {
                child = p
                p = tParent(p)
                climbed += 1
            }
            guard p != 0 else { return 0 }
            n = p
            touched += 1
            guard tStart(n) <= hi else { return 0 }
            if tLast(n) >= lo { return n }
        }
    }

}
