import XCTest
@testable import ConcurrentRmap

/// The seed's one special case: mremap after fork.
final class MremapTests: XCTestCase {
    /// What the scenario built, for the checks.
    struct Scenario {
        var parent: UInt32 = 0, child: UInt32 = 0, group: UInt32 = 0
        var oldBase: UInt64 = 0, newBase: UInt64 = 0
        /// Child pages moved without a copy: offset in the VMA -> frame.
        var exclusive: [UInt64: UInt32] = [:]
        /// Pages still shared with the parent when the child moved: offset -> frame.
        var shared: [UInt64: UInt32] = [:]
        /// Everything each process should read back: (mm, vpn) -> value.
        var values: [UInt32: [UInt64: UInt64]] = [:]
    }

    /// Parent writes pages 0...3 and 8 of VMA 0 and page 0 of VMA 1; fork;
    /// the child writes page 0 (COW: a private copy), the parent writes page 1
    /// (COW: the old frame is left to the child alone), the child first-touches
    /// page 5; then the child moves VMA 0. Pages 2, 3 and 8 are still shared.
    func buildScenario(_ m: Machine, _ cpu: CPU) throws -> Scenario {
        let k = m.kernel
        var s = Scenario()
        s.parent = try k.startProcess(cpu)
        s.group = k.group(of: s.parent)
        s.oldBase = k.base(s.parent, vma: 0)
        for d: UInt64 in [0, 1, 2, 3, 8] {
            XCTAssertEqual(k.fault(s.parent, vpn: s.oldBase + d, write: true, cpu), .ok)
        }
        XCTAssertEqual(k.fault(s.parent, vpn: k.base(s.parent, vma: 1), write: true, cpu), .ok)
        s.child = try k.forkChild(s.parent, cpu)

        XCTAssertEqual(k.fault(s.child, vpn: s.oldBase + 0, write: true, cpu), .ok)
        XCTAssertEqual(k.fault(s.parent, vpn: s.oldBase + 1, write: true, cpu), .ok)
        XCTAssertEqual(k.fault(s.child, vpn: s.oldBase + 5, write: true, cpu), .ok)
        for d: UInt64 in [0, 1, 5] {
            let f = try XCTUnwrap(k.frame(s.child, s.oldBase + d))
            XCTAssertEqual(k.mapcount(f), 1, "child page \(d) is exclusive before mremap")
            s.exclusive[d] = f
        }
        for d: UInt64 in [2, 3, 8] {
            let f = try XCTUnwrap(k.frame(s.child, s.oldBase + d))
            XCTAssertEqual(k.mapcount(f), 2, "page \(d) is still shared before mremap")
            XCTAssertEqual(k.frame(s.parent, s.oldBase + d), f)
            s.shared[d] = f
        }
        for mm in [s.parent, s.child] {
            for v in k.mappedVPNs(mm) { s.values[mm, default: [:]][v] = try XCTUnwrap(k.visibleContent(mm, v)) }
        }

        let to = k.unusedStart(s.child)
        s.newBase = to
        XCTAssertTrue(k.mremap(s.child, vma: 0, to: to, cpu))
        XCTAssertNotEqual(k.findVMA(s.child, to), 0, "the VMA now starts at the new place")
        XCTAssertEqual(k.findVMA(s.child, s.oldBase), 0, "and no VMA is left at the old one")
        // The child's values now live at the new addresses.
        var moved: [UInt64: UInt64] = [:]
        for (v, x) in s.values[s.child]! {
            if v >= s.oldBase && v < s.oldBase + UInt64(m.config.vmaPages) {
                moved[v - s.oldBase + s.newBase] = x
            } else {
                moved[v] = x
            }
        }
        s.values[s.child] = moved
        return s
    }

    func testMremapAfterForkCopiesSharedPagesAndMovesExclusiveOnes() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 2)) { m, cpu in
            let k = m.kernel
            let s = try buildScenario(m, cpu)

            // Exclusive pages kept their frame and took the new index.
            for (d, f) in s.exclusive {
                let nv = s.newBase + d
                XCTAssertEqual(k.frame(s.child, nv), f, "exclusive page \(d) keeps its frame")
                XCTAssertEqual(k.index(f), nv, "exclusive page \(d) is re-indexed")
                XCTAssertEqual(k.mapping(f), s.group)
                XCTAssertEqual(k.mapcount(f), 1)
                XCTAssertTrue(k.pte(s.child, s.oldBase + d).isNone)
            }
            // Shared pages: the child got a copy at the new address; the
            // parent keeps the original at the old one.
            for (d, f) in s.shared {
                let nv = s.newBase + d
                let n = try XCTUnwrap(k.frame(s.child, nv))
                XCTAssertNotEqual(n, f, "shared page \(d) is copied")
                XCTAssertEqual(k.index(n), nv)
                XCTAssertEqual(k.mapping(n), s.group)
                XCTAssertEqual(k.mapcount(n), 1)
                XCTAssertEqual(k.content(n), k.content(f))
                XCTAssertEqual(k.frame(s.parent, s.oldBase + d), f)
                XCTAssertEqual(k.index(f), s.oldBase + d, "the parent's page keeps its index")
                XCTAssertEqual(k.mapcount(f), 1)
                XCTAssertTrue(k.pte(s.child, s.oldBase + d).isNone)
            }
            XCTAssertEqual(cpu.pointee.eventCount(.mremapCopy), UInt64(s.shared.count))
            XCTAssertEqual(cpu.pointee.eventCount(.mremapMove), UInt64(s.exclusive.count))
            // The old range is gone from the child's VMAs.
            XCTAssertEqual(k.fault(s.child, vpn: s.oldBase, write: false, cpu), .badAddress)
            assertAuditClean(m, "after mremap")

            // Migration finds every mapping of every page of both mms.
            var migrated = 0
            for mm in [s.parent, s.child] {
                for v in k.mappedVPNs(mm) {
                    let before = k.pte(mm, v)
                    guard before.isPresent else { continue }
                    let f = before.target
                    let users = k.mapcount(f)
                    let t = try XCTUnwrap(k.migrate(frame: f, cpu), "migrating frame \(f)")
                    migrated += 1
                    XCTAssertNotEqual(t, f)
                    XCTAssertTrue(k.isFree(f), "the old frame \(f) is freed after migration")
                    let after = k.pte(mm, v)
                    XCTAssertTrue(after.isPresent)
                    XCTAssertEqual(after.target, t)
                    XCTAssertEqual(after.isWritable, before.isWritable)
                    XCTAssertEqual(k.mapcount(t), users)
                    XCTAssertEqual(k.refcount(t), users)
                    XCTAssertEqual(k.index(t), v)
                    XCTAssertEqual(k.mapping(t), s.group)
                    XCTAssertEqual(k.content(t), s.values[mm]![v])
                    XCTAssertEqual(m.violations.map(\.description), [], "migration of \(f) at 0x\(String(v, radix: 16))")
                }
            }
            XCTAssertEqual(migrated, s.values[s.parent]!.count + s.values[s.child]!.count)
            // The page of VMA 1 is shared by both: its one migration moved both PTEs.
            let v1 = k.base(s.parent, vma: 1)
            XCTAssertEqual(k.frame(s.parent, v1), k.frame(s.child, v1))
            XCTAssertEqual(k.mapcount(try XCTUnwrap(k.frame(s.parent, v1))), 2)

            // Every process reads back what it wrote.
            for (mm, vals) in s.values {
                for (v, x) in vals {
                    XCTAssertEqual(k.fault(mm, vpn: v, write: false, cpu), .ok)
                    XCTAssertEqual(k.visibleContent(mm, v), x)
                }
            }
            assertAuditClean(m, "after migration")
        }
    }

    /// The planted bug (mremap moves a shared page without copying it) is
    /// what the checks above exist to catch: the audit reports the parent's
    /// PTE at an address other than page.index, and migration misses it.
    func testMremapWithoutCopyIsCaught() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 2, injection: .mremapNoCopy),
                        expectNoViolations: false) { m, cpu in
            let k = m.kernel
            let s = try buildScenario(m, cpu)
            XCTAssertEqual(cpu.pointee.eventCount(.mremapCopy), 0)
            XCTAssertTrue(m.audit().kinds.contains(.location))
            let f = try XCTUnwrap(s.shared[2])
            XCTAssertNotNil(k.migrate(frame: f, cpu))
            XCTAssertTrue(m.violations.kinds.contains(.incompleteWalk))
            // The parent's PTE was never found: it still maps the old frame.
            XCTAssertEqual(k.frame(s.parent, s.oldBase + 2), f)
        }
    }

    /// mremap that runs out of memory part way must leave the mm consistent:
    /// every PTE inside a VMA, nothing leaked at teardown.
    func testMremapOutOfMemoryLeavesVMAConsistent() throws {
        // 128 frames, one swap slot: the child's copies exhaust memory.
        try withMachine(.small(frames: 128, swapSlots: 1, vmaPages: 64, vmasPerProcess: 2)) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let b0 = k.base(p, vma: 0), b1 = k.base(p, vma: 1)
            var oom = 0
            for v in Array(b0..<b0 + 64) + Array(b1..<b1 + 64) {
                if k.fault(p, vpn: v, write: true, cpu) != .ok { oom += 1 }
            }
            let c = try k.forkChild(p, cpu)
            let before = Dictionary(uniqueKeysWithValues: k.mappedVPNs(c).map { ($0, k.visibleContent(c, $0)!) })
            let from = k.base(c, vma: 0)
            let ok = k.mremap(c, vma: 0, to: k.unusedStart(c), cpu)
            XCTAssertFalse(ok, "with every frame mapped twice and no swap, the copies cannot all be made (oom=\(oom))")
            XCTAssertEqual(k.base(c, vma: 0), from, "a failed mremap leaves the VMA where it was")
            XCTAssertEqual(k.vmaCount(c), 2, "and takes its new VMA back")
            XCTAssertGreaterThan(cpu.pointee.eventCount(.mremapCopy) + cpu.pointee.eventCount(.mremapSwapMove), 0,
                                 "some pages had moved before memory ran out")
            // Every PTE of the child is inside one of its VMAs, with its value.
            for (v, x) in before {
                XCTAssertEqual(k.visibleContent(c, v), x, "child page 0x\(String(v, radix: 16)) after the failed mremap")
            }
            assertAuditClean(m, "after a failed mremap")
        }
    }
}
