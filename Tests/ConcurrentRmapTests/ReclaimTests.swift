import XCTest
@testable import ConcurrentRmap

/// Reclaim (aging, swap-out), swap-in, and migration of widely shared pages.
final class ReclaimTests: XCTestCase {
    /// Two processes write twice as many pages as there are frames: direct
    /// reclaim must swap, and every page reads back what was written.
    func testSwapOutAndSwapInKeepContent() throws {
        try withMachine(.small(frames: 256, swapSlots: 1024, vmaPages: 64, vmasPerProcess: 4)) { m, cpu in
            let k = m.kernel
            let a = try k.startProcess(cpu)
            let b = try k.startProcess(cpu)
            var values: [UInt32: [UInt64: UInt64]] = [:]
            for mm in [a, b] {
                for vk in 0..<4 {
                    let base = k.base(mm, vma: vk)
                    for v in base..<base + 64 {
                        XCTAssertEqual(k.fault(mm, vpn: v, write: true, cpu), .ok)
                        values[mm, default: [:]][v] = k.content(try XCTUnwrap(k.frame(mm, v)))
                    }
                }
            }
            XCTAssertGreaterThan(cpu.pointee.eventCount(.directReclaim), 0, "memory ran short")
            XCTAssertGreaterThan(cpu.pointee.eventCount(.swapOut), 0)
            assertAuditClean(m, "after filling memory")

            // Two full clock passes: the first clears young bits, the second
            // swaps out everything that stayed unreferenced (and frees it).
            let freed = k.swapOutAll(cpu)
            XCTAssertGreaterThan(freed, 0)
            var swapped = 0
            for (mm, vals) in values {
                for (v, x) in vals {
                    let p = k.pte(mm, v)
                    XCTAssertTrue(p.isSwap, "page 0x\(String(v, radix: 16)) of mm \(mm) is swapped out")
                    if p.isSwap {
                        swapped += 1
                        XCTAssertEqual(k.swapContent(p.target), x)
                        XCTAssertEqual(k.swapCount(p.target), 1)
                    }
                }
            }
            XCTAssertEqual(swapped, 512)
            XCTAssertEqual(m.swapSlotsInUse, 512)
            assertAuditClean(m, "after reclaim")

            // Read everything back: each read swaps in (and reclaim keeps
            // running to make room) and must see the written value.
            let swapInsBefore = cpu.pointee.eventCount(.swapIn)
            for mm in [a, b] {
                for (v, x) in values[mm]!.sorted(by: { $0.key < $1.key }) {
                    XCTAssertEqual(k.fault(mm, vpn: v, write: false, cpu), .ok)
                    let f = try XCTUnwrap(k.frame(mm, v))
                    XCTAssertEqual(k.content(f), x)
                    XCTAssertEqual(k.index(f), v)
                    XCTAssertEqual(k.mapping(f), k.group(of: mm))
                    XCTAssertFalse(k.pte(mm, v).isWritable, "a read swap-in maps read-only")
                }
            }
            XCTAssertGreaterThanOrEqual(cpu.pointee.eventCount(.swapIn) - swapInsBefore, 512)
            XCTAssertEqual(m.violationCount(.content), 0)
            assertAuditClean(m, "after reading everything back")
        }
    }

    /// A swapped-out page whose swap entry moved with mremap, while the page
    /// waits in the swap cache at its old index: the fault at the new
    /// address must not map the cached page there (its one index names the
    /// old address), so it gets a copy that takes the new index (and the
    /// planted stale-index bug, which maps it anyway, is caught).
    func testSwapInAfterMremapCopiesTheCachedPage() throws {
        for injection in [Injection.none, .swapInStaleIndex] {
            try withMachine(.small(vmaPages: 16, vmasPerProcess: 1, injection: injection),
                            expectNoViolations: injection == .none) { m, cpu in
                let k = m.kernel
                let p = try k.startProcess(cpu)
                let b = k.base(p, vma: 0)
                XCTAssertEqual(k.fault(p, vpn: b + 3, write: true, cpu), .ok)
                let f = try XCTUnwrap(k.frame(p, b + 3))
                let x = k.content(f)
                k.reclaim(cpu, scan: m.config.frames, target: Int.max)
                k.reclaim(cpu, scan: m.config.frames, target: Int.max)
                XCTAssertTrue(k.pte(p, b + 3).isSwap)
                XCTAssertTrue(k.inSwapCache(f), "the swapped-out page waits in the swap cache")
                let nb = k.unusedStart(p)
                XCTAssertTrue(k.mremap(p, vma: 0, to: nb, cpu))
                XCTAssertTrue(k.pte(p, nb + 3).isSwap)
                XCTAssertEqual(cpu.pointee.eventCount(.mremapSwapMove), 1)
                XCTAssertEqual(k.fault(p, vpn: nb + 3, write: false, cpu), .ok)
                let n = try XCTUnwrap(k.frame(p, nb + 3))
                XCTAssertEqual(k.content(n), x)
                if injection == .none {
                    XCTAssertNotEqual(n, f, "a copy, not the cached page")
                    XCTAssertEqual(k.index(n), nb + 3)
                    XCTAssertEqual(cpu.pointee.eventCount(.swapCacheCopy), 1)
                    assertAuditClean(m)
                } else {
                    XCTAssertEqual(n, f)
                    XCTAssertEqual(k.index(n), b + 3)
                    XCTAssertTrue(m.audit().kinds.contains(.location), "stale index after swap-in is caught")
                }
            }
        }
    }

    /// One page mapped by nine mms of one group (eight forks, no exec):
    /// migration replaces all nine PTEs; reclaim swaps it out of all nine.
    func testManyMappingsInOneGroup() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 1)) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let g = k.group(of: p)
            let v = k.base(p, vma: 0) + 9
            XCTAssertEqual(k.fault(p, vpn: v, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, v))
            let x = k.content(f)
            // Fork from the parent and from the latest child alike: all join g.
            var mms = [p]
            for i in 0..<8 { mms.append(try k.forkChild(i % 2 == 0 ? p : mms.last!, cpu)) }
            XCTAssertEqual(Set(mms).count, 9)
            XCTAssertEqual(k.members(g), mms, "each child is appended at the tail")
            for mm in mms {
                XCTAssertEqual(k.group(of: mm), g)
                XCTAssertEqual(k.frame(mm, v), f)
            }
            XCTAssertEqual(k.mapcount(f), 9)
            XCTAssertEqual(k.refcount(f), 9)
            XCTAssertEqual(k.groupRefs(g), 9 + 1)
            assertAuditClean(m, "after eight forks")

            // Migration.
            let t = try XCTUnwrap(k.migrate(frame: f, cpu))
            XCTAssertTrue(k.isFree(f))
            for mm in mms {
                let pte = k.pte(mm, v)
                XCTAssertTrue(pte.isPresent)
                XCTAssertEqual(pte.target, t, "mm \(mm)'s PTE was replaced")
                XCTAssertFalse(pte.isWritable)
            }
            XCTAssertEqual(k.mapcount(t), 9)
            XCTAssertEqual(k.refcount(t), 9)
            XCTAssertEqual(k.content(t), x)
            XCTAssertEqual(k.index(t), v)
            XCTAssertEqual(k.mapping(t), g)
            XCTAssertEqual(cpu.pointee.eventCount(.migrated), 1)
            XCTAssertEqual(cpu.pointee.eventCount(.walkVisited), 2 * 9, "two walks over nine members")
            XCTAssertEqual(m.violations.map(\.description), [])
            assertAuditClean(m, "after migration")

            // Reclaim: first pass ages (clears all nine young bits), second swaps out.
            k.reclaim(cpu, scan: m.config.frames, target: Int.max)
            for mm in mms { XCTAssertFalse(k.pte(mm, v).isYoung) }
            XCTAssertEqual(k.frame(p, v), t)
            k.reclaim(cpu, scan: m.config.frames, target: Int.max)
            let s = k.pte(p, v)
            XCTAssertTrue(s.isSwap)
            for mm in mms {
                XCTAssertEqual(k.pte(mm, v), s, "mm \(mm) holds the same swap entry")
            }
            XCTAssertEqual(k.swapCount(s.target), 9 + 1, "nine entries and the swap cache")
            XCTAssertEqual(k.swapContent(s.target), x)
            XCTAssertTrue(k.inSwapCache(t))
            XCTAssertEqual(k.mapcount(t), 0)
            XCTAssertEqual(cpu.pointee.eventCount(.swapOut), 1)
            XCTAssertEqual(k.groupRefs(g), 9 + 1, "the cached page keeps its group reference")
            assertAuditClean(m, "after swap-out")

            // Every reader maps the cached page again: the sharing comes back.
            for mm in mms {
                XCTAssertEqual(k.fault(mm, vpn: v, write: false, cpu), .ok)
                XCTAssertEqual(k.frame(mm, v), t)
                XCTAssertEqual(k.content(t), x)
            }
            XCTAssertEqual(cpu.pointee.eventCount(.swapCacheHit), 9)
            XCTAssertEqual(k.mapcount(t), 9)
            XCTAssertEqual(k.swapCount(s.target), 1, "only the swap cache still names the slot")
            assertAuditClean(m, "after swap-in")

            // Swapped out again, and freed this time: each reader then reads
            // its own copy back from swap, and the slot goes with the last.
            k.swapOutAll(cpu)
            XCTAssertTrue(k.isFree(t))
            XCTAssertEqual(k.groupRefs(g), 9, "the freed page dropped its group reference")
            var seen = Set<UInt32>()
            for mm in mms {
                XCTAssertEqual(k.fault(mm, vpn: v, write: true, cpu), .ok)
                let n = try XCTUnwrap(k.frame(mm, v))
                seen.insert(n)
            }
            XCTAssertEqual(seen.count, 9, "writes make private copies")
            XCTAssertEqual(m.swapSlotsInUse, 0, "the slot is freed with its last entry")
            assertAuditClean(m, "after swap-in")
        }
    }

    /// A PTE that is young is not swapped out on the first pass (aging).
    func testReferencedPageSurvivesOnePass() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 1)) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let v = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: v, write: true, cpu), .ok)
            XCTAssertEqual(k.reclaim(cpu, scan: m.config.frames, target: Int.max, keepCached: false), 0)
            XCTAssertTrue(k.pte(p, v).isPresent)
            XCTAssertFalse(k.pte(p, v).isYoung)
            XCTAssertEqual(cpu.pointee.eventCount(.reclaimReferenced), 1)
            // Touch it again: young again, survives another pass.
            XCTAssertEqual(k.fault(p, vpn: v, write: false, cpu), .ok)
            XCTAssertEqual(k.reclaim(cpu, scan: m.config.frames, target: Int.max, keepCached: false), 0)
            XCTAssertTrue(k.pte(p, v).isPresent)
            XCTAssertEqual(k.reclaim(cpu, scan: m.config.frames, target: Int.max, keepCached: false), 1)
            XCTAssertTrue(k.pte(p, v).isSwap)
            assertAuditClean(m)
        }
    }
}
