import Synchronization
import URCUShim
#if canImport(Glibc)
import Glibc
#endif

/// The seed's scheme (Linus Torvalds, "anon_vma RFC2", 13 March 2004): each
/// anonymous page belongs to one anon memory group and one virtual address
/// (`page.mapping` = group handle, `page.index` = vpn); the group lists every
/// mm that may map its pages, and an rmap walk looks at `page.index` in each.
///
/// Group members form a singly-linked RCU list (`next`, published with
/// release, read with acquire) with a `prev` array and `tail` that only
/// writers use, under the group mutex. Removal splices the predecessor past
/// the mm but leaves the mm's own `next` intact, so a walker standing on it
/// continues; the mm slot is recycled only after a grace period.
///
/// References on a group: one per member mm and one per page whose mapping
/// names it (as in Hugh Dickins' anonmm). The last put retires the slot,
/// freed only after a grace period: a walker that read `page.mapping` under
/// RCU may still hold the handle.
///
/// Walk order: fork appends the child at the tail, after its parent, and
/// before copying any PTE. A walker that passed the parent before fork copied
/// a PTE meets the child later, with the copy in it; one that reaches the
/// parent after the copy finds both. Either way it sees every mapping.
/// The anongroup scheme's tables, allocated once (see `Kernel` for why
/// the scheme itself is one pointer).
struct AnonGroupState {
    /// Group slots: state, generation and deferred free (see RCUSlab).
    let slab: RCUSlab
    /// One reference per member mm and per page naming the group: written
    /// on every first touch and page free, so each on lines of its own.
    let refcount: PaddedArray<Atomic<Int32>>
    /// First member mm, 0 when empty. Writers under `lock`; readers acquire.
    let head: PaddedArray<Atomic<UInt32>>
    /// Last member and member count, under `lock` only.
    let tail: UnsafeMutablePointer<UInt32>
    let members: UnsafeMutablePointer<Int32>
    /// Writers' lock (and readers' lock under `--sync mutex`).
    let lock: MutexArray
    /// Readers' and writers' lock under `--sync rwlock`.
    let rwlock: RWLockArray
    let sync: ListSync

    /// Per-mm data, indexed by mm handle, one padded block per mm: faults
    /// read an mm's group on every first touch while fork and exit of other
    /// mms rewrite their links.
    let links: PaddedArray<GroupLink>


    init(config: MachineConfig, log: ViolationLog) {
        // A group per live mm at most, plus groups kept alive by pages.
        let ng = config.mmSlots
        let nm = config.mmSlots
        sync = config.sync
        slab = RCUSlab(kind: .contexts, capacity: ng, nodes: config.nodes, log: log)
        refcount = PaddedArray(count: ng + 1)
        head = PaddedArray(count: ng + 1)
        for i in 0...ng {
            refcount[i].initialize(to: Atomic(0))
            head[i].initialize(to: Atomic(0))
        }
        tail = .allocate(capacity: ng + 1)
        tail.initialize(repeating: 0, count: ng + 1)
        members = .allocate(capacity: ng + 1)
        members.initialize(repeating: 0, count: ng + 1)
        lock = MutexArray(count: ng + 1)
        rwlock = RWLockArray(count: ng + 1)
        links = PaddedArray(count: nm + 1)
        for i in 0...nm { links[i].initialize(to: GroupLink()) }
    }

}

struct AnonGroupRmap: VMABlindRmap, @unchecked Sendable {
    let s: UnsafeMutablePointer<AnonGroupState>

    @inline(__always) var slab: RCUSlab { s.pointee.slab }
    @inline(__always) var refcount: PaddedArray<Atomic<Int32>> { s.pointee.refcount }
    @inline(__always) var head: PaddedArray<Atomic<UInt32>> { s.pointee.head }
    @inline(__always) var tail: UnsafeMutablePointer<UInt32> { s.pointee.tail }
    @inline(__always) var members: UnsafeMutablePointer<Int32> { s.pointee.members }
    @inline(__always) var lock: MutexArray { s.pointee.lock }
    @inline(__always) var rwlock: RWLockArray { s.pointee.rwlock }
    @inline(__always) var sync: ListSync { s.pointee.sync }
    @inline(__always) var links: PaddedArray<GroupLink> { s.pointee.links }
    var state: PaddedArray<Atomic<UInt32>> { slab.state }
    var slotPool: NodePool { slab.pool }
    var capacity: Int { slab.capacity }

    static var kind: SchemeKind { .anongroup }
    /// Per mm: the list link (next, prev) and the group handle, 12 bytes;
    /// per VMA nothing. (The group itself, about 24 bytes, is shared by the
    /// whole fork tree.)
    static var walkersReadVMAs: Bool { false }
    static var metadataBytes: (perVMA: Int, perMM: Int) { (0, 12) }

    func lockName(address: UInt) -> String? {
        if let i = s.pointee.lock.locks.index(of: address) { return "anongroup \(i) lock" }
        if let i = s.pointee.rwlock.locks.index(of: address) { return "anongroup \(i) rwlock" }
        return nil
    }

    init(config: MachineConfig, log: ViolationLog) {
        s = .allocate(capacity: 1)
        s.initialize(to: AnonGroupState(config: config, log: log))
    }

    func destroy() {
        let ng = slab.capacity
        slab.destroy()
        for i in 0...ng { refcount[i].deinitialize(count: 1); head[i].deinitialize(count: 1) }
        refcount.deallocate(); head.deallocate()
        tail.deallocate(); members.deallocate()
        lock.destroy(); rwlock.destroy()
        for i in 0...ng { links[i].deinitialize(count: 1) }
        links.deallocate()
        s.deinitialize(count: 1)
        s.deallocate()
    }

    var contextsInUse: Int { slab.pool.inUse }

    /// The group of a live or dying mm.
    @inline(__always) func group(of mm: UInt32) -> UInt32 { links[Int(mm)].pointee.group }

    // MARK: Writers (group lock held)

    @inline(__always) private func writeLock<P>(_ k: Kernel<Self, P>, _ g: UInt32,
                                                file: StaticString = #fileID, line: UInt = #line) {
        P.lock(lock.locks[Int(g)], .rmapList, LockSite(file, line))
        if sync == .rwlock { P.writeLock(rwlock.locks[Int(g)], .rmapListRW, LockSite(file, line)) }
    }

    @inline(__always) private func writeUnlock<P>(_ k: Kernel<Self, P>, _ g: UInt32) {
        if sync == .rwlock { P.unlock(rwlock.locks[Int(g)]) }
        P.unlock(lock.locks[Int(g)])
    }

    private func link(_ g: UInt32, _ mm: UInt32, atHead: Bool) {
        let t = tail[Int(g)]
        if atHead && t != 0 {
            let first = head[Int(g)].pointee.load(ordering: .relaxed)
            links[Int(mm)].pointee.next.store(first, ordering: .relaxed)
            links[Int(mm)].pointee.prev = 0
            links[Int(first)].pointee.prev = mm
            head[Int(g)].pointee.store(mm, ordering: .releasing)
        } else {
            links[Int(mm)].pointee.next.store(0, ordering: .relaxed)
            links[Int(mm)].pointee.prev = t
            if t == 0 { head[Int(g)].pointee.store(mm, ordering: .releasing) } else { links[Int(t)].pointee.next.store(mm, ordering: .releasing) }
            tail[Int(g)] = mm
        }
        members[Int(g)] += 1
    }

    // MARK: mm events

    func mmStarted<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) -> Bool {
        let g = k.cacheAlloc(.contexts, cpu)
        guard g != 0 else { return false }
        refcount[Int(g)].pointee.store(1, ordering: .relaxed)
        head[Int(g)].pointee.store(0, ordering: .relaxed)
        tail[Int(g)] = 0
        members[Int(g)] = 0
        slab.publish(g)
        links[Int(mm)].pointee.group = g
        writeLock(k, g)
        link(g, mm, atHead: false)
        writeUnlock(k, g)
        return true
    }

    func mmForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool {
        let g = links[Int(parent)].pointee.group
        refcount[Int(g)].pointee.wrappingAdd(1, ordering: .relaxed)
        links[Int(child)].pointee.group = g
        writeLock(k, g)
        link(g, child, atHead: k.inject == .forkLinkAtHead)
        writeUnlock(k, g)
        return true
    }

    func mmExited<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) {
        let g = links[Int(mm)].pointee.group
        writeLock(k, g)
        let p = links[Int(mm)].pointee.prev
        let n = links[Int(mm)].pointee.next.load(ordering: .relaxed)
        if p == 0 { head[Int(g)].pointee.store(n, ordering: .releasing) } else { links[Int(p)].pointee.next.store(n, ordering: .releasing) }
        if n == 0 { tail[Int(g)] = p } else { links[Int(n)].pointee.prev = p }
        members[Int(g)] -= 1
        writeUnlock(k, g)
        // `next[mm]` stays: a walker on this mm still finds its successor.
        groupPut(k, g, cpu: cpu)
    }

    /// The child joins the list before fork copies a PTE (see the type's
    /// comment); the planted bug links it after.
    func forkLinkPhase<P>(_ k: Kernel<Self, P>) -> ForkLinkPhase {
        k.inject == .forkLinkAfterCopy ? .afterCopy : .beforeCopy
    }

    private func groupPut<P>(_ k: Kernel<Self, P>, _ g: UInt32, cpu: CPU) {
        let now = refcount[Int(g)].pointee.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            if !k.retire(slab, g, from: SlotState.live, cpu) {
                k.report(.groupList, cpu: cpu, "group \(g) freed twice (state \(SlotState.name(slab.load(g))))")
            }
        } else if now < 0 {
            k.report(.groupList, cpu: cpu, "group \(g) refcount went negative")
        }
    }

    // VMA events: the group is per mm, so VMAs need nothing (VMABlindRmap).

    // MARK: Pages

    @inline(__always) func pageAdded<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) {
        let g = links[Int(mm)].pointee.group
        if k.inject != .groupFreedWhilePages { refcount[Int(g)].pointee.wrappingAdd(1, ordering: .relaxed) }
        k.frames[Int(frame)].index.store(vpn, ordering: .relaxed)
        k.frames[Int(frame)].mapping.store(g, ordering: .relaxed)
        k.frames[Int(frame)].flags.bitwiseOr(FrameFlags.anon, ordering: .releasing)
    }

    /// Nothing moves: the page names the mm's group and its address, which
    /// a write in place keeps (there is no per-VMA context to move it to).
    @inline(__always) func pageReused<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32) {}

    func pageCloned<P>(_ k: Kernel<Self, P>, from: UInt32, to: UInt32) {
        let g = k.frames[Int(from)].mapping.load(ordering: .relaxed)
        if k.inject != .groupFreedWhilePages { refcount[Int(g)].pointee.wrappingAdd(1, ordering: .relaxed) }
        k.copyAnonAnchor(from: from, to: to)
    }

    func pageFreed<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU) {
        let g = k.frames[Int(frame)].mapping.load(ordering: .relaxed)
        if g != 0 && k.inject != .groupFreedWhilePages { groupPut(k, g, cpu: cpu) }
    }

    // MARK: mremap and swap-in: the seed's two rules

    /// Re-indexing changes page.index, which walkers read under the page
    /// lock: mremap must hold it (the planted bug does not).
    @inline(__always) func moveNeedsPageLock<P>(_ k: Kernel<Self, P>) -> Bool { k.inject != .mremapNoPageLock }

    func pageMove<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32) -> PageMove {
        // The seed: a page still shared after fork must be copied, since its
        // other PTEs stay at the old address and one index names them all.
        // mremap holds the mmap lock for writing, so no fork of this mm can
        // raise the count meanwhile. The swap cache's reference does not
        // count: only PTEs pin an address.
        if k.inject == .mremapNoCopy { return .reindex }
        return k.frames[Int(frame)].mapcount.load(ordering: .relaxed) == 1 ? .reindex : .copy
    }

    func pageMoved<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, newVpn: UInt64, cpu: CPU) {
        k.frames[Int(frame)].index.store(newVpn, ordering: .releasing)
    }

    /// Hugh Dickins' rmap 11 rule: a swap-cache page may be mapped again only
    /// where its one index says it is, in its own group; a sharer whose swap
    /// entry mremap moved elsewhere gets a copy. The planted bug maps it
    /// anywhere.
    func canMapCached<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) -> Bool {
        if k.inject == .swapInStaleIndex { return true }
        return k.frames[Int(frame)].mapping.load(ordering: .relaxed) == links[Int(mm)].pointee.group
            && k.frames[Int(frame)].index.load(ordering: .relaxed) == vpn
    }

    // MARK: Walk

    /// Inlined into each caller so the visit closure (a PTE check and a
    /// rewrite) is inlined too: out of line, every mm visited paid an
    /// indirect call, about 5% of a migration.
    @inline(__always)
    func walk<P>(_ k: Kernel<Self, P>, frame: UInt32, cpu: CPU, _ visit: (UInt32, UInt64) -> Void) -> Int {
        let g = k.frames[Int(frame)].mapping.load(ordering: .acquiring)
        let vpn = k.frames[Int(frame)].index.load(ordering: .acquiring)
        guard g != 0 else { return 0 }
        guard slab.contains(g) else {
            k.report(.lifetime, frame: frame, cpu: cpu, "page.mapping names group \(g), outside 1...\(slab.capacity)")
            return 0
        }
        k.raceWindow(cpu)  // between reading page.mapping/index and the list
        let protect = k.inject != .walkOutsideRCU
        if protect {
            switch sync {
            case .rcu: k.walkReadLock(cpu)
            case .rwlock: P.readLock(rwlock.locks[Int(g)], .rmapListRW, LockSite(#fileID, #line))
            case .mutex: P.lock(lock.locks[Int(g)], .rmapList, LockSite(#fileID, #line))
            }
        }
        cpu.pointee.lastGeneration = slab.generation[Int(g)]  // plain read: see SlotFreeTarget
        if k.checks != .off && state[Int(g)].pointee.load(ordering: .acquiring) == SlotState.free {
            k.report(.lifetime, frame: frame, vpn: vpn, cpu: cpu, "page.mapping names freed group \(g)")
        }
        var visited = 0
        // Loaded once: every acquire load in the loop would make the
        // compiler reload them (and the bound through the pool object).
        let slots = k.mms.capacity
        let links = self.links
        var mm = head[Int(g)].pointee.load(ordering: .acquiring)
        while mm != 0 {
            guard mm >= 1 && Int(mm) <= slots else {
                k.report(.groupList, frame: frame, cpu: cpu, "group \(g) list links to mm \(mm), outside 1...\(slots)")
                break
            }
            visited += 1
            if visited == 1 { k.longReaderDelay(cpu) }  // handle in hand, slot not yet touched
            visit(mm, vpn)
            mm = links[Int(mm)].pointee.next.load(ordering: .acquiring)
            if visited > slots {
                k.report(.groupList, frame: frame, cpu: cpu, "group \(g) list does not end (cycle)")
                break
            }
        }
        if protect {
            switch sync {
            case .rcu: k.walkReadUnlock(cpu)
            case .rwlock: P.unlock(rwlock.locks[Int(g)])
            case .mutex: P.unlock(lock.locks[Int(g)])
            }
        }
        return visited
    }

    @inline(__always) func locationOK<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64) -> Bool {
        k.frames[Int(frame)].mapping.load(ordering: .relaxed) == links[Int(mm)].pointee.group
            && k.frames[Int(frame)].index.load(ordering: .relaxed) == vpn
    }

    // MARK: Audit

    func audit<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        let ng = slab.capacity
        // Expected references: member mms + anon pages naming the group.
        var expectRefs = [Int32](repeating: 0, count: ng + 1)
        var expectMembers = [Int32](repeating: 0, count: ng + 1)
        for m in 1...k.config.mmSlots where k.spaces.isLiveOrDying(m) {
            let g = Int(links[m].pointee.group)
            if g == 0 || g > ng || state[g].pointee.load(ordering: .relaxed) != SlotState.live {
                report(Violation(kind: .groupList, mm: UInt32(m), detail: "mm's group \(g) is not live"))
                continue
            }
            expectRefs[g] += 1
            expectMembers[g] += 1
        }
        for f in 1...k.config.frames {
            let fl = k.frames[f].flags.load(ordering: .relaxed)
            guard fl & FrameFlags.anon != 0 && fl & FrameFlags.free == 0 else { continue }
            let g = Int(k.frames[f].mapping.load(ordering: .relaxed))
            if g == 0 || g > ng || state[g].pointee.load(ordering: .relaxed) == SlotState.free {
                report(Violation(kind: .lifetime, frame: UInt32(f), detail: "page.mapping names freed group \(g)"))
                continue
            }
            expectRefs[g] += 1
        }
        for g in 1...ng where state[g].pointee.load(ordering: .relaxed) == SlotState.live {
            // Walk the list: it must hold exactly the live mms of this group.
            var n: Int32 = 0
            var mm = head[g].pointee.load(ordering: .acquiring)
            var last: UInt32 = 0
            while mm != 0 && n <= Int32(k.config.mmSlots) {
                guard k.mms.contains(mm) else {
                    report(Violation(kind: .groupList, detail: "group \(g) links to mm \(mm), outside 1...\(k.mms.capacity)"))
                    break
                }
                if !k.spaces.isLiveOrDying(Int(mm)) {
                    report(Violation(kind: .groupList, mm: mm, detail: "group \(g) lists an mm that is not live"))
                }
                if links[Int(mm)].pointee.group != UInt32(g) {
                    report(Violation(kind: .groupList, mm: mm, detail: "group \(g) lists an mm of group \(links[Int(mm)].pointee.group)"))
                }
                if links[Int(mm)].pointee.prev != last {
                    report(Violation(kind: .groupList, mm: mm, detail: "group \(g): prev link broken"))
                }
                last = mm
                n += 1
                mm = links[Int(mm)].pointee.next.load(ordering: .relaxed)
            }
            if last != tail[g] {
                report(Violation(kind: .groupList, detail: "group \(g): tail is \(tail[g]), list ends at \(last)"))
            }
            if n != expectMembers[g] || n != members[g] {
                report(Violation(kind: .groupList, detail: "group \(g) lists \(n) mms, \(expectMembers[g]) belong to it, count says \(members[g])"))
            }
            let rc = refcount[g].pointee.load(ordering: .relaxed)
            if rc != expectRefs[g] {
                report(Violation(kind: .groupList, detail: "group \(g) refcount \(rc), expected \(expectRefs[g]) (members + pages)"))
            }
        }
    }

    func leakCheck<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        let left = slab.pool.inUse - k.caches.cachedCount(.contexts)
        if left != 0 {
            report(Violation(kind: .leak, detail: "\(left) anongroups still allocated"))
        }
    }

    /// Live groups and their member mms; a group is about 24 bytes (lock,
    /// list head, count) and each mm adds its 12-byte link (the seed).
    func metadata<P>(_ k: Kernel<Self, P>) -> RmapMetadata {
        var m = RmapMetadata()
        for g in 1...slab.capacity where slab.load(UInt32(g)) == SlotState.live {
            m.contexts += 1
            m.links += Int(members[g])
        }
        m.maxChain = m.contexts > 0 ? 1 : 0
        m.bytes = m.contexts * 24 + m.links * AnonGroupRmap.metadataBytes.perMM
        return m
    }
}

/// An mm's place in its anongroup: the RCU list link (`next`, published
/// with release, read with acquire), the writers-only back link, and the
/// group, set (by mmStarted/mmForked) before the mm is reachable by any
/// walker or pinner, and fixed for its life.
struct GroupLink: ~Copyable {
    let next = Atomic<UInt32>(0)
    var prev: UInt32 = 0
    var group: UInt32 = 0
}
