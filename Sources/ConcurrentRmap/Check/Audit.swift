/// The full audit (stop the world, recount everything) and the teardown leak
/// check. Both require that no operation is in flight: the stress engine
/// pauses every worker first, and the pause itself is the happens-before
/// edge that makes reading the plain PTE arrays here race-free.
///
/// The page tables are walked once here (every PTE of every live mm) to
/// count what the subsystems cannot see alone: mappings per frame and swap
/// entries per slot. Each subsystem then audits its own tables against
/// those counts, and the scheme its own objects.
extension Kernel {
    func audit(_ report: (Violation) -> Void) {
        let nf = config.frames
        let leafSize = MachineConfig.ptesPerLeaf
        var mapped = [Int32](repeating: 0, count: nf + 1)
        var swapRefs = [Int32](repeating: 0, count: config.swapSlots + 1)
        var leavesSeen = 0
        let pageCached = auditFiles(report)
        for m in 1...config.mmSlots {
            let st = mms.state[m].pointee.load(ordering: .acquiring)
            let mm = UInt32(m)
            for d in 0..<512 {
                let leaf = Int(spaces.pgd[m * 512 + d])
                guard leaf != 0 else { continue }
                guard leaf <= config.leafCount else {
                    report(Violation(kind: .lifetime, mm: mm, detail: "page directory names leaf \(leaf), outside 1...\(config.leafCount)"))
                    continue
                }
                leavesSeen += 1
                if st != SlotState.live && st != SlotState.dying {
                    report(Violation(kind: .lifetime, mm: mm, detail: "freed mm still owns page-table leaf \(leaf)"))
                }
                var used: Int32 = 0
                for j in 0..<leafSize {
                    let i = leaf * leafSize + j
                    let pte = pte(at: i)
                    if pte.isNone { continue }
                    used += 1
                    let vpn = UInt64(d * 512 + j)
                    if findVMA(mm, vpn) == 0 {
                        report(Violation(kind: .location, mm: mm, vpn: vpn, detail: "PTE outside every VMA"))
                    }
                    if pte.isSwap {
                        let s = Int(pte.target)
                        guard swap.contains(pte.target) else {
                            report(Violation(kind: .swapCount, mm: mm, vpn: vpn, detail: "swap entry names slot \(s)"))
                            continue
                        }
                        swapRefs[s] += 1
                        let c = swap.content[s].load(ordering: .relaxed)
                        if c != expected[i] {
                            report(Violation(kind: .content, mm: mm, vpn: vpn,
                                             detail: "swap slot \(s) holds 0x\(String(c, radix: 16)), expected 0x\(String(expected[i], radix: 16))"))
                        }
                        continue
                    }
                    let f = Int(pte.target)
                    guard f >= 1 && f <= nf else {
                        report(Violation(kind: .location, mm: mm, vpn: vpn, detail: "PTE names frame \(f)"))
                        continue
                    }
                    mapped[f] += 1
                    let fl = frames[f].flags.load(ordering: .relaxed)
                    if fl & FrameFlags.free != 0 {
                        report(Violation(kind: .freedWhileMapped, frame: UInt32(f), mm: mm, vpn: vpn, detail: "PTE maps a free frame"))
                        continue
                    }
                    if !locationOK(UInt32(f), mm: mm, vpn: vpn) {
                        report(Violation(kind: .location, frame: UInt32(f), mm: mm, vpn: vpn,
                                         detail: "page.mapping/index (\(frames[f].mapping.load(ordering: .relaxed)), 0x\(String(frames[f].index.load(ordering: .relaxed), radix: 16))) do not name this PTE"))
                    }
                    // A file page's content is the file's, shared by every
                    // mapping: per-PTE expectations do not apply to it.
                    let filePage = fl & FrameFlags.anon == 0
                    if filePage { auditFilePTE(UInt32(f), pte, mm: mm, vpn: vpn, report) }
                    if pte.isMigration {
                        report(Violation(kind: .incompleteWalk, frame: UInt32(f), mm: mm, vpn: vpn, detail: "migration entry at rest"))
                    } else if !filePage && frames[f].content.load(ordering: .relaxed) != expected[i] {
                        report(Violation(kind: .content, frame: UInt32(f), mm: mm, vpn: vpn,
                                         detail: "page holds 0x\(String(frames[f].content.load(ordering: .relaxed), radix: 16)), expected 0x\(String(expected[i], radix: 16))"))
                    }
                    if pte.isWritable && fl & FrameFlags.swapCache != 0 && swap.count[Int(frames[f].swapSlot.load(ordering: .relaxed))].load(ordering: .relaxed) > 1 {
                        report(Violation(kind: .content, frame: UInt32(f), mm: mm, vpn: vpn,
                                         detail: "writable PTE of a swap-cache page whose slot swap entries still name"))
                    }
                }
                if used == 0 && st == SlotState.live && !leafCoveredByVMA(mm, d) {
                    report(Violation(kind: .leak, mm: mm, detail: "empty leaf \(leaf) outside every VMA was not freed at unmap"))
                }
                if used != spaces.leafUsed[leaf] {
                    report(Violation(kind: .lifetime, mm: mm, detail: "leaf \(leaf) use count \(spaces.leafUsed[leaf]), holds \(used) PTEs"))
                }
            }
        }
        let leavesAllocated = spaces.leafPool.inUse - caches.cachedCount(.leaves)
        if leavesSeen != leavesAllocated {
            report(Violation(kind: .leak, detail: "\(leavesAllocated) page-table leaves allocated, \(leavesSeen) reachable"))
        }
        // Frames: counts against the mappings found; cached pages hold one
        // reference more, and an unmapped one is its slot's copy.
        for f in 1...nf {
            let fl = frames[f].flags.load(ordering: .relaxed)
            guard fl & FrameFlags.free == 0 else { continue }
            let mc = frames[f].mapcount.load(ordering: .relaxed)
            let rc = frames[f].refcount.load(ordering: .relaxed)
            let inCache = fl & FrameFlags.swapCache != 0 || pageCached[f]
            if fl & FrameFlags.locked != 0 {
                report(Violation(kind: .refcount, frame: UInt32(f), detail: "page still locked at rest"))
            }
            if mc != mapped[f] {
                report(Violation(kind: .mapcount, frame: UInt32(f), detail: "mapcount \(mc), \(mapped[f]) PTEs map it"))
            }
            if rc != mapped[f] + (inCache ? 1 : 0) {
                report(Violation(kind: .refcount, frame: UInt32(f),
                                 detail: "refcount \(rc), \(mapped[f]) PTEs map it\(inCache ? " and the swap cache holds it" : ""), nothing else pins it at rest"))
            }
            if !inCache && mapped[f] == 0 {
                report(Violation(kind: .leak, frame: UInt32(f), detail: "page neither mapped nor cached, not free"))
            }
            if fl & FrameFlags.swapCache != 0 {
                // While swap entries name its slot, a cached page is the
                // slot's copy: a swap-in maps it in place of the slot. (With
                // none, a writable mapping may have written it since: the
                // next swap-out copies it again.)
                let s = Int(frames[f].swapSlot.load(ordering: .relaxed))
                if swap.contains(UInt32(s)) && swapRefs[s] > 0
                    && frames[f].content.load(ordering: .relaxed) != swap.content[s].load(ordering: .relaxed) {
                    report(Violation(kind: .content, frame: UInt32(f),
                                     detail: "swap-cache page differs from its slot \(s), which \(swapRefs[s]) swap entries name"))
                }
            }
        }
        frameTable.auditFree(report)
        swap.audit(entries: swapRefs, frames: frames, cachedInPools: caches.cachedCount(.swapSlots), report)
        spaces.auditVMAs(vmaPages: config.vmaPages, report)
        processes.audit(report)
        auditFamilies(report)
        rmap.audit(self, report: report)
    }

    /// Family member counts against the live and dying mms that name them.
    func auditFamilies(_ report: (Violation) -> Void) {
        let families = processes.families
        let nf = families.pool.capacity
        var expect = [Int32](repeating: 0, count: nf + 1)
        for m in 1...config.mmSlots where spaces.isLiveOrDying(m) {
            let f = Int(families.familyOf[m])
            guard f >= 1 && f <= nf else {
                report(Violation(kind: .lifetime, mm: UInt32(m), detail: "mm belongs to family \(f), outside 1...\(nf)"))
                continue
            }
            expect[f] += 1
        }
        for f in 1...nf {
            let n = families.members[f].pointee.load(ordering: .relaxed)
            if n != expect[f] {
                report(Violation(kind: .lifetime, detail: "family \(f) counts \(n) members, \(expect[f]) mms belong to it"))
            }
        }
    }

    /// After every process exited, the swap cache emptied, every retired
    /// slot freed and every CPU's cache returned: nothing may remain
    /// allocated.
    func leakCheck(_ report: (Violation) -> Void) {
        frameTable.leakCheck(report)
        swap.leakCheck(report)
        spaces.leakCheck(cachedVMAs: caches.cachedCount(.vmas), cachedLeaves: caches.cachedCount(.leaves),
                         cachedMMs: caches.cachedCount(.mms), report)
        processes.leakCheck(report)
        rmap.leakCheck(self, report: report)
        fileLeakCheck(report)
    }
}
