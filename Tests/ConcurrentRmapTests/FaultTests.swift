import XCTest
@testable import ConcurrentRmap

/// Page faults: first touch, in-place writes, copy-on-write after fork.
final class FaultTests: XCTestCase {
    /// First-touch read and write faults create an anonymous page anchored at
    /// (mm's group, vpn) with one mapping; a write stores a fresh value; an
    /// address outside every VMA is refused.
    func testFirstTouchReadAndWrite() throws {
        try withMachine(.small()) { m, cpu in
            let k = m.kernel
            let mm = try k.startProcess(cpu)
            let other = try k.startProcess(cpu)
            let g = k.group(of: mm)
            XCTAssertNotEqual(g, 0)
            XCTAssertNotEqual(k.group(of: other), g, "each new process starts its own group")
            XCTAssertEqual(k.groupState(g), SlotState.live)
            let b = k.base(mm, vma: 0)

            // Read first touch: a read-only page holding zero.
            let rv = b + 3
            XCTAssertEqual(k.fault(mm, vpn: rv, write: false, cpu), .ok)
            let rp = k.pte(mm, rv)
            XCTAssertTrue(rp.isPresent)
            XCTAssertFalse(rp.isWritable)
            XCTAssertTrue(rp.isYoung)
            let rf = rp.target
            XCTAssertTrue(k.isAnon(rf))
            XCTAssertFalse(k.isFree(rf))
            XCTAssertEqual(k.mapping(rf), g)
            XCTAssertEqual(k.index(rf), rv)
            XCTAssertEqual(k.mapcount(rf), 1)
            XCTAssertEqual(k.refcount(rf), 1)
            XCTAssertEqual(k.content(rf), 0)
            XCTAssertEqual(k.expectedWord(mm, rv), 0)

            // Write first touch: a writable page holding a fresh value.
            let wv = b + 5
            XCTAssertEqual(k.fault(mm, vpn: wv, write: true, cpu), .ok)
            let wp = k.pte(mm, wv)
            XCTAssertTrue(wp.isPresent)
            XCTAssertTrue(wp.isWritable)
            let wf = wp.target
            XCTAssertNotEqual(wf, rf)
            XCTAssertEqual(k.mapping(wf), g)
            XCTAssertEqual(k.index(wf), wv)
            XCTAssertEqual(k.mapcount(wf), 1)
            XCTAssertEqual(k.refcount(wf), 1)
            let written = k.content(wf)
            XCTAssertNotEqual(written, 0)
            XCTAssertNotEqual(written, Frame.poison)
            XCTAssertEqual(k.expectedWord(mm, wv), written)

            // A second write stays in the same frame with a new value.
            XCTAssertEqual(k.fault(mm, vpn: wv, write: true, cpu), .ok)
            XCTAssertEqual(k.frame(mm, wv), wf)
            XCTAssertNotEqual(k.content(wf), written)
            XCTAssertEqual(k.expectedWord(mm, wv), k.content(wf))

            // Writing the read-only zero page reuses it (sole mapping).
            XCTAssertEqual(k.fault(mm, vpn: rv, write: true, cpu), .ok)
            XCTAssertEqual(k.frame(mm, rv), rf)
            XCTAssertTrue(k.pte(mm, rv).isWritable)
            XCTAssertEqual(k.expectedWord(mm, rv), k.content(rf))
            XCTAssertNotEqual(k.content(rf), 0)

            // The other process's pages belong to its own group.
            let ob = k.base(other, vma: 1)
            XCTAssertEqual(k.fault(other, vpn: ob, write: true, cpu), .ok)
            let of = try XCTUnwrap(k.frame(other, ob))
            XCTAssertEqual(k.mapping(of), k.group(of: other))
            XCTAssertEqual(k.index(of), ob)

            // Outside every VMA: refused, nothing mapped.
            let bad = k.unusedStart(mm) + 1
            XCTAssertEqual(k.fault(mm, vpn: bad, write: false, cpu), .badAddress)
            XCTAssertEqual(k.fault(mm, vpn: bad, write: true, cpu), .badAddress)
            XCTAssertTrue(k.pte(mm, bad).isNone)

            XCTAssertEqual(cpu.pointee.eventCount(.firstTouch), 3)
            XCTAssertEqual(cpu.pointee.eventCount(.cowReuse), 1)
            XCTAssertEqual(cpu.pointee.eventCount(.cowCopy), 0)
            XCTAssertEqual(cpu.pointee.eventCount(.badAddress), 2)
            assertAuditClean(m)
        }
    }

    /// Copy-on-write after fork: the child's write gets a new frame, the
    /// parent keeps the old frame and content; counts follow.
    func testCopyOnWriteAfterFork() throws {
        try withMachine(.small()) { m, cpu in
            let k = m.kernel
            let parent = try k.startProcess(cpu)
            let v = k.base(parent, vma: 0) + 7
            let shared = k.base(parent, vma: 1) + 2
            XCTAssertEqual(k.fault(parent, vpn: v, write: true, cpu), .ok)
            XCTAssertEqual(k.fault(parent, vpn: shared, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(parent, v))
            let before = k.content(f)

            let child = try k.forkChild(parent, cpu)
            let g = k.group(of: parent)
            XCTAssertEqual(k.group(of: child), g, "fork joins the parent's group")
            XCTAssertEqual(k.members(g), [parent, child], "the child is linked after its parent")
            // Both map f read-only; two mappings, two references.
            XCTAssertEqual(k.frame(child, v), f)
            XCTAssertFalse(k.pte(parent, v).isWritable)
            XCTAssertFalse(k.pte(child, v).isWritable)
            XCTAssertEqual(k.mapcount(f), 2)
            XCTAssertEqual(k.refcount(f), 2)
            XCTAssertEqual(k.expectedWord(child, v), before)
            assertAuditClean(m, "after fork")

            // A read in the child shares the page.
            XCTAssertEqual(k.fault(child, vpn: v, write: false, cpu), .ok)
            XCTAssertEqual(k.frame(child, v), f)
            XCTAssertEqual(k.mapcount(f), 2)

            // The child writes: a private copy.
            XCTAssertEqual(k.fault(child, vpn: v, write: true, cpu), .ok)
            let n = try XCTUnwrap(k.frame(child, v))
            XCTAssertNotEqual(n, f)
            XCTAssertTrue(k.pte(child, v).isWritable)
            XCTAssertEqual(k.mapping(n), g)
            XCTAssertEqual(k.index(n), v)
            XCTAssertEqual(k.mapcount(n), 1)
            XCTAssertEqual(k.refcount(n), 1)
            XCTAssertNotEqual(k.content(n), before)
            XCTAssertEqual(k.expectedWord(child, v), k.content(n))
            // The parent keeps the old frame and content.
            XCTAssertEqual(k.frame(parent, v), f)
            XCTAssertEqual(k.content(f), before)
            XCTAssertEqual(k.expectedWord(parent, v), before)
            XCTAssertEqual(k.mapcount(f), 1)
            XCTAssertEqual(k.refcount(f), 1)
            XCTAssertEqual(cpu.pointee.eventCount(.cowCopy), 1)

            // The parent is now the sole user: its write reuses f in place.
            XCTAssertEqual(k.fault(parent, vpn: v, write: true, cpu), .ok)
            XCTAssertEqual(k.frame(parent, v), f)
            XCTAssertTrue(k.pte(parent, v).isWritable)
            XCTAssertEqual(cpu.pointee.eventCount(.cowReuse), 1)
            XCTAssertNotEqual(k.content(n), k.content(f))

            // The page in the other VMA is still shared: the parent's write copies.
            let sf = try XCTUnwrap(k.frame(parent, shared))
            let sv = k.content(sf)
            XCTAssertEqual(k.fault(parent, vpn: shared, write: true, cpu), .ok)
            XCTAssertNotEqual(k.frame(parent, shared), sf)
            XCTAssertEqual(k.frame(child, shared), sf)
            XCTAssertEqual(k.content(sf), sv)
            XCTAssertEqual(cpu.pointee.eventCount(.cowCopy), 2)

            // Reads verify content against the checker (no violation recorded).
            for mm in [parent, child] {
                for vpn in [v, shared] { XCTAssertEqual(k.fault(mm, vpn: vpn, write: false, cpu), .ok) }
            }
            assertAuditClean(m, "after copy-on-write")

            // Exiting the child frees its private pages and drops its shares.
            XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: child)), mm: child, cpu))
            XCTAssertTrue(k.isFree(n))
            XCTAssertTrue(k.isFree(sf), "the old shared page had only the child's mapping left")
            XCTAssertEqual(k.members(g), [parent])
            assertAuditClean(m, "after the child's exit")
        }
    }
}
