import Synchronization

/// One VMA: a stretch of an mm's address space with its own identity, as
/// the anon_vma scheme needs (its lists hold VMAs) and every scheme sees
/// (the rmap is told when VMAs are created, forked, moved, split, merged
/// and unmapped).
///
/// Fields are atomics: the mm's mmap lock (write) orders its writers, and
/// rmap walkers read them under RCU or the scheme's lock while a split or
/// merge may be changing `pages` (a walker that reads a stale length visits
/// a page twice at most, which every walk tolerates).
struct VMARecord: ~Copyable {
    /// The mm the VMA belongs to, fixed for its life.
    let mm = Atomic<UInt32>(0)
    /// First virtual page.
    let start = Atomic<UInt64>(0)
    let pages = Atomic<UInt32>(0)
    /// The linear page offset of `start` (vm_pgoff): a new mapping gets its
    /// own start; fork, mremap and split keep it (the split half adds its
    /// distance).
    let pgoff = Atomic<UInt64>(0)
    /// The scheme's context for the VMA: its anon_vma (0 until the first
    /// fault prepares one); unused by anongroup.
    let ctx = Atomic<UInt32>(0)
    /// What it maps (`VMAFile`): 0 for anonymous memory, else an inode and
    /// whether shared. Fixed for the VMA's life.
    let file = Atomic<UInt32>(0)
    /// Its links on the inode's i_mmap list (under the i_mmap lock), and
    /// whether it is on it.
    let iNext = Atomic<UInt32>(0)
    let iPrev = Atomic<UInt32>(0)
    let iLinked = Atomic<Bool>(false)
    /// Its node in the inode's i_mmap interval tree (`--i-mmap tree`,
    /// `IMmapTree.swift`), under the i_mmap lock: children, parent, the
    /// last file page it covers (its key's end; the key's start is
    /// `pgoff`), and the largest such end in its subtree.
    let tLeft = Atomic<UInt32>(0)
    let tRight = Atomic<UInt32>(0)
    let tParent = Atomic<UInt32>(0)
    let tLast = Atomic<UInt64>(0)
    let tMax = Atomic<UInt64>(0)
}

/// The address-space subsystem: mm slots with their users, locks and page
/// tables, and the VMAs.
///
/// - `mms`: an RCU slab (walkers reach mms through rmap lists);
/// - `users`, `ptl`, `mmapLock`: per mm, each on lines of its own;
/// - `pgd`: 512 leaf handles per mm, under the ptl;
/// - `vmaTable`: each mm's VMAs, one 128-byte block per mm of 16 packed
///   entries (handle, start, pages: see `VMAEntry`), under the mmap lock.
///   The fault path finds its VMA in this one block instead of reading a
///   record per VMA;
/// - `vmas`, `vma`: the VMA slab (RCU: walkers read VMAs) and its records;
/// - leaves: 512 PTEs, 512 expected content words and a use count each.
/// One entry of an mm's VMA table: the VMA handle (bits 0...31), its first
/// page (32...49: below `MachineConfig.vpnLimit`) and its length (50...59:
/// at most 512). 0 is an empty entry. A copy of the VMA record's geometry,
/// kept in step by the writers (under the mmap lock for writing).
enum VMAEntry {
    @inline(__always) static func make(_ v: UInt32, start: UInt64, pages: Int) -> UInt64 {
        UInt64(v) | start << 32 | UInt64(pages) << 50
    }
    @inline(__always) static func handle(_ e: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: e) }
    @inline(__always) static func start(_ e: UInt64) -> UInt64 { (e >> 32) & 0x3_FFFF }
    @inline(__always) static func pages(_ e: UInt64) -> UInt64 { (e >> 50) & 0x3FF }
}

struct AddressSpaces {
    let mms: RCUSlab
    /// Users of each mm; pinned and unpinned around every operation.
    let users: PaddedArray<Atomic<Int32>>
    /// The page-table lock of each mm (the 2004 page_table_lock).
    let ptl: MutexArray
    /// The mmap lock of each mm: faults read; fork, mremap, munmap and split write.
    let mmapLock: RWLockArray
    let pgd: UnsafeMutablePointer<UInt32>
    let vmaTable: UnsafeMutablePointer<UInt64>
    let vmas: RCUSlab
    let vma: UnsafeMutablePointer<VMARecord>
    let leafPool: NodePool
    let ptes: UnsafeMutablePointer<UInt64>
    let expected: UnsafeMutablePointer<UInt64>
    let leafUsed: UnsafeMutablePointer<Int32>
    let mmCount: Int
    let vmaCount: Int
    let leafCount: Int

    static var vmaStride: Int { CacheLine.size / MemoryLayout<UInt64>.stride }

    init(config: MachineConfig, log: ViolationLog) {
        let nm = config.mmSlots
        mmCount = nm
        mms = RCUSlab(kind: .mms, capacity: nm, nodes: config.nodes, log: log)
        users = PaddedArray(count: nm + 1)
        for i in 0...nm { users[i].initialize(to: Atomic(0)) }
        ptl = MutexArray(count: nm + 1)
        mmapLock = RWLockArray(count: nm + 1)
        pgd = .allocate(capacity: (nm + 1) * 512)
        pgd.initialize(repeating: 0, count: (nm + 1) * 512)
        vmaTable = CacheLine.allocate(UInt64.self, count: (nm + 1) * AddressSpaces.vmaStride)
        vmaTable.initialize(repeating: 0, count: (nm + 1) * AddressSpaces.vmaStride)
        vmaCount = config.vmaCount
        vmas = RCUSlab(kind: .vmas, capacity: vmaCount, nodes: config.nodes, log: log)
        vma = .allocate(capacity: vmaCount + 1)
        for i in 0...vmaCount { (vma + i).initialize(to: VMARecord()) }
        leafCount = config.leafCount
        leafPool = NodePool(capacity: leafCount, nodes: config.nodes, trackOwnership: true)
        ptes = .allocate(capacity: (leafCount + 1) * MachineConfig.ptesPerLeaf)
        ptes.initialize(repeating: 0, count: (leafCount + 1) * MachineConfig.ptesPerLeaf)
        expected = .allocate(capacity: (leafCount + 1) * MachineConfig.ptesPerLeaf)
        expected.initialize(repeating: 0, count: (leafCount + 1) * MachineConfig.ptesPerLeaf)
        leafUsed = .allocate(capacity: leafCount + 1)
        leafUsed.initialize(repeating: 0, count: leafCount + 1)
    }

    func destroy() {
        mms.destroy()
        for i in 0...mmCount { users[i].deinitialize(count: 1) }
        users.deallocate()
        ptl.destroy()
        mmapLock.destroy()
        pgd.deallocate()
        vmaTable.deallocate()
        vmas.destroy()
        vma.deinitialize(count: vmaCount + 1); vma.deallocate()
        leafPool.destroy()
        ptes.deallocate()
        expected.deallocate()
        leafUsed.deallocate()
    }

    @inline(__always) func isLiveOrDying(_ mm: Int) -> Bool {
        let st = mms.state[mm].pointee.load(ordering: .acquiring)
        return st == SlotState.live || st == SlotState.dying
    }

    /// Each live mm's VMA table: live VMAs of this mm, inside the address
    /// space, not overlapping.
    func auditVMAs(vmaPages: Int, _ report: (Violation) -> Void) {
        var owned = 0
        for m in 1...mmCount where isLiveOrDying(m) {
            var ranges: [(UInt64, UInt64)] = []
            for k in 0..<MachineConfig.maxVMAs {
                let e = vmaTable[m * AddressSpaces.vmaStride + k]
                let v = VMAEntry.handle(e)
                guard v != 0 else { continue }
                owned += 1
                guard vmas.contains(v) else {
                    report(Violation(kind: .lifetime, mm: UInt32(m), detail: "VMA table names VMA \(v), outside 1...\(vmaCount)"))
                    continue
                }
                if vmas.load(v) != SlotState.live {
                    report(Violation(kind: .lifetime, mm: UInt32(m), detail: "VMA table names VMA \(v), which is \(SlotState.name(vmas.load(v)))"))
                }
                let r = vma + Int(v)
                if r.pointee.mm.load(ordering: .relaxed) != UInt32(m) {
                    report(Violation(kind: .lifetime, mm: UInt32(m), detail: "VMA \(v) belongs to mm \(r.pointee.mm.load(ordering: .relaxed))"))
                }
                let a = r.pointee.start.load(ordering: .relaxed), n = UInt64(r.pointee.pages.load(ordering: .relaxed))
                if VMAEntry.start(e) != a || VMAEntry.pages(e) != n {
                    report(Violation(kind: .location, mm: UInt32(m), vpn: a, detail: "VMA \(v): the mm's table says \(VMAEntry.pages(e)) pages at 0x\(String(VMAEntry.start(e), radix: 16)), the VMA \(n) at 0x\(String(a, radix: 16))"))
                }
                if n == 0 || a + n > UInt64(MachineConfig.vpnLimit) || a / UInt64(vmaPages) != (a + n - 1) / UInt64(vmaPages) {
                    report(Violation(kind: .location, mm: UInt32(m), vpn: a, detail: "VMA \(v) of \(n) pages leaves its slot"))
                }
                for (b, e) in ranges where a < e && b < a + n {
                    report(Violation(kind: .location, mm: UInt32(m), vpn: a, detail: "VMA \(v) overlaps another VMA"))
                }
                ranges.append((a, a + n))
            }
        }
        var live = 0
        for v in 1...vmaCount where vmas.state[v].pointee.load(ordering: .relaxed) == SlotState.live { live += 1 }
        if owned != live {
            report(Violation(kind: owned > live ? .lifetime : .leak, detail: "\(owned) VMAs in tables, \(live) live"))
        }
    }

    func leakCheck(cachedVMAs: Int, cachedLeaves: Int, cachedMMs: Int, _ report: (Violation) -> Void) {
        if leafPool.inUse - cachedLeaves != 0 { report(Violation(kind: .leak, detail: "\(leafPool.inUse) page-table leaves still allocated")) }
        if mms.pool.inUse - cachedMMs != 0 { report(Violation(kind: .leak, detail: "\(mms.pool.inUse) mms still allocated")) }
        if vmas.pool.inUse - cachedVMAs != 0 { report(Violation(kind: .leak, detail: "\(vmas.pool.inUse) VMAs still allocated")) }
    }
}
