import Synchronization

/// Rik van Riel's anon_vma_chain (Linux 2.6.34 to today): the design the
/// kernel runs, built because one anon_vma shared by a fork tree made every
/// walk visit every child (AIM7: 1,000 children x 1,000 COWed pages).
///
/// Objects (`AVCState`): each VMA has its own anon_vma (`VMARecord.ctx`,
/// vma->anon_vma) and a chain of AVCs, one per anon_vma of its ancestry;
/// each anon_vma has the set of AVCs naming every VMA that may map its
/// pages. `page.mapping` = the faulting VMA's own anon_vma, `page.index` =
/// the linear page offset, which fork, split, mremap and merge keep.
///
/// fork (anon_vma_fork): the child's VMA clones the parent's chain (an AVC
/// on every anon_vma of the parent's ancestry, appended to each set after
/// the parent's) and gets an anon_vma of its own, child of the parent's,
/// or reuses one of its chain that no VMA uses as its own and that has at
/// most one child (`--avc-reuse`, the 6.2 rule). COW reuse of an exclusive
/// page moves it to the VMA's own anon_vma (page_move_anon_rmap).
///
/// Locks (classes: `LockClass`): every anon_vma of a tree uses its root's
/// lock: `rmapListRW` (the rwsem of 3.8+) under `--sync rwlock` and
/// `--sync rcu` (today's kernel: RCU to reach the anon_vma, the rwsem for
/// the walk), `rmapList` (the mutex of 2.6.36-3.7) under `--sync mutex`.
/// Writers (prepare, fork, split, mremap, merge, unlink) take it for
/// writing, one root at a time; prepare takes the ptl inside it. Walkers
/// take it for reading, or, with `--anon-vma-walk rcu-only` (a what-if no
/// kernel ran), walk under RCU alone.
///
/// Life cycle: an anon_vma lives while its set is not empty or another
/// anon_vma of its tree has it as root; it is freed after a grace period
/// (the walk's lookup reaches it through RCU, SLAB_TYPESAFE_BY_RCU). AVCs
/// are freed at once when walkers hold the root lock, after a grace period
/// under the RCU-only walk.
struct AnonVMAChainRmap: RmapScheme, @unchecked Sendable {
    let s: UnsafeMutablePointer<AVCState>

    @inline(__always) var avSlab: RCUSlab { s.pointee.avSlab }
    @inline(__always) var avcSlab: RCUSlab { s.pointee.avcSlab }
    @inline(__always) var anonVMAs: PaddedArray<AVCAnonVMA> { s.pointee.anonVMAs }
    @inline(__always) var avcs: UnsafeMutablePointer<AVCLink> { s.pointee.avcs }
    @inline(__always) var chains: UnsafeMutablePointer<AVCChain> { s.pointee.chains }
    @inline(__always) var sync: ListSync { s.pointee.sync }
    @inline(__always) var walkLocked: Bool { s.pointee.walkLocked }
    @inline(__always) var rootRW: Bool { s.pointee.rootRW }
    var slotPool: NodePool { avSlab.pool }

    static var kind: SchemeKind { .anonVMAChain }
    static var walkersReadVMAs: Bool { true }
    /// Per VMA: the anon_vma pointer and the chain's list head (24 bytes in
    /// vm_area_struct); here 4 + 12. The anon_vma and AVC slabs come on top
    /// (`metadata`).
    static var metadataBytes: (perVMA: Int, perMM: Int) { (16, 0) }
    /// sizeof(struct anon_vma) and sizeof(struct anon_vma_chain) on x86-64
    /// today: root, rwsem (40), refcount, num_children, num_active_vmas,
    /// parent, rb_root_cached; vma, anon_vma, same_vma, rb node and
    /// rb_subtree_last.
    static let anonVMABytes = 96
    static let avcBytes = 64

    init(config: MachineConfig, log: ViolationLog) {
        s = .allocate(capacity: 1)
        s.initialize(to: AVCState(config: config, log: log))
    }

    func destroy() {
        s.pointee.destroy()
        s.deinitialize(count: 1)
        s.deallocate()
    }

    func lockName(address: UInt) -> String? {
        if let i = s.pointee.lock.locks.index(of: address) { return "anon_vma \(i) root lock" }
        if let i = s.pointee.rwlock.locks.index(of: address) { return "anon_vma \(i) root rwsem" }
        return nil
    }

    var contextsInUse: Int { avSlab.pool.inUse }

    // MARK: The root lock

    @inline(__always) func rootOf(_ av: UInt32) -> UInt32 { anonVMAs[Int(av)].pointee.root.load(ordering: .acquiring) }

    /// anon_vma_lock_write on the tree's root.
    @inline(__always) func lockRoot<P>(_ k: Kernel<Self, P>, _ root: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        if rootRW {
            P.writeLock(s.pointee.rwlock.locks[Int(root)], .rmapListRW, LockSite(file, line))
        } else {
            P.lock(s.pointee.lock.locks[Int(root)], .rmapList, LockSite(file, line))
        }
    }

    /// anon_vma_lock_read (the walk): the rwsem for reading, or the mutex.
    @inline(__always) func readLockRoot<P>(_ k: Kernel<Self, P>, _ root: UInt32, file: StaticString = #fileID, line: UInt = #line) {
        if rootRW {
            P.readLock(s.pointee.rwlock.locks[Int(root)], .rmapListRW, LockSite(file, line))
        } else {
            P.lock(s.pointee.lock.locks[Int(root)], .rmapList, LockSite(file, line))
        }
    }

    @inline(__always) func unlockRoot<P>(_ k: Kernel<Self, P>, _ root: UInt32) {
        if rootRW { P.unlock(s.pointee.rwlock.locks[Int(root)]) } else { P.unlock(s.pointee.lock.locks[Int(root)]) }
    }

    // MARK: Objects

    /// anon_vma_chain_alloc: from the AVC pool (a leaf lock); 0 when empty.
    @inline(__always) func allocAVC() -> UInt32 {
        let c = avcSlab.pool.alloc()
        if c != 0 { avcSlab.publish(c) }
        return c
    }

    /// anon_vma_chain_free: at once when walkers hold the root lock, after
    /// a grace period when they walk under RCU alone.
    func freeAVC<P>(_ k: Kernel<Self, P>, _ c: UInt32, _ cpu: CPU) {
        let ok = !walkLocked ? k.retire(avcSlab, c, from: SlotState.live, cpu) : avcSlab.freeNow(c, from: SlotState.live)
        if !ok { k.report(.groupList, cpu: cpu, "anon_vma_chain \(c) freed twice (state \(SlotState.name(avcSlab.load(c))))") }
    }

    /// anon_vma_alloc plus its set-up; published (live) before anyone can
    /// reach it. 0 when out of slots.
    func allocAnonVMA<P>(_ k: Kernel<Self, P>, root: UInt32, parent: UInt32, _ cpu: CPU) -> UInt32 {
        let av = k.cacheAlloc(.contexts, cpu)
        guard av != 0 else { return 0 }
        let a = anonVMAs[Int(av)]
        a.pointee.first.store(0, ordering: .relaxed)
        a.pointee.last.store(0, ordering: .relaxed)
        a.pointee.count.store(0, ordering: .relaxed)
        a.pointee.root.store(root == 0 ? av : root, ordering: .relaxed)
        a.pointee.parent.store(parent == 0 ? av : parent, ordering: .relaxed)
        a.pointee.refcount.store(1, ordering: .relaxed)
        a.pointee.numChildren.store(0, ordering: .relaxed)
        a.pointee.numActiveVMAs.store(0, ordering: .relaxed)
        avSlab.publish(av)
        return av
    }

    /// Returns an anon_vma nobody reached (prepare's loser, fork's back-off).
    func freeUnusedAnonVMA<P>(_ k: Kernel<Self, P>, _ av: UInt32, _ cpu: CPU) {
        avSlab.state[Int(av)].pointee.store(SlotState.free, ordering: .releasing)
        k.cacheFree(.contexts, av, cpu)
    }

    /// put_anon_vma: the last reference frees it after a grace period, and
    /// a non-root then drops its reference on the root.
    func putAnonVMA<P>(_ k: Kernel<Self, P>, _ av: UInt32, _ cpu: CPU) {
        let a = anonVMAs[Int(av)]
        let left = a.pointee.refcount.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        if left > 0 { return }
        if left < 0 { k.report(.groupList, cpu: cpu, "anon_vma \(av) refcount went negative"); return }
        let root = a.pointee.root.load(ordering: .relaxed)
        let retired = k.inject == .avcFreeNoGrace
            ? avSlab.freeNow(av, from: SlotState.live)
            : k.retire(avSlab, av, from: SlotState.live, cpu)
        if !retired {
            k.report(.groupList, cpu: cpu, "anon_vma \(av) freed twice (state \(SlotState.name(avSlab.load(av))))")
        }
        if root != av { putAnonVMA(k, root, cpu) }
    }

    /// anon_vma_chain_link: the AVC joins the anon_vma's set at its tail
    /// (after every VMA linked before, as the walk order needs) and the
    /// VMA's chain at its head. The root's lock held (or the anon_vma not
    /// yet reachable).
    func chainLink(_ vma: UInt32, _ c: UInt32, _ av: UInt32) {
        let l = avcs + Int(c)
        l.pointee.vma.store(vma, ordering: .relaxed)
        l.pointee.anonVma.store(av, ordering: .relaxed)
        l.pointee.next.store(0, ordering: .relaxed)
        let a = anonVMAs[Int(av)]
        let t = a.pointee.last.load(ordering: .relaxed)
        l.pointee.prev.store(t, ordering: .relaxed)
        if t == 0 { a.pointee.first.store(c, ordering: .releasing) } else { avcs[Int(t)].next.store(c, ordering: .releasing) }
        a.pointee.last.store(c, ordering: .relaxed)
        a.pointee.count.wrappingAdd(1, ordering: .relaxed)
        let ch = chains + Int(vma)
        let h = ch.pointee.head.load(ordering: .relaxed)
        l.pointee.vmaNext.store(h, ordering: .relaxed)
        l.pointee.vmaPrev.store(0, ordering: .relaxed)
        if h == 0 { ch.pointee.tail.store(c, ordering: .relaxed) } else { avcs[Int(h)].vmaPrev.store(c, ordering: .relaxed) }
        ch.pointee.head.store(c, ordering: .relaxed)
        ch.pointee.length.wrappingAdd(1, ordering: .relaxed)
    }

    /// Takes the AVC off its anon_vma's set; its own `next` stays for a
    /// walker standing on it. True when the set is now empty.
    func setRemove(_ c: UInt32) -> Bool {
        let l = avcs + Int(c)
        let a = anonVMAs[Int(l.pointee.anonVma.load(ordering: .relaxed))]
        let p = l.pointee.prev.load(ordering: .relaxed)
        let n = l.pointee.next.load(ordering: .relaxed)
        if p == 0 { a.pointee.first.store(n, ordering: .releasing) } else { avcs[Int(p)].next.store(n, ordering: .releasing) }
        if n == 0 { a.pointee.last.store(p, ordering: .relaxed) } else { avcs[Int(n)].prev.store(p, ordering: .relaxed) }
        return a.pointee.count.wrappingSubtract(1, ordering: .relaxed).newValue == 0
    }

    /// Takes the AVC off its VMA's chain (mmap lock held for writing).
    func chainRemove(_ vma: UInt32, _ c: UInt32) {
        let ch = chains + Int(vma)
        let l = avcs + Int(c)
        let p = l.pointee.vmaPrev.load(ordering: .relaxed)
        let n = l.pointee.vmaNext.load(ordering: .relaxed)
        if p == 0 { ch.pointee.head.store(n, ordering: .relaxed) } else { avcs[Int(p)].vmaNext.store(n, ordering: .relaxed) }
        if n == 0 { ch.pointee.tail.store(p, ordering: .relaxed) } else { avcs[Int(n)].vmaPrev.store(p, ordering: .relaxed) }
        ch.pointee.length.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Whether anon_vma `av` is on `vma`'s chain (so `vma` is in its set).
    func chainHas(_ vma: UInt32, _ av: UInt32) -> Bool {
        var c = chains[Int(vma)].head.load(ordering: .relaxed)
        var n = 0
        while c != 0 && n <= avcSlab.capacity {
            if avcs[Int(c)].anonVma.load(ordering: .relaxed) == av { return true }
            c = avcs[Int(c)].vmaNext.load(ordering: .relaxed)
            n += 1
        }
        return false
    }

    // MARK: mm events: everything is per VMA.

    func mmStarted<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) -> Bool { true }
    func mmForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool { true }
    func mmExited<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) {}

    /// dup_mmap calls anon_vma_fork before copy_page_range; the planted bug after.
    func forkLinkPhase<P>(_ k: Kernel<Self, P>) -> ForkLinkPhase {
        k.inject == .avcForkLinkAfterCopy ? .afterCopy : .beforeCopy
    }
}
