import XCTest
@testable import ConcurrentRmap

/// The operations a trace replay names (Ops/TargetedOps.swift): each on the
/// VMA and page it is given, through the same checks as the random ones.
final class TargetedOpsTests: XCTestCase {
    func testMapTouchForkMoveDropUnmapUnderEveryScheme() throws {
        for scheme in SchemeKind.allCases {
            try withMachine(.small(frames: 512, vmaPages: 16, vmasPerProcess: 1, scheme: scheme)) { m, cpu in
                let p = try XCTUnwrap(m.spawnPinned(cpu: cpu))
                let v = m.mapVMA(p, pages: 8, cpu: cpu)
                XCTAssertNotEqual(v, 0)
                XCTAssertEqual(m.vmaPages(v), 8)
                XCTAssertEqual(m.vmaPages(m.mapVMA(p, pages: 1000, cpu: cpu)), 16, "clamped to the VMA size")
                for page in 0..<8 { XCTAssertTrue(m.touch(p, vma: v, page: page, write: true, cpu: cpu)) }
                XCTAssertFalse(m.touch(p, vma: v, page: 8, write: false, cpu: cpu), "past the VMA's end")
                // fork keeps table entries: the child's copy sits where the parent's does.
                let c = try XCTUnwrap(m.fork(p, cpu: cpu))
                let t = try XCTUnwrap(m.vmaTable(p).firstIndex(of: v))
                let cv = m.vmaTable(c)[t]
                XCTAssertNotEqual(cv, 0)
                XCTAssertEqual(m.vmaPages(cv), 8)
                // mremap after fork: the scheme's move rule, then every page still reads back.
                let moved = m.moveVMA(c, vma: cv, cpu: cpu)
                XCTAssertNotEqual(moved, 0)
                XCTAssertEqual(m.vmaPages(cv), 0, "the old VMA is gone")
                for page in 0..<8 { XCTAssertTrue(m.touch(c, vma: moved, page: page, write: false, cpu: cpu)) }
                XCTAssertTrue(m.dropPages(p, vma: v, first: 2, count: 4, cpu: cpu))
                for _ in 0..<20 { _ = m.migrate(cpu: cpu) }
                XCTAssertTrue(m.unmapVMA(c, vma: moved, cpu: cpu))
                XCTAssertFalse(m.unmapVMA(c, vma: moved, cpu: cpu), "not the child's any more")
                XCTAssertFalse(m.unmapVMA(p, vma: cv, cpu: cpu), "a VMA of another mm")
                XCTAssertEqual(m.audit().map(\.description), [])
                XCTAssertTrue(m.exit(c, cpu: cpu))
                m.unpin(c, cpu: cpu)
                XCTAssertTrue(m.exit(p, cpu: cpu))
                m.unpin(p, cpu: cpu)
            }
        }
    }
}

/// Recycling: a hunting machine frees a retired mm slot within a few
/// operations of its exit; a throughput one keeps it queued far longer.
final class RecyclingTests: XCTestCase {
    func testHuntFreesRetiredSlotsWithinAFewOperations() throws {
        for mode in Recycling.allCases {
            var c = MachineConfig.small(frames: 512, vmaPages: 16, vmasPerProcess: 1)
            c.recycling = mode
            try withMachine(c) { m, cpu in
                let k = m.kernel
                let p = try XCTUnwrap(m.spawnPinned(cpu: cpu))
                XCTAssertTrue(m.exit(p, cpu: cpu))
                m.unpin(p, cpu: cpu)
                XCTAssertEqual(k.mms.load(p.mm), SlotState.rcuPending)
                // Operations that retire nothing, each counting down.
                let q = try XCTUnwrap(m.spawnPinned(cpu: cpu))
                for _ in 0..<40 {
                    _ = m.touch(q, vma: m.vmaTable(q).first { $0 != 0 }!, page: 0, write: false, cpu: cpu)
                    cpu.pointee.finished()  // as a worker does after each operation
                }
                if mode == .hunt {
                    XCTAssertEqual(k.mms.load(p.mm), SlotState.free, "freed a few operations and one grace period later")
                } else {
                    XCTAssertEqual(k.mms.load(p.mm), SlotState.rcuPending, "still queued in a throughput batch")
                }
                XCTAssertTrue(m.exit(q, cpu: cpu))
                m.unpin(q, cpu: cpu)
            }
        }
    }
}
