import Synchronization

/// Lorenzo Stoakes' COW context (LSF/MM/BPF, May 2026, "Keeping COWs in
/// context"): anonymous memory tracked per mm again. Each mm has a context
/// of its own, a child of its parent's context, so the contexts of a fork
/// tree form a tree that outlives exited processes while pages or
/// descendants need them. `page.mapping` = the context of the mm that first
/// mapped the page (the lowest level of the hierarchy), `page.index` = its
/// virtual page there; a walk visits the context's subtree, each live mm at
/// its address there: `page.index` translated by the remap records mremap
/// leaves on the path (ARCHITECTURE 5.7), or `page.index` itself.
///
/// Locks (classes: `LockClass`): one tree lock per fork tree, the root
/// context's (the proposal's "mapping-granularity lock"): `rmapListRW`
/// under `--sync rwlock|rcu`, `rmapList` under `--sync mutex`. Writers
/// (fork, exit) take it for writing with nothing else held but fork's
/// mmap lock; walkers reach the context under RCU and take it for reading,
/// or walk under RCU alone (`--anon-vma-walk rcu-only`).
///
/// Life cycle: a context is in its tree while its mm lives or a child is in
/// the tree (`users`); it is allocated while linked, while a page names it,
/// or, for a root, while another context of its tree is allocated
/// (`refcount`): the walker's page pins its context, which pins the root
/// whose lock it takes. Retired slots are freed after a grace period.
struct COWContextRmap: VMABlindRmap, @unchecked Sendable {
    let s: UnsafeMutablePointer<COWContextState>

    @inline(__always) var slab: RCUSlab { s.pointee.slab }
    @inline(__always) var ctxs: PaddedArray<COWCtx> { s.pointee.ctxs }
    @inline(__always) var own: PaddedArray<Atomic<UInt32>> { s.pointee.own }
    @inline(__always) var walkLocked: Bool { s.pointee.walkLocked }
    @inline(__always) var treeRW: Bool { s.pointee.treeRW }
    var slotPool: NodePool { slab.pool }

    static var kind: SchemeKind { .cowContext }
    static var walkersReadVMAs: Bool { false }
    /// Per mm: the pointer to its context (8 bytes in mm_struct); per VMA
    /// nothing. The contexts come on top (`metadata`).
    static var metadataBytes: (perVMA: Int, perMM: Int) { (0, 8) }
    /// A context as the kernel would lay it out on x86-64: rwsem (40),
    /// parent, root, mm, child list head and sibling link (16 each),
    /// refcount and users: 112 bytes.
    static let contextBytes = 112

    init(config: MachineConfig, log: ViolationLog) {
        s = .allocate(capacity: 1)
        s.initialize(to: COWContextState(config: config, log: log))
    }

    func destroy() {
        s.pointee.destroy()
        s.deinitialize(count: 1)
        s.deallocate()
    }

    func lockName(address: UInt) -> String? {
        if let i = s.pointee.lock.locks.index(of: address) { return "COW context \(i) tree lock" }
        if let i = s.pointee.rwlock.locks.index(of: address) { return "COW context \(i) tree rwsem" }
        return nil
    }

    var contextsInUse: Int { slab.pool.inUse }

    @inline(__always) func ctx(_ c: UInt32) -> UnsafeMutablePointer<COWCtx> { ctxs[Int(c)] }
    /// The context of a live or dying mm (0: a fork that found no slot).
    @inline(__always) func context(of mm: UInt32) -> UInt32 { own[Int(mm)].pointee.load(ordering: .relaxed) }

    // MARK: The tree lock

    @inline(__always) func lockTree<P>(_ k: Kernel<Self, P>, _ root: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        if treeRW {
            P.writeLock(s.pointee.rwlock.locks[Int(root)], .rmapListRW, LockSite(file, line))
        } else {
            P.lock(s.pointee.lock.locks[Int(root)], .rmapList, LockSite(file, line))
        }
    }

    @inline(__always) func readLockTree<P>(_ k: Kernel<Self, P>, _ root: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        if treeRW {
            P.readLock(s.pointee.rwlock.locks[Int(root)], .rmapListRW, LockSite(file, line))
        } else {
            P.lock(s.pointee.lock.locks[Int(root)], .rmapList, LockSite(file, line))
        }
    }

    @inline(__always) func unlockTree<P>(_ k: Kernel<Self, P>, _ root: UInt32) {
        if treeRW { P.unlock(s.pointee.rwlock.locks[Int(root)]) } else { P.unlock(s.pointee.lock.locks[Int(root)]) }
    }

    // MARK: Contexts

    /// A fresh context for `mm`, child of `parent` (0: a new tree), not yet
    /// linked; 0 when no slot is left.
    private func newContext<P>(_ k: Kernel<Self, P>, mm: UInt32, parent: UInt32, cpu: CPU) -> UInt32 {
        let c = k.cacheAlloc(.contexts, cpu)
        guard c != 0 else { return 0 }
        let x = ctx(c)
        let root = parent == 0 ? c : ctx(parent).pointee.root.load(ordering: .relaxed)
        x.pointee.parent.store(parent, ordering: .relaxed)
        x.pointee.root.store(root, ordering: .relaxed)
        x.pointee.mm.store(mm, ordering: .relaxed)
        x.pointee.firstChild.store(0, ordering: .relaxed)
        x.pointee.lastChild.store(0, ordering: .relaxed)
        x.pointee.next.store(0, ordering: .relaxed)
        x.pointee.prev.store(0, ordering: .relaxed)
        x.pointee.users.store(1, ordering: .relaxed)
        x.pointee.linked.store(1, ordering: .relaxed)
        x.pointee.refcount.store(1, ordering: .relaxed)
        x.pointee.depth.store(parent == 0 ? 0 : ctx(parent).pointee.depth.load(ordering: .relaxed) + 1, ordering: .relaxed)
        // The caller holds the parent's mmap lock (fork), so its record
        // count is stable: the child's bound on the parent's records.
        x.pointee.records.store(0, ordering: .relaxed)
        x.pointee.forkRecords.store(parent == 0 ? 0 : ctx(parent).pointee.records.load(ordering: .relaxed), ordering: .relaxed)
        x.pointee.treeRecords.store(0, ordering: .relaxed)
        if root != c { ctx(root).pointee.refcount.wrappingAdd(1, ordering: .relaxed) }
        slab.publish(c)
        return c
    }

    /// Drops a memory reference; the last retires the slot (never blocks:
    /// may run under a ptl) and drops its reference on the root.
    func put<P>(_ k: Kernel<Self, P>, _ c: UInt32, cpu: CPU) {
        let now = ctx(c).pointee.refcount.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            let root = ctx(c).pointee.root.load(ordering: .relaxed)
            if !k.retire(slab, c, from: SlotState.live, cpu) {
                k.report(.groupList, cpu: cpu, "COW context \(c) freed twice (state \(SlotState.name(slab.load(c))))")
                return
            }
            if root != c { put(k, root, cpu: cpu) }
        } else if now < 0 {
            k.report(.groupList, cpu: cpu, "COW context \(c) refcount went negative")
        }
    }

    /// Appends `c` to `parent`'s children (tree lock held): at the tail, so
    /// a walker inside the parent's subtree still meets it.
    private func linkChild(_ parent: UInt32, _ c: UInt32) {
        let p = ctx(parent)
        let last = p.pointee.lastChild.load(ordering: .relaxed)
        ctx(c).pointee.prev.store(last, ordering: .relaxed)
        if last == 0 { p.pointee.firstChild.store(c, ordering: .releasing) } else { ctx(last).pointee.next.store(c, ordering: .releasing) }
        p.pointee.lastChild.store(c, ordering: .relaxed)
        p.pointee.users.wrappingAdd(1, ordering: .relaxed)
    }

    /// Takes `c` off its parent's children (tree lock held), keeping its
    /// `next` for a walker standing on it.
    private func unlinkChild(_ parent: UInt32, _ c: UInt32) {
        let p = ctx(parent)
        let pv = ctx(c).pointee.prev.load(ordering: .relaxed)
        let nx = ctx(c).pointee.next.load(ordering: .relaxed)
        if pv == 0 { p.pointee.firstChild.store(nx, ordering: .releasing) } else { ctx(pv).pointee.next.store(nx, ordering: .releasing) }
        if nx == 0 { p.pointee.lastChild.store(pv, ordering: .relaxed) } else { ctx(nx).pointee.prev.store(pv, ordering: .relaxed) }
    }

    // MARK: mm events

    /// A new image starts a tree of its own: nothing can reach it yet, so no
    /// lock.
    func mmStarted<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) -> Bool {
        let c = newContext(k, mm: mm, parent: 0, cpu: cpu)
        own[Int(mm)].pointee.store(c, ordering: .relaxed)
        return c != 0
    }

    /// The child's context joins its parent's children under the tree lock,
    /// before fork copies a PTE (unless the planted bug): a walker that
    /// reaches the parent's mm after a copy then finds the child below it.
    func mmForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool {
        let p = context(of: parent)
        let c = newContext(k, mm: child, parent: p, cpu: cpu)
        own[Int(child)].pointee.store(c, ordering: .relaxed)
        guard c != 0 else { return false }
        let root = ctx(c).pointee.root.load(ordering: .relaxed)
        lockTree(k, root)
        linkChild(p, c)
        unlockTree(k, root)
        return true
    }

    func forkLinkPhase<P>(_ k: Kernel<Self, P>) -> ForkLinkPhase {
        k.inject == .cowForkLinkAfterCopy ? .afterCopy : .beforeCopy
    }

    /// The mm leaves its context, which stays in the tree while it has
    /// children; a context left with no users leaves the tree, and so on up.
    /// A detached context is kept by the pages naming it (its subtree is
    /// then empty: nothing can fork from it again). The planted bug detaches
    /// the context even when it has children.
    func mmExited<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) {
        let c = own[Int(mm)].pointee.exchange(0, ordering: .relaxed)
        guard c != 0 else { return }
        let root = ctx(c).pointee.root.load(ordering: .relaxed)
        lockTree(k, root)
        ctx(c).pointee.mm.store(0, ordering: .releasing)
        var x = c
        var left = ctx(x).pointee.users.wrappingSubtract(1, ordering: .relaxed).newValue
        if k.inject == .cowExitLeavesChildren { left = 0 }
        var rootDetached = false
        while left == 0 {
            if ctx(x).pointee.linked.exchange(0, ordering: .relaxed) == 0 {
                k.report(.groupList, cpu: cpu, "COW context \(x) left its tree twice")
                break
            }
            let p = ctx(x).pointee.parent.load(ordering: .relaxed)
            if p == 0 { rootDetached = true; break }
            unlinkChild(p, x)
            put(k, x, cpu: cpu)  // the tree's reference; never the root's last
            if ctx(p).pointee.linked.load(ordering: .relaxed) == 0 {
                k.report(.groupList, cpu: cpu, "COW context \(x) was the child of context \(p), which had left the tree")
                break
            }
            left = ctx(p).pointee.users.wrappingSubtract(1, ordering: .relaxed).newValue
            if left < 0 { k.report(.groupList, cpu: cpu, "COW context \(p) has negative users"); break }
            x = p
        }
        unlockTree(k, root)
        // The root's own reference goes after its lock is released.
        if rootDetached { put(k, root, cpu: cpu) }
    }

    // VMA events: contexts are per mm, so VMAs need nothing (VMABlindRmap).

    // MARK: Pages

    /// The faulting mm's own context (the lowest level of the hierarchy)
    /// and the address; the page pins the context.
    @inline(__always) func pageAdded<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) {
        let c = context(of: mm)
        if k.inject != .cowContextFreedWhilePages { ctx(c).pointee.refcount.wrappingAdd(1, ordering: .relaxed) }
        k.frames[Int(frame)].index.store(vpn, ordering: .relaxed)
        k.frames[Int(frame)].mapping.store(c, ordering: .relaxed)
        // The mm's own records (stable: its mmap lock is held) are older
        // than the page and never apply to it.
        k.frames[Int(frame)].remapEpoch.store(ctx(c).pointee.records.load(ordering: .relaxed), ordering: .relaxed)
        k.frames[Int(frame)].flags.bitwiseOr(FrameFlags.anon, ordering: .releasing)
    }

    /// Nothing moves: the reusing mm is in the subtree of the page's
    /// context. (Moving it to the mm's own context would put the old one
    /// under a ptl without the page lock, while a walker holding the page
    /// lock may be using it.)
    @inline(__always) func pageReused<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32) {}

    func pageCloned<P>(_ k: Kernel<Self, P>, from: UInt32, to: UInt32) {
        let c = k.frames[Int(from)].mapping.load(ordering: .relaxed)
        if k.inject != .cowContextFreedWhilePages { ctx(c).pointee.refcount.wrappingAdd(1, ordering: .relaxed) }
        k.frames[Int(to)].remapEpoch.store(k.frames[Int(from)].remapEpoch.load(ordering: .relaxed), ordering: .relaxed)
        k.copyAnonAnchor(from: from, to: to)
    }

    func pageFreed<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU) {
        let c = k.frames[Int(frame)].mapping.load(ordering: .relaxed)
        if c != 0 && k.inject != .cowContextFreedWhilePages { put(k, c, cpu: cpu) }
    }

    // MARK: mremap and swap-in

    /// Re-indexing changes what walkers read under the page lock.
    @inline(__always) func moveNeedsPageLock<P>(_ k: Kernel<Self, P>) -> Bool { true }

    /// A page mapped once is re-indexed (and re-anchored, `pageMoved`); a
    /// shared one keeps its frame and index, found at the new address
    /// through a remap record of the mover's context (made at the first
    /// shared page of the move); with the records full it is copied (the
    /// seed's rule). Moving back after a failure keeps it. The planted
    /// bug re-indexes a shared page.
    func pageMove<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32) -> PageMove {
        if k.inject == .cowMremapNoCopy { return .reindex }
        if k.frames[Int(frame)].mapcount.load(ordering: .relaxed) == 1 { return .reindex }
        let mv = s.pointee.moving + Int(mm)
        if mv.pointee.back.load(ordering: .relaxed) != 0 { return .keep }
        var r = mv.pointee.record.load(ordering: .relaxed)
        if r == COWMove.none {
            r = addRecord(k, mm: mm, mv)
            mv.pointee.record.store(r, ordering: .relaxed)
        }
        return r == COWMove.full ? .copy : .keep
    }

    /// An exclusive page takes the new address and the mover's own context
    /// with its current record count as epoch: no record older than the
    /// move (of any context on its old path) applies to it. Page lock held,
    /// which every walker holds too, so the context's reference may go here.
    func pageMoved<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, newVpn: UInt64, cpu: CPU) {
        let fr = k.frames + Int(frame)
        let c = context(of: mm)
        let old = fr.pointee.mapping.load(ordering: .relaxed)
        let pins = k.inject != .cowContextFreedWhilePages
        if old != c && pins { ctx(c).pointee.refcount.wrappingAdd(1, ordering: .relaxed) }
        fr.pointee.index.store(newVpn, ordering: .releasing)
        fr.pointee.mapping.store(c, ordering: .releasing)
        fr.pointee.remapEpoch.store(ctx(c).pointee.records.load(ordering: .relaxed), ordering: .releasing)
        if old != c && pins && old != 0 { put(k, old, cpu: cpu) }
    }

    func rangeMoveBegin<P>(_ k: Kernel<Self, P>, mm: UInt32, oldStart: UInt64, newStart: UInt64, pages: Int, cpu: CPU) {
        let mv = s.pointee.moving + Int(mm)
        mv.pointee.oldStart.store(oldStart, ordering: .relaxed)
        mv.pointee.newStart.store(newStart, ordering: .relaxed)
        mv.pointee.pages.store(UInt32(pages), ordering: .relaxed)
        mv.pointee.record.store(COWMove.none, ordering: .relaxed)
        mv.pointee.back.store(0, ordering: .relaxed)
    }

    func rangeMoveBack<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) {
        (s.pointee.moving + Int(mm)).pointee.back.store(1, ordering: .relaxed)
    }

    /// The record stops being pending: done once every PTE is at the new
    /// address, cancelled once every PTE went back (the page locks the
    /// mover took order each move before this store, for walkers).
    func rangeMoveEnd<P>(_ k: Kernel<Self, P>, mm: UInt32, moved: Bool, cpu: CPU) {
        let mv = s.pointee.moving + Int(mm)
        let r = mv.pointee.record.exchange(COWMove.none, ordering: .relaxed)
        mv.pointee.back.store(0, ordering: .relaxed)
        if r == COWMove.full { cpu.pointee.count(.remapRecordFull) }
        guard r >= 0 else { return }
        let c = context(of: mm)
        let w = record(c, Int(r))
        let pages = w[2].load(ordering: .relaxed) & 0xffff_ffff
        if k.inject == .cowRemapDoneEarly && moved { return }  // already marked done
        w[2].store(pages | (moved ? COWRecord.done : COWRecord.cancelled) << 32, ordering: .releasing)
    }

    /// Publishes a pending record of the move in the mover's context: its
    /// words, then the count (release), then the tree's count; all before
    /// the first shared page's PTE moves. `COWMove.full` when the context
    /// has `COWRecord.max` already. The planted bug publishes it done.
    private func addRecord<P>(_ k: Kernel<Self, P>, mm: UInt32, _ mv: UnsafeMutablePointer<COWMove>) -> Int32 {
        let c = context(of: mm)
        let n = ctx(c).pointee.records.load(ordering: .relaxed)
        guard Int(n) < COWRecord.max else { return COWMove.full }
        let w = record(c, Int(n))
        w[0].store(mv.pointee.oldStart.load(ordering: .relaxed), ordering: .relaxed)
        w[1].store(mv.pointee.newStart.load(ordering: .relaxed), ordering: .relaxed)
        let state = k.inject == .cowRemapDoneEarly ? COWRecord.done : COWRecord.pending
        w[2].store(UInt64(mv.pointee.pages.load(ordering: .relaxed)) | state << 32, ordering: .relaxed)
        ctx(c).pointee.records.store(n + 1, ordering: .releasing)
        let root = ctx(c).pointee.root.load(ordering: .relaxed)
        ctx(root).pointee.treeRecords.wrappingAdd(1, ordering: .releasing)
        return Int32(n)
    }

    /// A swap-cache page is mapped again only by an mm in its context's
    /// subtree at its address there (`address`: the index through the
    /// remap records) (a page read back by a child is named by the child's
    /// context, which its parent is not under); otherwise copied.
    /// The planted bug checks the index only.
    func canMapCached<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) -> Bool {
        let x = context(of: mm)
        if k.inject == .cowSwapinOutsideSubtree { return k.frames[Int(frame)].index.load(ordering: .relaxed) == vpn }
        guard inSubtree(x, of: k.frames[Int(frame)].mapping.load(ordering: .relaxed)) else { return false }
        return address(k, frame: frame, in: x).0 == vpn
    }
}
