/// The file branch's audit, its leak check, and the page cache's eviction
/// at teardown. World stopped, as for `audit`.
extension Kernel {
    /// A PTE of `mm` at `vpn` maps file page `f` (found by the audit's
    /// page-table walk): inside the file, writable only from a shared
    /// mapping, and from a VMA on its inode's i_mmap (the walk finds it).
    func auditFilePTE(_ f: UInt32, _ pte: PTE, mm: UInt32, vpn: UInt64, _ report: (Violation) -> Void) {
        let ino = frames[Int(f)].mapping.load(ordering: .relaxed)
        let index = frames[Int(f)].index.load(ordering: .relaxed)
        guard files.contains(ino) else {
            report(Violation(kind: .location, frame: f, mm: mm, vpn: vpn, detail: "file page names inode \(ino), outside 1...\(files.count)"))
            return
        }
        if index >= files.inode[Int(ino)].size.load(ordering: .relaxed) {
            report(Violation(kind: .location, frame: f, mm: mm, vpn: vpn,
                             detail: "PTE maps page \(index) of inode \(ino), beyond EOF (\(files.inode[Int(ino)].size.load(ordering: .relaxed)) pages)"))
        }
        let v = findVMA(mm, vpn)
        guard v != 0 else { return }  // reported by the caller
        if pte.isWritable && !VMAFile.isShared(vmaFile(v)) {
            report(Violation(kind: .location, frame: f, mm: mm, vpn: vpn, detail: "writable PTE of a page cache page in a private mapping"))
        }
        if !vmaRecord(v).pointee.iLinked.load(ordering: .relaxed) {
            report(Violation(kind: .incompleteWalk, frame: f, mm: mm, vpn: vpn,
                             detail: "VMA \(v) maps inode \(ino) but is not on its i_mmap: the walk cannot find this PTE"))
        }
    }

    /// Inodes: each i_mmap list against the VMAs of the mms' tables, each
    /// page cache slot against its page. Returns, per frame, whether the
    /// page cache holds it (for the refcount audit).
    func auditFiles(_ report: (Violation) -> Void) -> [Bool] {
        var cached = [Bool](repeating: false, count: config.frames + 1)
        guard files.count > 0 else { return cached }
        var onList = Set<UInt32>()
        for i in 1...files.count {
            let ino = UInt32(i)
            let n = files.tree ? auditIMmapTree(ino, &onList, report) : auditIMmapList(ino, &onList, report)
            if n != files.inode[i].mappings.load(ordering: .relaxed) {
                report(Violation(kind: .groupList, detail: "inode \(i) counts \(files.inode[i].mappings.load(ordering: .relaxed)) mappings, i_mmap lists \(n)"))
            }
            let size = files.inode[i].size.load(ordering: .relaxed)
            var pages: Int32 = 0
            for index in 0..<UInt64(files.maxPages) {
                let f = files.slot(ino, index).pointee.load(ordering: .relaxed)
                guard f != 0 else { continue }
                pages += 1
                guard f >= 1 && Int(f) <= config.frames else {
                    report(Violation(kind: .location, detail: "page cache of inode \(i) names frame \(f)"))
                    continue
                }
                if !inCache(f, ino, index) {
                    report(Violation(kind: .location, frame: f, detail: "page cache slot \(index) of inode \(i) holds a frame that is not that page"))
                }
                if cached[Int(f)] { report(Violation(kind: .refcount, frame: f, detail: "frame in two page cache slots")) }
                cached[Int(f)] = true
                if index >= size {
                    report(Violation(kind: .location, frame: f, detail: "page cache of inode \(i) holds page \(index), beyond EOF (\(size))"))
                }
            }
            if pages != files.inode[i].nrpages.load(ordering: .relaxed) {
                report(Violation(kind: .refcount, detail: "inode \(i) counts \(files.inode[i].nrpages.load(ordering: .relaxed)) cached pages, its cache holds \(pages)"))
            }
            if files.isShmem(ino) { auditShmem(ino, mapped: n, cached: pages, report) }
        }
        // Every file VMA of every mm is on its inode's list.
        for m in 1...config.mmSlots where spaces.isLiveOrDying(m) {
            for k in 0..<MachineConfig.maxVMAs {
                let v = vmaHandle(UInt32(m), k)
                if v != 0 && vmaFile(v) != 0 && !onList.contains(v) {
                    report(Violation(kind: .groupList, mm: UInt32(m), detail: "file VMA \(v) of inode \(VMAFile.inode(vmaFile(v))) is not on its i_mmap"))
                }
            }
        }
        for f in 1...config.frames {
            let fl = frames[f].flags.load(ordering: .relaxed)
            guard fl & FrameFlags.free == 0 else { continue }
            if fl & FrameFlags.anon != 0 && (fl & FrameFlags.pageCache != 0 || cached[f]) {
                report(Violation(kind: .location, frame: UInt32(f), detail: "anonymous page (a private copy) in the page cache"))
            }
            if fl & FrameFlags.pageCache != 0 && !cached[f] {
                report(Violation(kind: .refcount, frame: UInt32(f), detail: "page marked in the page cache, in no slot"))
            }
        }
        return cached
    }

    /// A shmem inode at rest (no operation in flight): a free one maps
    /// nothing, caches nothing and has size 0; an allocated one is mapped
    /// (its last unmap evicts it before the operation ends).
    private func auditShmem(_ ino: UInt32, mapped: Int32, cached: Int32, _ report: (Violation) -> Void) {
        let r = files.inode + Int(ino)
        switch r.pointee.shmemState.load(ordering: .relaxed) {
        case ShmemState.free:
            if mapped != 0 || cached != 0 || r.pointee.size.load(ordering: .relaxed) != 0 {
                report(Violation(kind: cached != 0 ? .leak : .lifetime,
                                 detail: "free shmem inode \(ino) has \(mapped) VMAs on its i_mmap, \(cached) cached pages, size \(r.pointee.size.load(ordering: .relaxed))"))
            }
        case ShmemState.allocated:
            if mapped == 0 { report(Violation(kind: .leak, detail: "shmem inode \(ino) is allocated and mapped by no VMA")) }
        default:
            report(Violation(kind: .lifetime, detail: "shmem inode \(ino) is half evicted with no operation in flight"))
        }
    }

    /// One VMA found on inode `ino`'s i_mmap: live, of this inode, linked,
    /// on no other.
    private func auditIMmapMember(_ ino: UInt32, _ v: UInt32, _ onList: inout Set<UInt32>, _ report: (Violation) -> Void) {
        let r = vmaRecord(v)
        if spaces.vmas.load(v) != SlotState.live || VMAFile.inode(r.pointee.file.load(ordering: .relaxed)) != ino
            || !r.pointee.iLinked.load(ordering: .relaxed) {
            report(Violation(kind: .groupList, mm: r.pointee.mm.load(ordering: .relaxed),
                             detail: "i_mmap of inode \(ino) lists VMA \(v): \(SlotState.name(spaces.vmas.load(v))), file \(r.pointee.file.load(ordering: .relaxed)), linked \(r.pointee.iLinked.load(ordering: .relaxed))"))
        }
        if !onList.insert(v).inserted { report(Violation(kind: .groupList, detail: "VMA \(v) on two i_mmap lists")) }
    }

    /// The list form: links both ways, tail at the end. Returns its length.
    private func auditIMmapList(_ ino: UInt32, _ onList: inout Set<UInt32>, _ report: (Violation) -> Void) -> Int32 {
        let i = Int(ino)
        var n: Int32 = 0
        var prev: UInt32 = 0
        var v = files.inode[i].head.load(ordering: .relaxed)
        while v != 0 {
            n += 1
            guard spaces.vmas.contains(v), n <= Int32(config.vmaCount) else {
                report(Violation(kind: .groupList, detail: "i_mmap of inode \(i) names VMA \(v) (or loops)"))
                break
            }
            auditIMmapMember(ino, v, &onList, report)
            if vmaRecord(v).pointee.iPrev.load(ordering: .relaxed) != prev {
                report(Violation(kind: .groupList, detail: "i_mmap of inode \(i): VMA \(v)'s back link names \(vmaRecord(v).pointee.iPrev.load(ordering: .relaxed)), not \(prev)"))
            }
            prev = v
            v = vmaRecord(v).pointee.iNext.load(ordering: .relaxed)
        }
        if prev != files.inode[i].tail.load(ordering: .relaxed) {
            report(Violation(kind: .groupList, detail: "i_mmap of inode \(i) ends at VMA \(prev), its tail says \(files.inode[i].tail.load(ordering: .relaxed))"))
        }
        return n
    }

    /// The tree form: parent links, start order (in order), each key the
    /// VMA's current file range, each maximum its subtree's largest end,
    /// the heap order of priorities. Returns its node count.
    private func auditIMmapTree(_ ino: UInt32, _ onList: inout Set<UInt32>, _ report: (Violation) -> Void) -> Int32 {
        var n: Int32 = 0
        var lastStart: UInt64 = 0
        var broken = false
        // In-order with an explicit stack (the world is stopped; the audit may allocate).
        var stack: [UInt32] = []
        var v = files.inode[Int(ino)].root.load(ordering: .relaxed)
        if v != 0 && tParent(v) != 0 {
            report(Violation(kind: .groupList, detail: "i_mmap tree of inode \(ino): root VMA \(v) has parent \(tParent(v))"))
        }
        while (v != 0 || !stack.isEmpty) && !broken {
            while v != 0 {
                guard spaces.vmas.contains(v), n + Int32(stack.count) <= Int32(config.vmaCount) else {
                    report(Violation(kind: .groupList, detail: "i_mmap tree of inode \(ino) names VMA \(v) (or loops)"))
                    broken = true
                    break
                }
                stack.append(v)
                let l = tLeft(v)
                if l != 0 && spaces.vmas.contains(l) && tParent(l) != v {
                    report(Violation(kind: .groupList, detail: "i_mmap tree of inode \(ino): VMA \(l)'s parent is \(tParent(l)), not \(v)"))
                }
                v = l
            }
            guard !broken, let top = stack.popLast() else { break }
            n += 1
            auditIMmapMember(ino, top, &onList, report)
            let r = vmaRecord(top)
            let start = r.pointee.pgoff.load(ordering: .relaxed)
            if n > 1 && start < lastStart {
                report(Violation(kind: .groupList, detail: "i_mmap tree of inode \(ino) out of order: VMA \(top) starts at page \(start) after a VMA at \(lastStart)"))
            }
            lastStart = start
            let last = start + UInt64(r.pointee.pages.load(ordering: .relaxed)) - 1
            if tLast(top) != last {
                report(Violation(kind: .groupList, detail: "i_mmap tree of inode \(ino): VMA \(top)'s key ends at page \(tLast(top)), the VMA at \(last)"))
            }
            if tMax(top) != treeSubtreeMax(top) {
                report(Violation(kind: .groupList, detail: "i_mmap tree of inode \(ino): VMA \(top)'s subtree maximum is \(tMax(top)), its subtree ends at \(treeSubtreeMax(top))"))
            }
            let rt = tRight(top)
            for c in [tLeft(top), rt] where c != 0 && Self.treePriority(c) > Self.treePriority(top) {
                report(Violation(kind: .groupList, detail: "i_mmap tree of inode \(ino): child \(c) outranks its parent \(top)"))
            }
            if rt != 0 && spaces.vmas.contains(rt) && tParent(rt) != top {
                report(Violation(kind: .groupList, detail: "i_mmap tree of inode \(ino): VMA \(rt)'s parent is \(tParent(rt)), not \(top)"))
            }
            v = rt
        }
        return n
    }

    /// Teardown: every cache page written back and dropped (the machine's
    /// "sync and drop_caches"). Every process has exited: none is mapped.
    func dropPageCache(_ cpu: CPU) {
        guard files.count > 0 else { return }
        for i in 1...files.count {
            for index in 0..<UInt64(files.maxPages) {
                let f = files.slot(UInt32(i), index).pointee.load(ordering: .acquiring)
                guard f != 0, tryPin(f) else { continue }
                lockPage(f)
                if inCache(f, UInt32(i), index) {
                    if files.isShmem(UInt32(i)) {
                        report(.leak, frame: f, cpu: cpu, "page \(index) of shmem inode \(i) still cached after every process exited (evicted inodes cache nothing)")
                    }
                    if frames[Int(f)].mapcount.load(ordering: .relaxed) > 0 {
                        report(.leak, frame: f, cpu: cpu, "page cache page still mapped after every process exited")
                        unlockPage(f); put(f, cpu)
                        continue
                    }
                    writeback(f, cpu)
                    cacheRemove(f, discard: false, cpu)
                    unlockPage(f)
                    put(f, cpu)
                } else {
                    unlockPage(f)
                }
                put(f, cpu)
            }
        }
    }

    /// After teardown: no VMA on any i_mmap, no page in any cache.
    func fileLeakCheck(_ report: (Violation) -> Void) {
        guard files.count > 0 else { return }
        for i in 1...files.count {
            if files.inode[i].head.load(ordering: .relaxed) != 0 || files.inode[i].tail.load(ordering: .relaxed) != 0
                || files.inode[i].root.load(ordering: .relaxed) != 0 || files.inode[i].mappings.load(ordering: .relaxed) != 0 {
                report(Violation(kind: .leak, detail: "inode \(i) still has \(files.inode[i].mappings.load(ordering: .relaxed)) VMAs on its i_mmap"))
            }
            if files.inode[i].nrpages.load(ordering: .relaxed) != 0 {
                report(Violation(kind: .leak, detail: "inode \(i) still has \(files.inode[i].nrpages.load(ordering: .relaxed)) pages in its cache"))
            }
            if files.isShmem(UInt32(i)) && files.inode[i].shmemState.load(ordering: .relaxed) != ShmemState.free {
                report(Violation(kind: .leak, detail: "shmem inode \(i) is still allocated after every process exited"))
            }
        }
    }
}
