/// The full audit (stop the world, recount everything) and the teardown leak
/// check. Both require that no operation is in flight: the stress engine
/// pauses every worker first, and the pause itself is the happens-before
/// edge that makes reading the plain PTE arrays here race-free.
extension Kernel {
    func audit(_ report: (Violation) -> Void) {
        let nf = config.frames
        var mapped = [Int32](repeating: 0, count: nf + 1)
        var swapRefs = [Int32](repeating: 0, count: config.swapSlots + 1)
        var leavesSeen = 0
        for m in 1...config.mmSlots {
            let st = mms.state[m].pointee.load(ordering: .acquiring)
            let mm = UInt32(m)
            for d in 0..<512 {
                let leaf = Int(pgd[m * 512 + d])
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
                    let pte = PTE(raw: ptes[i])
                    if pte.isNone { continue }
                    used += 1
                    let vpn = UInt64(d * 512 + j)
                    if pte.isSwap {
                        let s = Int(pte.target)
                        guard s >= 1 && s <= config.swapSlots else {
                            report(Violation(kind: .swapCount, mm: mm, vpn: vpn, detail: "swap entry names slot \(s)"))
                            continue
                        }
                        swapRefs[s] += 1
                        let c = swapContent[s].load(ordering: .relaxed)
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
                    if !inVMA(mm, vpn) {
                        report(Violation(kind: .location, frame: UInt32(f), mm: mm, vpn: vpn, detail: "PTE outside every VMA"))
                    }
                    if !rmap.locationOK(self, frame: UInt32(f), mm: mm, vpn: vpn) {
                        report(Violation(kind: .location, frame: UInt32(f), mm: mm, vpn: vpn,
                                         detail: "page.mapping/index (\(frames[f].mapping.load(ordering: .relaxed)), 0x\(String(frames[f].index.load(ordering: .relaxed), radix: 16))) do not name this PTE"))
                    }
                    if pte.isMigration {
                        report(Violation(kind: .incompleteWalk, frame: UInt32(f), mm: mm, vpn: vpn, detail: "migration entry at rest"))
                    } else if frames[f].content.load(ordering: .relaxed) != expected[i] {
                        report(Violation(kind: .content, frame: UInt32(f), mm: mm, vpn: vpn,
                                         detail: "page holds 0x\(String(frames[f].content.load(ordering: .relaxed), radix: 16)), expected 0x\(String(expected[i], radix: 16))"))
                    }
                }
                if used == 0 && st == SlotState.live && !leafCoveredByVMA(mm, d) {
                    report(Violation(kind: .leak, mm: mm, detail: "empty leaf \(leaf) outside every VMA was not freed at unmap"))
                }
                if used != leafUsed[leaf] {
                    report(Violation(kind: .lifetime, mm: mm, detail: "leaf \(leaf) use count \(leafUsed[leaf]), holds \(used) PTEs"))
                }
            }
        }
        let leavesAllocated = leafPool.inUse - caches.cachedCount(.leaves)
        if leavesSeen != leavesAllocated {
            report(Violation(kind: .leak, detail: "\(leavesAllocated) page-table leaves allocated, \(leavesSeen) reachable"))
        }
        for f in 1...nf {
            let fl = frames[f].flags.load(ordering: .relaxed)
            let mc = frames[f].mapcount.load(ordering: .relaxed)
            let rc = frames[f].refcount.load(ordering: .relaxed)
            if fl & FrameFlags.free != 0 {
                if mc != 0 || rc != 0 || frames[f].content.load(ordering: .relaxed) != Frame.poison {
                    report(Violation(kind: .freedWhileMapped, frame: UInt32(f),
                                     detail: "free frame: mapcount \(mc), refcount \(rc), poisoned \(frames[f].content.load(ordering: .relaxed) == Frame.poison)"))
                }
                continue
            }
            if fl & FrameFlags.locked != 0 {
                report(Violation(kind: .refcount, frame: UInt32(f), detail: "page still locked at rest"))
            }
            if mc != mapped[f] {
                report(Violation(kind: .mapcount, frame: UInt32(f), detail: "mapcount \(mc), \(mapped[f]) PTEs map it"))
            }
            if rc != mapped[f] {
                report(Violation(kind: .refcount, frame: UInt32(f), detail: "refcount \(rc), \(mapped[f]) PTEs map it and nothing else pins it at rest"))
            }
        }
        for s in 1...config.swapSlots {
            let c = swapCount[s].load(ordering: .relaxed)
            if c != swapRefs[s] {
                report(Violation(kind: .swapCount, detail: "swap slot \(s) count \(c), \(swapRefs[s]) swap entries"))
            }
        }
        let slotsAllocated = swapPool.inUse - caches.cachedCount(.swapSlots)
        let slotsReferenced = swapRefs.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        if slotsReferenced != slotsAllocated {
            report(Violation(kind: .swapCount, detail: "\(slotsAllocated) swap slots allocated, \(slotsReferenced) referenced"))
        }
        auditFamilies(report)
        rmap.audit(self, report: report)
    }

    /// Family member counts against the live and dying mms that name them.
    func auditFamilies(_ report: (Violation) -> Void) {
        let nf = families.pool.capacity
        var expect = [Int32](repeating: 0, count: nf + 1)
        for m in 1...config.mmSlots {
            let st = mms.state[m].pointee.load(ordering: .acquiring)
            guard st == SlotState.live || st == SlotState.dying else { continue }
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

    /// After every process exited, RCU callbacks drained and every CPU's
    /// cache returned: nothing may remain allocated.
    func leakCheck(_ report: (Violation) -> Void) {
        if frameNodes.inUse != 0 {
            report(Violation(kind: .leak, detail: "\(frameNodes.inUse) frames still allocated"))
        }
        for f in 1...config.frames {
            let fl = frames[f].flags.load(ordering: .relaxed)
            if fl != FrameFlags.free || frames[f].refcount.load(ordering: .relaxed) != 0
                || frames[f].mapcount.load(ordering: .relaxed) != 0
                || frames[f].content.load(ordering: .relaxed) != Frame.poison {
                report(Violation(kind: .leak, frame: UInt32(f), detail: "frame not free and poisoned after teardown"))
                break
            }
        }
        if swapPool.inUse != 0 { report(Violation(kind: .leak, detail: "\(swapPool.inUse) swap slots still allocated")) }
        if leafPool.inUse != 0 { report(Violation(kind: .leak, detail: "\(leafPool.inUse) page-table leaves still allocated")) }
        if mms.pool.inUse != 0 { report(Violation(kind: .leak, detail: "\(mms.pool.inUse) mms still allocated")) }
        if families.pool.inUse != 0 { report(Violation(kind: .leak, detail: "\(families.pool.inUse) fork families still allocated")) }
        if processCount != 0 { report(Violation(kind: .leak, detail: "\(processCount) processes still in the table")) }
        rmap.leakCheck(self, report: report)
    }
}
