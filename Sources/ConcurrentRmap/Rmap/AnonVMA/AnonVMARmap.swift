import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Andrea Arcangeli's anon_vma (Linux 2.6.7 to 2.6.33), the design the
/// kernel took in 2004 over the seed's anon groups.
///
/// Objects: each VMA that has had a page points to an anon_vma
/// (`VMARecord.ctx`); the anon_vma lists every VMA that may map its pages:
/// the VMA itself, its fork copies, its split halves and its mremap copies.
/// `page.mapping` = the anon_vma, `page.index` = the linear page offset
/// (`vma.pgoff + (vpn - vma.start)`), which fork, split and mremap keep, so
/// mremap moves PTEs and touches no page.
///
/// Locks (classes and order: `LockClass`): `rmapList` (the anon_vma's
/// mutex, held by list writers: prepare, fork, split, mremap, unmap) and
/// `rmapListRW` (its rwlock under `--sync rwlock`); prepare also takes the
/// `ptl` inside them. Walkers: `--sync rcu`, a read-side section to reach
/// the anon_vma, then its mutex for the re-check and the whole list walk,
/// as the kernel did (`--anon-vma-walk rcu-only`, a what-if, walks under the
/// read-side section alone); `rwlock`/`mutex`, the anon_vma's lock for
/// reading or the mutex, with no read-side section.
///
/// The walk protocol (page_lock_anon_vma): read `page.mapping` inside the
/// read-side section, lock the anon_vma, then re-check that the page is
/// still mapped. Pages hold no reference on their anon_vma, so once
/// the last mapping is gone the anon_vma may empty, wait for a grace period
/// and be reused by an unrelated VMA; a mapped page keeps a VMA on the list
/// (PTEs are zapped before their VMA is unlinked), so a page found mapped
/// after the lookup pins its anon_vma for the rest of the section.
///
/// Life cycle: free --prepare (first fault of a VMA)--> live --last VMA
/// unlinked--> waiting for a grace period --retired batch freed--> free. Removal
/// splices the predecessor past the VMA and leaves the VMA's own `next`
/// intact, so a walker standing on it continues; VMAs too are freed only
/// after a grace period.
///
/// Walk order: fork, split and mremap append the new VMA at the tail, after
/// the VMA it copies, and before any PTE is copied or moved: a walker that
/// missed the PTE at the old VMA finds it at the new one later.
///
/// Reuse and merge (2.6.7's mm/mmap.c): a VMA's first fault takes an
/// adjacent compatible VMA's anon_vma when it has one
/// (find_mergeable_anon_vma); vma_merge joins two adjacent VMAs whose
/// anon_vmas are the same or where at least one has none.
struct AnonVMAState {
    let slab: RCUSlab
    /// Per anon_vma: the RCU list head (writers under `lock`, readers
    /// acquire) and, for writers only, the tail and the VMA count.
    let heads: PaddedArray<AnonVMAHead>
    let lock: MutexArray
    /// Only allocated per anon_vma under `--sync rwlock`.
    let rwlock: RWLockArray
    let sync: ListSync
    /// Walkers take the anon_vma's lock (every mode but `--anon-vma-walk
    /// rcu-only`).
    let walkLocked: Bool
    /// find_mergeable_anon_vma on (`MachineConfig.anonVmaMerge`).
    let reuse: Bool
    /// Per VMA (by VMA handle): its link on its anon_vma's list.
    let links: UnsafeMutablePointer<VMALink>
    let vmaCapacity: Int

    init(config: MachineConfig, log: ViolationLog) {
        // At most one anon_vma per VMA slot.
        let n = config.vmaCount
        vmaCapacity = n
        sync = config.sync
        walkLocked = config.sync != .rcu || config.anonVmaWalk == .locked
        reuse = config.anonVmaMerge
        slab = RCUSlab(kind: .contexts, capacity: n, nodes: config.nodes, log: log)
        heads = PaddedArray(count: n + 1)
        for i in 0...n { heads[i].initialize(to: AnonVMAHead()) }
        lock = MutexArray(count: n + 1)
        rwlock = RWLockArray(count: config.sync == .rwlock ? n + 1 : 1)
        links = CacheLine.allocate(VMALink.self, count: n + 1)
        for i in 0...n { (links + i).initialize(to: VMALink()) }
    }
}

/// An anon_vma's list ends and count, on a line of its own.
struct AnonVMAHead: ~Copyable {
    /// First VMA, 0 when empty. Writers under the lock; readers acquire.
    let first = Atomic<UInt32>(0)
    /// Last VMA and the number listed: writers only, under the lock.
    /// Atomics (relaxed) rather than plain fields: a plain store to a field
    /// is a modifying access of the whole struct for ThreadSanitizer, which
    /// then overlaps the walkers' atomic reads of `first`.
    let last = Atomic<UInt32>(0)
    let count = Atomic<Int32>(0)
}

/// A VMA's place on its anon_vma's list: `next` for walkers (release/
/// acquire), `prev` and `on` (the anon_vma it is listed on, 0 if none)
/// for writers under the anon_vma's lock.
struct VMALink: ~Copyable {
    let next = Atomic<UInt32>(0)
    /// Writers only, under the anon_vma's lock; atomics for the same
    /// reason as `AnonVMAHead.last`.
    let prev = Atomic<UInt32>(0)
    let on = Atomic<UInt32>(0)
}

struct AnonVMARmap: RmapScheme, @unchecked Sendable {
    let s: UnsafeMutablePointer<AnonVMAState>

    @inline(__always) var slab: RCUSlab { s.pointee.slab }
    @inline(__always) var heads: PaddedArray<AnonVMAHead> { s.pointee.heads }
    @inline(__always) var links: UnsafeMutablePointer<VMALink> { s.pointee.links }
    @inline(__always) var sync: ListSync { s.pointee.sync }
    var slotPool: NodePool { slab.pool }

    static var kind: SchemeKind { .anonVma }
    /// Per VMA: the anon_vma pointer and the list node (next, prev) of 2004,
    /// three words; here 4 + 12 bytes. Per mm nothing. (An anon_vma itself,
    /// a lock and a list head, is shared by every VMA on it.)
    static var walkersReadVMAs: Bool { true }
    static var metadataBytes: (perVMA: Int, perMM: Int) { (16, 0) }

    func lockName(address: UInt) -> String? {
        if let i = s.pointee.lock.locks.index(of: address) { return "anon_vma \(i) lock" }
        if let i = s.pointee.rwlock.locks.index(of: address) { return "anon_vma \(i) rwlock" }
        return nil
    }

    init(config: MachineConfig, log: ViolationLog) {
        s = .allocate(capacity: 1)
        s.initialize(to: AnonVMAState(config: config, log: log))
    }

    func destroy() {
        let n = s.pointee.vmaCapacity
        slab.destroy()
        for i in 0...n { heads[i].deinitialize(count: 1) }
        heads.deallocate()
        s.pointee.lock.destroy()
        s.pointee.rwlock.destroy()
        links.deinitialize(count: n + 1)
        links.deallocate()
        s.deinitialize(count: 1)
        s.deallocate()
    }

    var contextsInUse: Int { slab.pool.inUse }

    // MARK: Writers

    @inline(__always) private func writeLock<P>(_ k: Kernel<Self, P>, _ av: UInt32,
                                                file: StaticString = #fileID, line: UInt = #line) {
        P.lock(s.pointee.lock.locks[Int(av)], .rmapList, LockSite(file, line))
        if sync == .rwlock { P.writeLock(s.pointee.rwlock.locks[Int(av)], .rmapListRW, LockSite(file, line)) }
    }

    @inline(__always) private func writeUnlock<P>(_ k: Kernel<Self, P>, _ av: UInt32) {
        if sync == .rwlock { P.unlock(s.pointee.rwlock.locks[Int(av)]) }
        P.unlock(s.pointee.lock.locks[Int(av)])
    }

    /// Appends `vma` to `av`'s list. Lock held.
    private func linkTail(_ av: UInt32, _ vma: UInt32) {
        let h = heads[Int(av)]
        let t = h.pointee.last.load(ordering: .relaxed)
        links[Int(vma)].next.store(0, ordering: .relaxed)
        links[Int(vma)].prev.store(t, ordering: .relaxed)
        links[Int(vma)].on.store(av, ordering: .relaxed)
        if t == 0 { h.pointee.first.store(vma, ordering: .releasing) } else { links[Int(t)].next.store(vma, ordering: .releasing) }
        h.pointee.last.store(vma, ordering: .relaxed)
        h.pointee.count.wrappingAdd(1, ordering: .relaxed)
    }

    /// Links `vma` into `av` under the lock.
    private func link<P>(_ k: Kernel<Self, P>, _ av: UInt32, _ vma: UInt32) {
        writeLock(k, av)
        linkTail(av, vma)
        writeUnlock(k, av)
    }

    // MARK: mm events: the anon_vma is per VMA, so mms need nothing.

    func mmStarted<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) -> Bool { true }
    func mmForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool { true }
    func mmExited<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) {}

    /// dup_mmap links each child VMA before copy_page_range copies its PTEs;
    /// the planted bug links after.
    func forkLinkPhase<P>(_ k: Kernel<Self, P>) -> ForkLinkPhase {
        k.inject == .anonVmaForkLinkAfterCopy ? .afterCopy : .beforeCopy
    }

    // MARK: VMA events

    /// anon_vma_prepare: the VMA's first page needs an anon_vma. Allocated
    /// and set up outside every lock, then published under the mm's ptl
    /// with a re-check, because faults of one mm run side by side under the
    /// mmap lock for reading and two may prepare the same VMA at once; the
    /// loser frees its unused anon_vma.
    func vmaPrepare<P>(_ k: Kernel<Self, P>, mm: UInt32, vma: UInt32, cpu: CPU) -> Bool {
        if k.vmaCtx(vma) != 0 { return true }
        if s.pointee.reuse {
            let near = mergeableAnonVMA(k, mm: mm, vma: vma)
            if near != 0 {
                // The neighbour is on `near`'s list and stays there: only
                // this mm's mmap write lock could unlink it, and we hold it
                // for reading. Same nesting as below: its lock, then the ptl.
                writeLock(k, near)
                k.ptlLock(mm)
                let won = k.vmaCtx(vma) == 0
                if won {
                    linkTail(near, vma)
                    k.vmaRecord(vma).pointee.ctx.store(near, ordering: .releasing)
                }
                k.ptlUnlock(mm)
                writeUnlock(k, near)
                if won { cpu.pointee.count(.anonVmaReused) }
                return true
            }
        }
        let av = k.cacheAlloc(.contexts, cpu)
        guard av != 0 else { return false }
        if k.inject == .anonVmaPublishEarly {
            // The planted bug: the VMA points at the anon_vma before it is
            // set up, outside the ptl and without the re-check. A racing
            // fault may take it half made, or publish its own on top.
            k.vmaRecord(vma).pointee.ctx.store(av, ordering: .releasing)
            k.raceWindow(cpu)
            heads[Int(av)].pointee.first.store(0, ordering: .relaxed)
            heads[Int(av)].pointee.last.store(0, ordering: .relaxed)
            heads[Int(av)].pointee.count.store(0, ordering: .relaxed)
            slab.publish(av)
            link(k, av, vma)
            return true
        }
        heads[Int(av)].pointee.first.store(0, ordering: .relaxed)
        heads[Int(av)].pointee.last.store(0, ordering: .relaxed)
        heads[Int(av)].pointee.count.store(0, ordering: .relaxed)
        slab.publish(av)
        k.raceWindow(cpu)  // set up, not yet on the VMA: a racing fault may prepare too
        // Linux's order since d9d332e0: the new anon_vma's lock, then the
        // page-table lock, the same nesting as a walker's (anon_vma lock,
        // then each mm's ptl), so a stale walker that reached this slot
        // cannot deadlock with us.
        if k.inject == .prepareLockInversion {
            k.ptlLock(mm)  // the planted bug: the walkers' nesting, reversed
            writeLock(k, av)
        } else {
            writeLock(k, av)
            k.ptlLock(mm)
        }
        if k.vmaCtx(vma) == 0 {
            linkTail(av, vma)
            k.vmaRecord(vma).pointee.ctx.store(av, ordering: .releasing)
            k.ptlUnlock(mm)
            writeUnlock(k, av)
            return true
        }
        k.ptlUnlock(mm)
        writeUnlock(k, av)
        // Another fault prepared it first; nobody has seen ours.
        slab.state[Int(av)].pointee.store(SlotState.free, ordering: .releasing)
        k.cacheFree(.contexts, av, cpu)
        return true
    }

    /// find_mergeable_anon_vma: the anon_vma of a VMA of `mm` adjacent to
    /// `vma` (next first, then previous) whose page offsets continue
    /// `vma`'s, as vma_merge would need, or 0. mmap lock held (read), so the
    /// table holds still; a neighbour's `ctx` may be set meanwhile by its
    /// own first fault (acquire).
    private func mergeableAnonVMA<P>(_ k: Kernel<Self, P>, mm: UInt32, vma: UInt32) -> UInt32 {
        let start = k.vmaStart(vma), pages = UInt64(k.vmaPages(vma)), pgoff = k.vmaPgoff(vma)
        var prev: UInt32 = 0
        for t in 0..<MachineConfig.maxVMAs {
            let n = k.vmaHandle(mm, t)
            guard n != 0 && n != vma else { continue }
            let ns = k.vmaStart(n), np = UInt64(k.vmaPages(n)), no = k.vmaPgoff(n)
            if start + pages == ns && pgoff + pages == no {
                let av = k.vmaCtx(n)
                if av != 0 { return av }
            } else if ns + np == start && no + np == pgoff {
                prev = k.vmaCtx(n)
            }
        }
        return prev
    }

    /// is_mergeable_anon_vma: the same anon_vma, or at least one has none.
    /// The RCU-only walk cannot see a merge of two VMAs that are both on
    /// one list atomically (a walker that passed `lower` before it grew and
    /// reaches `upper`'s predecessor after the unlink skips both), so that
    /// what-if refuses it; with the lock the merge's unlink waits for walkers.
    func canMergeVMAs<P>(_ k: Kernel<Self, P>, lower: UInt32, upper: UInt32) -> Bool {
        let a = k.vmaCtx(lower), b = k.vmaCtx(upper)
        if a == 0 || b == 0 { return true }
        return a == b && s.pointee.walkLocked
    }

    /// __anon_vma_merge: `kept` adopts `removed`'s anon_vma if it has none,
    /// joining its list (after `removed`, as 2.6.7's list_add after next)
    /// before it grows over `removed`'s pages; the caller then unlinks
    /// `removed`. The planted bug skips the adoption: `removed`'s pages
    /// then name an anon_vma no VMA covering them is on.
    func vmaMerged<P>(_ k: Kernel<Self, P>, kept: UInt32, removed: UInt32, cpu: CPU) -> Bool {
        let av = k.vmaCtx(removed)
        guard av != 0 && k.vmaCtx(kept) == 0 else { return true }
        if k.inject == .anonVmaMergeDropsAnonVma { return true }
        writeLock(k, av)
        linkTail(av, kept)
        k.vmaRecord(kept).pointee.ctx.store(av, ordering: .releasing)
        writeUnlock(k, av)
        return true
    }

    /// fork: the child's copy of a VMA shares its anon_vma.
    func vmaForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool {
        let av = k.vmaCtx(parent)
        if av != 0 { link(k, av, child) }
        return true
    }

    /// mremap's copy_vma: the new VMA joins the anon_vma, after the old one.
    func vmaCopied<P>(_ k: Kernel<Self, P>, old: UInt32, new: UInt32, cpu: CPU) -> Bool {
        let av = k.vmaCtx(old)
        if av != 0 { link(k, av, new) }
        return true
    }

    /// The page offset is what page.index holds, so the moved VMA keeps it;
    /// the planted bug gives it the new address's offset, as a fresh mmap.
    func movedPgoff<P>(_ k: Kernel<Self, P>, old pgoff: UInt64, newStart: UInt64) -> UInt64 {
        k.inject == .anonVmaMremapPgoff ? newStart : pgoff
    }

    /// __split_vma: the new half joins its anon_vma (the planted bug leaves
    /// it off the list: its pages are then found by no walk).
    func vmaSplit<P>(_ k: Kernel<Self, P>, vma: UInt32, new: UInt32, cpu: CPU) -> Bool {
        let av = k.vmaCtx(vma)
        if av != 0 && k.inject != .anonVmaSplitUnlinked { link(k, av, new) }
        return true
    }

    /// anon_vma_unlink: the VMA leaves its list; the anon_vma dies with its
    /// last VMA, after a grace period (walkers may be on it).
    func vmaUnmapped<P>(_ k: Kernel<Self, P>, vma: UInt32, cpu: CPU) {
        let av = links[Int(vma)].on.load(ordering: .relaxed)
        guard av != 0 else { return }
        writeLock(k, av)
        let h = heads[Int(av)]
        let p = links[Int(vma)].prev.load(ordering: .relaxed)
        let n = links[Int(vma)].next.load(ordering: .relaxed)
        if p == 0 { h.pointee.first.store(n, ordering: .releasing) } else { links[Int(p)].next.store(n, ordering: .releasing) }
        if n == 0 { h.pointee.last.store(p, ordering: .relaxed) } else { links[Int(n)].prev.store(p, ordering: .relaxed) }
        let empty = h.pointee.count.wrappingSubtract(1, ordering: .relaxed).newValue == 0
        links[Int(vma)].on.store(0, ordering: .relaxed)
        writeUnlock(k, av)
        // `next[vma]` stays: a walker standing on this VMA still finds its successor.
        guard empty else { return }
        let retired: Bool
        if k.inject == .anonVmaFreeNoGrace {
            retired = slab.freeNow(av, from: SlotState.live)
        } else {
            retired = k.retire(slab, av, from: SlotState.live, cpu)
        }
        if !retired {
            k.report(.groupList, cpu: cpu, "anon_vma \(av) freed twice (state \(SlotState.name(slab.load(av))))")
        }
    }

    // MARK: Pages

    /// __page_set_anon_rmap: the anon_vma of the VMA, and the linear offset.
    @inline(__always) func pageAdded<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) {
        let r = k.vmaRecord(vma)
        let index = r.pointee.pgoff.load(ordering: .relaxed) &+ (vpn &- r.pointee.start.load(ordering: .relaxed))
        let fr = k.frames + Int(frame)
        fr.pointee.index.store(index, ordering: .relaxed)
        fr.pointee.mapping.store(r.pointee.ctx.load(ordering: .acquiring), ordering: .relaxed)
        fr.pointee.flags.bitwiseOr(FrameFlags.anon, ordering: .releasing)
    }

    /// Nothing moves: the VMA has one anon_vma, which the page names already.
    @inline(__always) func pageReused<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32) {}

    func pageCloned<P>(_ k: Kernel<Self, P>, from: UInt32, to: UInt32) { k.copyAnonAnchor(from: from, to: to) }

    /// Pages hold no reference on their anon_vma.
    @inline(__always) func pageFreed<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU) {}

    /// The index does not change on mremap, so walkers need no page lock.
    @inline(__always) func moveNeedsPageLock<P>(_ k: Kernel<Self, P>) -> Bool { false }

    @inline(__always) func pageMove<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32) -> PageMove { .keep }

    func pageMoved<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, newVpn: UInt64, cpu: CPU) {}

    /// do_swap_page: a swap-cache page no PTE maps takes the faulting VMA's
    /// anon_vma and offset (page_add_anon_rmap on its first mapping); one
    /// still mapped elsewhere is mapped here if this VMA is on its anon_vma
    /// at its offset, which fork, split and mremap guarantee for a swap
    /// entry they carried. Otherwise the caller copies.
    func canMapCached<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) -> Bool {
        let fr = k.frames + Int(frame)
        if fr.pointee.mapcount.load(ordering: .relaxed) == 0 {
            // The page is locked: walkers, which read mapping and index
            // under the page lock, see the old anchor or the new one.
            pageAdded(k, frame: frame, mm: mm, vma: vma, vpn: vpn)
            return true
        }
        return linearOK(k, frame: frame, vma: vma, vpn: vpn)
    }

    @inline(__always) private func linearOK<P>(_ k: Kernel<Self, P>, frame: UInt32, vma: UInt32, vpn: UInt64) -> Bool {
        let r = k.vmaRecord(vma)
        return k.frames[Int(frame)].mapping.load(ordering: .relaxed) == r.pointee.ctx.load(ordering: .acquiring)
            && k.frames[Int(frame)].index.load(ordering: .relaxed)
                == r.pointee.pgoff.load(ordering: .relaxed) &+ (vpn &- r.pointee.start.load(ordering: .relaxed))
    }

    // MARK: Walk

    /// Inlined into each caller so the visit closure (a PTE check and a
    /// rewrite) is inlined too: out of line, every mm visited paid an
    /// indirect call, about 5% of a migration.
    @inline(__always)
    func walk<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU, _ visit: (UInt32, UInt64) -> Void) -> Int {
        let fr = k.frames + Int(frame)
        let rcu = sync == .rcu
        let locked = s.pointee.walkLocked
        if rcu { k.walkReadLock(cpu) }
        defer { if rcu { k.walkReadUnlock(cpu) } }
        let av = fr.pointee.mapping.load(ordering: .acquiring)
        let index = fr.pointee.index.load(ordering: .acquiring)
        guard av != 0 else { return 0 }
        guard slab.contains(av) else {
            k.report(.lifetime, frame: frame, cpu: cpu, "page.mapping names anon_vma \(av), outside 1...\(slab.capacity)")
            return 0
        }
        k.raceWindow(cpu)  // between reading page.mapping and locking the anon_vma
        // page_lock_anon_vma: the lock of whatever the slot holds now (locks
        // outlive their anon_vma), taken inside the read-side section under
        // --sync rcu; the re-check below makes it the page's.
        switch sync {
        case .rcu: if locked { P.lock(s.pointee.lock.locks[Int(av)], .rmapList, LockSite(#fileID, #line)) }
        case .rwlock: P.readLock(s.pointee.rwlock.locks[Int(av)], .rmapListRW, LockSite(#fileID, #line))
        case .mutex: P.lock(s.pointee.lock.locks[Int(av)], .rmapList, LockSite(#fileID, #line))
        }
        defer {
            switch sync {
            case .rcu: if locked { P.unlock(s.pointee.lock.locks[Int(av)]) }
            case .rwlock: P.unlock(s.pointee.rwlock.locks[Int(av)])
            case .mutex: P.unlock(s.pointee.lock.locks[Int(av)])
            }
        }
        // What the anon_vma was when we looked it up, then the re-check.
        // A page still mapped now keeps a VMA on this anon_vma's list, so it
        // was live a moment ago and stays allocated while we are inside the
        // read-side section (or hold its lock). A page no longer mapped
        // proves nothing: its anon_vma may be empty, freed, even reused.
        let stateAtLookup = slab.load(av)
        let generation = slab.generation[Int(av)]  // plain read: see SlotFreeTarget
        if k.inject != .anonVmaNoRecheck && fr.pointee.mapcount.load(ordering: .acquiring) == 0 {
            return 0
        }
        if k.checks != .off && stateAtLookup != SlotState.live {
            k.report(.lifetime, frame: frame, vpn: index, cpu: cpu,
                     "rmap walk uses anon_vma \(av), which was \(SlotState.name(stateAtLookup)) when looked up")
        }
        var visited = 0
        // Loaded once (the acquire loads below would make them reloads).
        let slots = k.spaces.vmas.capacity
        let vmaStates = k.spaces.vmas
        let links = self.links
        let checked = k.checks != .off
        let cycle = s.pointee.vmaCapacity
        var vma = heads[Int(av)].pointee.first.load(ordering: .acquiring)
        while vma != 0 {
            guard vma >= 1 && Int(vma) <= slots else {
                k.report(.groupList, frame: frame, cpu: cpu, "anon_vma \(av) list links to VMA \(vma), outside 1...\(slots)")
                break
            }
            visited += 1
            if visited == 1 { k.longReaderDelay(cpu) }
            if checked && vmaStates.load(vma) == SlotState.free {
                k.report(.lifetime, frame: frame, cpu: cpu, "anon_vma \(av) list reaches freed VMA \(vma)")
                break
            }
            if let at = k.vmaAddress(vma, index: index) { visit(at.mm, at.vpn) }
            vma = links[Int(vma)].next.load(ordering: .acquiring)
            if visited > cycle {
                k.report(.groupList, frame: frame, cpu: cpu, "anon_vma \(av) list does not end (cycle)")
                break
            }
        }
        // An anon_vma freed while we were inside the section: its free did
        // not wait for a grace period (or for its lock).
        if k.checks != .off && slab.generation[Int(av)] != generation {
            k.report(.lifetime, frame: frame, vpn: index, cpu: cpu, "anon_vma \(av) was freed during an rmap walk over it")
        }
        return visited
    }

    /// Invariant 1: the PTE's VMA is on the page's anon_vma, at the page's
    /// offset.
    func locationOK<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64) -> Bool {
        let vma = k.findVMA(mm, vpn)
        return vma != 0 && linearOK(k, frame: frame, vma: vma, vpn: vpn)
    }

    // MARK: Audit

    func audit<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        let n = s.pointee.vmaCapacity
        // Which VMAs each anon_vma should list: live VMAs of live mms whose
        // ctx names it.
        var expect = [Int32](repeating: 0, count: n + 1)
        for m in 1...k.config.mmSlots where k.spaces.isLiveOrDying(m) {
            for t in 0..<MachineConfig.maxVMAs {
                let v = k.vmaHandle(UInt32(m), t)
                guard v != 0, k.spaces.vmas.contains(v) else { continue }
                let av = k.vmaCtx(v)
                guard av != 0 else { continue }
                if !slab.contains(av) || slab.load(av) != SlotState.live {
                    report(Violation(kind: .lifetime, mm: UInt32(m), detail: "VMA \(v) points to anon_vma \(av), which is not live"))
                    continue
                }
                if links[Int(v)].on.load(ordering: .relaxed) != av {
                    report(Violation(kind: .groupList, mm: UInt32(m), detail: "VMA \(v) points to anon_vma \(av) but is listed on \(links[Int(v)].on.load(ordering: .relaxed))"))
                }
                expect[Int(av)] += 1
            }
        }
        for av in 1...n where slab.load(UInt32(av)) == SlotState.live {
            var count: Int32 = 0
            var last: UInt32 = 0
            var v = heads[av].pointee.first.load(ordering: .acquiring)
            while v != 0 && Int(count) <= n {
                guard k.spaces.vmas.contains(v) else {
                    report(Violation(kind: .groupList, detail: "anon_vma \(av) links to VMA \(v), outside 1...\(n)"))
                    break
                }
                if k.spaces.vmas.load(v) != SlotState.live {
                    report(Violation(kind: .lifetime, detail: "anon_vma \(av) lists VMA \(v), which is \(SlotState.name(k.spaces.vmas.load(v)))"))
                } else if k.vmaCtx(v) != UInt32(av) {
                    report(Violation(kind: .groupList, detail: "anon_vma \(av) lists VMA \(v), which points to anon_vma \(k.vmaCtx(v))"))
                }
                if links[Int(v)].prev.load(ordering: .relaxed) != last {
                    report(Violation(kind: .groupList, detail: "anon_vma \(av): prev link of VMA \(v) broken"))
                }
                last = v
                count += 1
                v = links[Int(v)].next.load(ordering: .relaxed)
            }
            if last != heads[av].pointee.last.load(ordering: .relaxed) {
                report(Violation(kind: .groupList, detail: "anon_vma \(av): tail is \(heads[av].pointee.last.load(ordering: .relaxed)), list ends at \(last)"))
            }
            if count != heads[av].pointee.count.load(ordering: .relaxed) || count != expect[av] {
                report(Violation(kind: .groupList, detail: "anon_vma \(av) lists \(count) VMAs, \(expect[av]) point to it, count says \(heads[av].pointee.count.load(ordering: .relaxed))"))
            }
            if count == 0 {
                report(Violation(kind: .leak, detail: "anon_vma \(av) is empty but live"))
            }
        }
        // Mapped pages name a live anon_vma (unmapped swap-cache pages may
        // name a dead one: it is replaced when they are mapped again).
        for f in 1...k.config.frames {
            let fl = k.frames[f].flags.load(ordering: .relaxed)
            guard fl & FrameFlags.anon != 0 && fl & FrameFlags.free == 0,
                  k.frames[f].mapcount.load(ordering: .relaxed) > 0 else { continue }
            let av = k.frames[f].mapping.load(ordering: .relaxed)
            if !slab.contains(av) || slab.load(av) != SlotState.live {
                report(Violation(kind: .lifetime, frame: UInt32(f), detail: "mapped page names anon_vma \(av), which is not live"))
            }
        }
    }

    func leakCheck<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        let left = slab.pool.inUse - k.caches.cachedCount(.contexts)
        if left != 0 {
            report(Violation(kind: .leak, detail: "\(left) anon_vmas still allocated"))
        }
    }

    /// Live anon_vmas and the VMAs on their lists; 2.6.7's anon_vma is 24
    /// bytes (spinlock, list head) and every VMA carries 24 (the pointer and
    /// its list node).
    func metadata<P>(_ k: Kernel<Self, P>) -> RmapMetadata {
        var m = RmapMetadata()
        for av in 1...s.pointee.vmaCapacity where slab.load(UInt32(av)) == SlotState.live {
            m.contexts += 1
            m.links += Int(heads[av].pointee.count.load(ordering: .relaxed))
        }
        var vmas = 0
        for v in 1...k.spaces.vmas.capacity where k.spaces.vmas.load(UInt32(v)) == SlotState.live { vmas += 1 }
        m.maxChain = m.contexts > 0 ? 1 : 0
        m.bytes = m.contexts * 24 + vmas * 24
        return m
    }
}
