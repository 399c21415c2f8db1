import XCTest
@testable import ConcurrentRmap

/// Each audit check reports a corruption planted on purpose, and the audit
/// is clean again once the value is restored.
final class AuditTests: XCTestCase {
    /// Builds a machine state with present pages (private and shared) and
    /// swap entries (private and shared), runs `corrupt`, audits, runs
    /// `restore`, and audits again.
    private func expect(_ kind: ViolationKind, file: StaticString = #filePath, line: UInt = #line,
                        corrupt: (TestKernel, World) -> Void, restore: (TestKernel, World) -> Void) throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 2), expectNoViolations: false,
                        file: file, line: line) { m, cpu in
            let k = m.kernel
            let w = try World(k, cpu)
            XCTAssertEqual(m.audit().map(\.description), [], "baseline", file: file, line: line)
            corrupt(k, w)
            let found = m.audit()
            XCTAssertTrue(found.kinds.contains(kind), "expected \(kind), audit found \(found)", file: file, line: line)
            restore(k, w)
            XCTAssertEqual(m.audit().map(\.description), [], "after restoring", file: file, line: line)
            XCTAssertEqual(m.violations.count, found.count,
                           "only the corrupted audit recorded anything", file: file, line: line)
        }
    }

    /// Process p (group g) writes pages 0...3 of VMA 0 and forks c; all four
    /// are swapped out (slots shared by p and c); p and c write page 0 (a
    /// private frame each, the slot is freed), p writes page 3 (the slot
    /// left with c's entry) and c reads page 1 (the page read back stays in
    /// the swap cache, p's entry still names the slot); page 2's slot keeps
    /// two entries; c forks gc, sharing c's page 1 frame. Another process q
    /// has its own group.
    struct World {
        let p: UInt32, c: UInt32, g: UInt32, otherGroup: UInt32
        let privateFrame: UInt32   // p's page 0: mapped once
        let sharedFrame: UInt32    // c's page 1: mapped by c and gc
        let sharedSlot: UInt32     // p's page 2: swap entries in p, c and gc
        let privateSlot: UInt32    // p's page 1: one swap entry

        init(_ k: TestKernel, _ cpu: CPU) throws {
            p = try k.startProcess(cpu)
            g = k.group(of: p)
            let b = k.base(p, vma: 0)
            for d: UInt64 in 0..<4 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
            c = try k.forkChild(p, cpu)
            k.swapOutAll(cpu)
            for d: UInt64 in 0..<4 { XCTAssertTrue(k.pte(p, b + d).isSwap) }
            XCTAssertEqual(k.fault(p, vpn: b + 0, write: true, cpu), .ok)
            XCTAssertEqual(k.fault(c, vpn: b + 0, write: true, cpu), .ok)
            XCTAssertEqual(k.fault(p, vpn: b + 3, write: true, cpu), .ok)
            XCTAssertEqual(k.fault(c, vpn: b + 1, write: false, cpu), .ok)
            privateFrame = try XCTUnwrap(k.frame(p, b + 0))
            privateSlot = k.pte(p, b + 1).target
            sharedSlot = k.pte(p, b + 2).target
            XCTAssertTrue(k.pte(p, b + 1).isSwap)
            XCTAssertTrue(k.pte(p, b + 2).isSwap)
            // p's entry, and the swap cache's page that c's read brought in.
            XCTAssertEqual(k.swapCount(privateSlot), 2)
            XCTAssertEqual(k.swapCount(sharedSlot), 2)
            let gc = try k.forkChild(c, cpu)
            sharedFrame = try XCTUnwrap(k.frame(c, b + 1))
            XCTAssertEqual(k.frame(gc, b + 1), sharedFrame)
            XCTAssertEqual(k.mapcount(sharedFrame), 2)
            XCTAssertTrue(k.inSwapCache(sharedFrame))
            XCTAssertEqual(k.refcount(sharedFrame), 3, "two mappings and the swap cache")
            XCTAssertEqual(k.mapcount(privateFrame), 1)
            XCTAssertEqual(k.members(g), [p, c, gc])
            otherGroup = k.group(of: try k.startProcess(cpu))
            XCTAssertNotEqual(otherGroup, g)
        }
    }

    func testMapcountCorruptionIsReported() throws {
        try expect(.mapcount, corrupt: { k, w in
            k.frames[Int(w.sharedFrame)].mapcount.add(1, ordering: .relaxed)
        }, restore: { k, w in
            k.frames[Int(w.sharedFrame)].mapcount.subtract(1, ordering: .relaxed)
        })
    }

    func testRefcountCorruptionIsReported() throws {
        try expect(.refcount, corrupt: { k, w in
            k.frames[Int(w.privateFrame)].refcount.add(1, ordering: .relaxed)
        }, restore: { k, w in
            k.frames[Int(w.privateFrame)].refcount.subtract(1, ordering: .relaxed)
        })
    }

    func testIndexCorruptionIsReported() throws {
        try expect(.location, corrupt: { k, w in
            k.frames[Int(w.sharedFrame)].index.add(1, ordering: .relaxed)
        }, restore: { k, w in
            k.frames[Int(w.sharedFrame)].index.subtract(1, ordering: .relaxed)
        })
    }

    func testMappingCorruptionIsReported() throws {
        try expect(.location, corrupt: { k, w in
            // The page claims another live group.
            k.frames[Int(w.privateFrame)].mapping.store(w.otherGroup, ordering: .relaxed)
        }, restore: { k, w in
            k.frames[Int(w.privateFrame)].mapping.store(w.g, ordering: .relaxed)
        })
    }

    func testContentCorruptionIsReported() throws {
        try expect(.content, corrupt: { k, w in
            k.frames[Int(w.sharedFrame)].content.bitwiseXor(1, ordering: .relaxed)
        }, restore: { k, w in
            k.frames[Int(w.sharedFrame)].content.bitwiseXor(1, ordering: .relaxed)
        })
    }

    func testSwapContentCorruptionIsReported() throws {
        try expect(.content, corrupt: { k, w in
            k.swap.content[Int(w.sharedSlot)].bitwiseXor(1 << 20, ordering: .relaxed)
        }, restore: { k, w in
            k.swap.content[Int(w.sharedSlot)].bitwiseXor(1 << 20, ordering: .relaxed)
        })
    }

    func testSwapCountCorruptionIsReported() throws {
        try expect(.swapCount, corrupt: { k, w in
            k.swap.count[Int(w.privateSlot)].add(1, ordering: .relaxed)
        }, restore: { k, w in
            k.swap.count[Int(w.privateSlot)].subtract(1, ordering: .relaxed)
        })
    }

    func testGroupListNextLinkCorruptionIsReported() throws {
        // The list is p -> c -> gc; cut it after p.
        try expect(.groupList, corrupt: { k, w in
            XCTAssertEqual(k.rmap.links[Int(w.p)].pointee.next.load(ordering: .relaxed), w.c)
            k.rmap.links[Int(w.p)].pointee.next.store(0, ordering: .relaxed)
        }, restore: { k, w in
            k.rmap.links[Int(w.p)].pointee.next.store(w.c, ordering: .relaxed)
        })
    }

    func testGroupListHeadCorruptionIsReported() throws {
        // The head skips p: p is a member the list no longer reaches.
        try expect(.groupList, corrupt: { k, w in
            XCTAssertEqual(k.rmap.head[Int(w.g)].pointee.load(ordering: .relaxed), w.p)
            k.rmap.head[Int(w.g)].pointee.store(w.c, ordering: .relaxed)
        }, restore: { k, w in
            k.rmap.head[Int(w.g)].pointee.store(w.p, ordering: .relaxed)
        })
    }

    func testGroupRefcountCorruptionIsReported() throws {
        try expect(.groupList, corrupt: { k, w in
            k.rmap.refcount[Int(w.g)].pointee.add(1, ordering: .relaxed)
        }, restore: { k, w in
            k.rmap.refcount[Int(w.g)].pointee.subtract(1, ordering: .relaxed)
        })
    }

    func testGroupOfCorruptionIsReported() throws {
        // An mm that claims another group than the list it sits on.
        try expect(.groupList, corrupt: { k, w in
            k.rmap.links[Int(w.c)].pointee.group = w.otherGroup
        }, restore: { k, w in
            k.rmap.links[Int(w.c)].pointee.group = w.g
        })
    }

    func testFreeFrameNotPoisonedIsReported() throws {
        try expect(.freedWhileMapped, corrupt: { k, _ in
            let f = (1...k.config.frames).first { k.isFree(UInt32($0)) }!
            k.frames[f].content.store(42, ordering: .relaxed)
        }, restore: { k, _ in
            let f = (1...k.config.frames).first { k.isFree(UInt32($0)) && k.content(UInt32($0)) == 42 }!
            k.frames[f].content.store(Frame.poison, ordering: .relaxed)
        })
    }
}
