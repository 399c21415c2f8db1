import Synchronization

/// Rik van Riel's rmap as Linux 2.5 to 2.6.5 ran it: every anonymous page
/// carries the list of PTEs that map it. A page mapped once names its PTE
/// directly (page->pte.direct, PG_direct); from its second mapping on, a
/// chain of blocks of NRPTE entries (struct pte_chain), newest block first.
/// Every PTE install and clear updates the chain under the page's chain
/// lock (pte_chain_lock): faults, fork (one entry per copied PTE), mremap
/// (clear and install), COW, swap-out, migration, zap. The walk visits
/// exactly the PTEs that map the page, nothing else: no mm, no VMA, no
/// offset arithmetic, no RCU. The cost is the 2004 thread's complaint: 8
/// bytes per mapped PTE (a block per 7 once shared), and fork and exit pay
/// a chain update per PTE.
///
/// Only anonymous pages are chained here: page cache pages keep the file
/// branch's i_mmap walk (2.6.5 chained them too; section 12).
///
/// Locks (classes: `LockClass`): the chain lock ranks innermost, after the
/// ptl: installs and clears take it under the ptl; the walk holds it and
/// only trylocks each mm's ptl (2.6.5's try_to_unmap skipped a busy mm),
/// so migration, which must be complete, walks again while a trylock
/// failed. Migration installs into the new page's chain while walking the
/// old one's (`pteChainNested`). A PTE the walker itself clears comes off
/// the chain it holds, at the walk's cursor.
struct PTEChainsRmap: VMABlindRmap, @unchecked Sendable {
    let s: UnsafeMutablePointer<PTEChainsState>

    @inline(__always) var heads: UnsafeMutablePointer<PTEChainHead> { s.pointee.heads }
    @inline(__always) var words: UnsafeMutablePointer<Atomic<UInt64>> { s.pointee.words }
    @inline(__always) var pool: NodePool { s.pointee.pool }
    var slotPool: NodePool { pool }

    static var kind: SchemeKind { .pteChains }
    /// The walk reads PTE locations only: VMAs are freed at once.
    static var walkersReadVMAs: Bool { false }
    /// Nothing per VMA or mm: the cost is per mapped PTE (`metadata`).
    static var metadataBytes: (perVMA: Int, perMM: Int) { (0, 0) }
    static var walkIsExact: Bool { true }
    static var walkTrylocksPTL: Bool { true }
    /// sizeof(struct pte_chain) on 64-bit: NRPTE entries and the link in one line.
    static let blockBytes = 64

    init(config: MachineConfig, log: ViolationLog) {
        s = .allocate(capacity: 1)
        s.initialize(to: PTEChainsState(config: config))
    }

    func destroy() {
        s.pointee.destroy()
        s.deinitialize(count: 1)
        s.deallocate()
    }

    func lockName(address: UInt) -> String? {
        guard address & PTEChainsRmap.keyTag == PTEChainsRmap.keyTag else { return nil }
        return "pte_chain_lock of frame \(address & 0xFFFF_FFFF)"
    }

    var contextsInUse: Int { pool.inUse }

    // MARK: Entries and blocks

    @inline(__always) static func entry(_ mm: UInt32, _ vpn: UInt64) -> UInt64 { UInt64(mm) << 32 | vpn }
    @inline(__always) static func mm(of e: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: e >> 32) }
    @inline(__always) static func vpn(of e: UInt64) -> UInt64 { e & 0xFFFF_FFFF }

    /// Word `i` of block `b` (0: the link, 1...7: entries).
    @inline(__always) func word(_ b: UInt32, _ i: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        words + (Int(b) * PTEChainsState.blockWords + i)
    }

    /// Entries in the newest block of a chain of `n` (blocks before it are full).
    @inline(__always) static func fill(_ n: UInt32) -> Int { n == 0 ? 0 : Int((n - 1) % UInt32(PTEChainsState.nrpte)) + 1 }

    // MARK: The chain lock (a bit spinlock: waits through the platform)

    static let keyTag: UInt = 3 << (UInt.bitWidth - 2)
    @inline(__always) static func lockKey(_ f: UInt32) -> UInt { UInt(f) | keyTag }

    @inline(__always)
    func lockChain<P>(_ k: Kernel<Self, P>, _ f: UInt32, nested: Bool, file: StaticString = #fileID, line: UInt = #line) {
        P.acquired(nested ? .pteChainNested : .pteChain, key: Self.lockKey(f), trylock: false, LockSite(file, line))
        let l = heads + Int(f)
        while l.pointee.lock.exchange(1, ordering: .acquiring) != 0 { P.relax() }
    }

    @inline(__always) func unlockChain<P>(_ k: Kernel<Self, P>, _ f: UInt32) {
        P.released(.pteChain, key: Self.lockKey(f))
        heads[Int(f)].lock.store(0, ordering: .releasing)
    }

    /// The CPU's walk cursor.
    @inline(__always) func cursor(_ cpu: CPU) -> UnsafeMutablePointer<PTEChainCursor> { s.pointee.cursors[cpu.pointee.cacheSlot] }

    /// page_add_rmap: appends `e`, turning a direct page into a chain at its
    /// second mapping (pte_chain_alloc's block). Chain lock held. False when
    /// out of blocks.
    func chainAdd<P>(_ k: Kernel<Self, P>, _ f: UInt32, _ e: UInt64, _ cpu: CPU) -> Bool {
        let h = heads + Int(f)
        let n = h.pointee.count.load(ordering: .relaxed)
        let b = h.pointee.block.load(ordering: .relaxed)
        k.raceWindow(cpu)  // count read, not yet written: only the chain lock closes it
        if b == 0 && n == 0 {
            h.pointee.direct.store(e, ordering: .relaxed)
        } else if b == 0 {
            let nb = pool.alloc()
            guard nb != 0 else { return false }
            word(nb, 0).pointee.store(0, ordering: .relaxed)
            word(nb, 1).pointee.store(h.pointee.direct.load(ordering: .relaxed), ordering: .relaxed)
            word(nb, 2).pointee.store(e, ordering: .relaxed)
            h.pointee.direct.store(0, ordering: .relaxed)
            h.pointee.block.store(nb, ordering: .relaxed)
        } else {
            let used = Self.fill(n)
            if used == PTEChainsState.nrpte || used == 0 {
                let nb = pool.alloc()
                guard nb != 0 else { return false }
                word(nb, 0).pointee.store(UInt64(b), ordering: .relaxed)
                word(nb, 1).pointee.store(e, ordering: .relaxed)
                h.pointee.block.store(nb, ordering: .relaxed)
            } else {
                word(b, used + 1).pointee.store(e, ordering: .relaxed)
            }
        }
        h.pointee.count.store(n &+ 1, ordering: .relaxed)
        return true
    }

    /// page_remove_rmap: takes `e` off the chain, moving the newest entry
    /// into its place and freeing the newest block when it empties. `at`
    /// is where the caller's walk stands (tried first). A chained page
    /// stays chained until its last entry goes (2.6's rule). Chain lock
    /// held (by the caller or its walk). False when `e` is not there.
    func chainRemove<P>(_ k: Kernel<Self, P>, _ f: UInt32, _ e: UInt64, at hint: UInt32, _ hintSlot: Int, _ cpu: CPU) -> Bool {
        let h = heads + Int(f)
        let n = h.pointee.count.load(ordering: .relaxed)
        let b = h.pointee.block.load(ordering: .relaxed)
        if b == 0 {
            guard n == 1, h.pointee.direct.load(ordering: .relaxed) == e else { return false }
            h.pointee.direct.store(0, ordering: .relaxed)
            h.pointee.count.store(0, ordering: .relaxed)
            return true
        }
        guard n > 0 else { return false }
        var fb: UInt32 = 0
        var fs = 0
        if hint != 0 && word(hint, hintSlot + 1).pointee.load(ordering: .relaxed) == e {
            fb = hint; fs = hintSlot
        } else {
            var c = b
            var used = Self.fill(n)
            var steps = 0
            search: while c != 0 && pool.contains(c) && steps <= pool.capacity {
                for i in 0..<used where word(c, i + 1).pointee.load(ordering: .relaxed) == e {
                    fb = c; fs = i
                    break search
                }
                c = UInt32(truncatingIfNeeded: word(c, 0).pointee.load(ordering: .relaxed))
                used = PTEChainsState.nrpte
                steps += 1
            }
            guard fb != 0 else { return false }
        }
        k.raceWindow(cpu)  // found, not yet removed: only the chain lock closes it
        let top = Self.fill(n) - 1
        let last = word(b, top + 1).pointee.load(ordering: .relaxed)
        word(fb, fs + 1).pointee.store(last, ordering: .relaxed)
        word(b, top + 1).pointee.store(0, ordering: .relaxed)
        h.pointee.count.store(n - 1, ordering: .relaxed)
        if top == 0 {
            let older = UInt32(truncatingIfNeeded: word(b, 0).pointee.load(ordering: .relaxed))
            h.pointee.block.store(older, ordering: .relaxed)
            freeBlock(k, b, f, cpu)
        }
        return true
    }

    func freeBlock<P>(_ k: Kernel<Self, P>, _ b: UInt32, _ f: UInt32, _ cpu: CPU?) {
        word(b, 0).pointee.store(0, ordering: .relaxed)
        if !pool.free(b) { k.report(.groupList, frame: f, cpu: cpu, "pte_chain block \(b) freed twice") }
    }

    // MARK: PTE events

    /// A PTE of `mm` at `vpn` now maps anonymous page `f` (before its
    /// mapcount counts it, so a walker holding the chain lock never finds
    /// fewer entries than mappings). ptl held.
    func pteInstalled<P>(_ k: Kernel<Self, P>, frame f: UInt32, mm: UInt32, vpn: UInt64, cpu: CPU) {
        guard k.frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.anon != 0 else { return }
        let walking = cursor(cpu).pointee.frame
        let locked = walking != f && k.inject != .pteChainsNoChainLock
        if locked { lockChain(k, f, nested: walking != 0) }
        let ok = chainAdd(k, f, Self.entry(mm, vpn), cpu)
        if locked { unlockChain(k, f) }
        if !ok { k.report(.leak, frame: f, mm: mm, vpn: vpn, cpu: cpu, "out of pte_chain blocks (\(pool.capacity))") }
    }

    /// The PTE of `mm` at `vpn` no longer maps anonymous page `f` (after
    /// its mapcount dropped it). ptl held; the chain lock too when the
    /// caller's walk is on this page.
    func pteCleared<P>(_ k: Kernel<Self, P>, frame f: UInt32, mm: UInt32, vpn: UInt64, cpu: CPU) {
        guard k.frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.anon != 0 else { return }
        let c = cursor(cpu)
        let own = c.pointee.frame == f
        let locked = !own && k.inject != .pteChainsNoChainLock
        if locked { lockChain(k, f, nested: c.pointee.frame != 0) }
        let ok = chainRemove(k, f, Self.entry(mm, vpn), at: own ? c.pointee.block : 0, own ? c.pointee.slot : 0, cpu)
        if locked { unlockChain(k, f) }
        if !ok && k.checks != .off {
            k.report(.groupList, frame: f, mm: mm, vpn: vpn, cpu: cpu, "a PTE of the page was cleared but is not on its pte chain")
        }
    }

    // MARK: mm and VMA events: nothing to do, the chains are per page.

    func mmStarted<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) -> Bool { true }
    func mmForked<P>(_ k: Kernel<Self, P>, parent: UInt32, child: UInt32, cpu: CPU) -> Bool { true }
    func mmExited<P>(_ k: Kernel<Self, P>, mm: UInt32, cpu: CPU) {}
    func forkLinkPhase<P>(_ k: Kernel<Self, P>) -> ForkLinkPhase { .beforeCopy }

    // MARK: Page events

    /// A new anonymous page: no anchor (the chain is the rmap); `index`
    /// keeps the first address, for reports only.
    @inline(__always) func pageAdded<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) {
        let fr = k.frames + Int(frame)
        fr.pointee.index.store(vpn, ordering: .relaxed)
        fr.pointee.mapping.store(0, ordering: .relaxed)
        fr.pointee.flags.bitwiseOr(FrameFlags.anon, ordering: .releasing)
    }
    @inline(__always) func pageReused<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32) {}
    /// Migration's new page becomes anonymous with an empty chain; each
    /// entry moves with its PTE in the second walk.
    func pageCloned<P>(_ k: Kernel<Self, P>, from: UInt32, to: UInt32) { k.copyAnonAnchor(from: from, to: to) }

    /// A freed page's chain must be empty: an entry left names a PTE that
    /// no longer maps it. Reported and dropped.
    func pageFreed<P>(_ k: Kernel<Self, P>, frame f: UInt32, cpu: CPU) {
        let h = heads + Int(f)
        let n = h.pointee.count.load(ordering: .relaxed)
        var b = h.pointee.block.load(ordering: .relaxed)
        guard n != 0 || b != 0 || h.pointee.direct.load(ordering: .relaxed) != 0 else { return }
        k.report(.groupList, frame: f, cpu: cpu, "page freed with \(n) entries on its pte chain")
        var steps = 0
        while b != 0 && pool.contains(b) && steps <= pool.capacity {
            let older = UInt32(truncatingIfNeeded: word(b, 0).pointee.load(ordering: .relaxed))
            for i in 1...PTEChainsState.nrpte { word(b, i).pointee.store(0, ordering: .relaxed) }
            freeBlock(k, b, f, cpu)
            b = older
            steps += 1
        }
        h.pointee.block.store(0, ordering: .relaxed)
        h.pointee.direct.store(0, ordering: .relaxed)
        h.pointee.count.store(0, ordering: .relaxed)
    }

    /// mremap moves PTEs, and their chain entries with them (clear, install).
    @inline(__always) func moveNeedsPageLock<P>(_ k: Kernel<Self, P>) -> Bool { false }
    @inline(__always) func pageMove<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32) -> PageMove { .keep }
    func pageMoved<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, newVpn: UInt64, cpu: CPU) {}
    /// A chain records any PTE: a swap-cache page may be mapped anywhere.
    func canMapCached<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vma: UInt32, vpn: UInt64) -> Bool {
        if k.frames[Int(frame)].mapcount.load(ordering: .relaxed) == 0 {
            pageAdded(k, frame: frame, mm: mm, vma: vma, vpn: vpn)
        }
        return true
    }

    /// Any address may map an anonymous page: the chain, not an anchor,
    /// says where it is mapped (exactness is the audit's check).
    func locationOK<P>(_ k: Kernel<Self, P>, frame: UInt32, mm: UInt32, vpn: UInt64) -> Bool {
        k.frames[Int(frame)].flags.load(ordering: .relaxed) & FrameFlags.anon != 0
    }
}
