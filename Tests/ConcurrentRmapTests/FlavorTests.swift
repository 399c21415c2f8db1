import XCTest
@testable import ConcurrentRmap

/// Every liburcu flavor and every list-protection mode runs the model.
///
/// The flavor is process-wide and can change only while no thread is
/// registered; XCTest runs tests one at a time, and every test here puts
/// memb back.
final class FlavorTests: XCTestCase {
    override func tearDown() {
        XCTAssertTrue(RCU.select(.memb), "memb restored")
        super.tearDown()
    }

    /// A short single-threaded scenario touching every operation. Announces
    /// a quiescent state between operations (needed by qsbr, a no-op else).
    static func scenario(_ m: Machine, _ cpu: CPU) throws {
        let k = m.kernel
        let qs = { RCU.quiescentState() }
        let p = try k.startProcess(cpu); qs()
        let b0 = k.base(p, vma: 0), b1 = k.base(p, vma: 1)
        for d: UInt64 in 0..<12 {
            XCTAssertEqual(k.fault(p, vpn: b0 + d, write: true, cpu), .ok); qs()
            XCTAssertEqual(k.fault(p, vpn: b1 + d, write: d % 2 == 0, cpu), .ok); qs()
        }
        let c = try k.forkChild(p, cpu); qs()
        let gc = try k.forkChild(c, cpu); qs()
        XCTAssertEqual(k.fault(c, vpn: b0 + 1, write: true, cpu), .ok); qs()
        XCTAssertTrue(k.mremap(c, vma: 0, to: k.unusedStart(c), cpu)); qs()
        XCTAssertGreaterThan(cpu.pointee.eventCount(.mremapCopy), 0)
        // Migrate a page shared by all three, then every page of p.
        let shared = try XCTUnwrap(k.frame(p, b1 + 4))
        XCTAssertEqual(k.mapcount(shared), 3)
        let t = try XCTUnwrap(k.migrate(frame: shared, cpu)); qs()
        for mm in [p, c, gc] { XCTAssertEqual(k.frame(mm, b1 + 4), t) }
        for v in k.mappedVPNs(p) {
            if let f = k.frame(p, v) { XCTAssertNotNil(k.migrate(frame: f, cpu)); qs() }
        }
        XCTAssertEqual(m.violations.map(\.description), [])
        // Swap everything out and read it back.
        var values: [UInt32: [UInt64: UInt64]] = [:]
        for mm in [p, c, gc] {
            for v in k.mappedVPNs(mm) { values[mm, default: [:]][v] = k.visibleContent(mm, v) }
        }
        k.reclaim(cpu, scan: m.config.frames, target: Int.max); qs()
        k.reclaim(cpu, scan: m.config.frames, target: Int.max); qs()
        k.reclaim(cpu, scan: m.config.frames, target: Int.max); qs()  // frees the swap cache's pages
        XCTAssertGreaterThan(cpu.pointee.eventCount(.swapOut), 0)
        for (mm, vals) in values {
            for (v, x) in vals {
                XCTAssertTrue(k.pte(mm, v).isSwap)
                XCTAssertEqual(k.fault(mm, vpn: v, write: false, cpu), .ok); qs()
                XCTAssertEqual(k.visibleContent(mm, v), x)
            }
        }
        assertAuditClean(m)
        // exec, munmap, exit; the old group goes after a grace period.
        let g = k.group(of: p)
        XCTAssertTrue(k.execProcess(slot: try XCTUnwrap(k.slot(of: p)), mm: p, cpu)); qs()
        _ = k.munmap(c, cpu); qs()
        for mm in [c, gc] { XCTAssertTrue(k.exitProcess(slot: try XCTUnwrap(k.slot(of: mm)), mm: mm, cpu)); qs() }
        k.dropSwapCache(cpu)  // cached pages still hold their group
        k.quiesce(cpu)
        XCTAssertEqual(k.groupState(g), SlotState.free)
        assertAuditClean(m)
    }

    func testEveryFlavorAndListSync() throws {
        for flavor in RCUFlavor.allCases {
            XCTAssertTrue(RCU.select(flavor), "select \(flavor)")
            XCTAssertEqual(RCU.flavor, flavor)
            for sync in ListSync.allCases {
                let gracePeriods = RCU.synchronizeCount
                try withMachine(.small(vmaPages: 16, vmasPerProcess: 2, sync: sync)) { m, cpu in
                    try Self.scenario(m, cpu)
                    XCTAssertGreaterThan(cpu.pointee.eventCount(.retireBatchFreed), 0, "\(flavor)/\(sync) freed after its own grace periods")
                }
                XCTAssertGreaterThan(RCU.synchronizeCount, gracePeriods, "\(flavor)/\(sync) waited for grace periods")
            }
        }
    }

    /// The flavor cannot change under a registered thread.
    func testFlavorIsFixedWhileThreadsAreRegistered() {
        XCTAssertTrue(RCU.select(.memb))
        RCU.registerThread()
        XCTAssertFalse(RCU.select(.qsbr), "qsbr selected while a memb thread is registered")
        XCTAssertTrue(RCU.select(.memb), "selecting the current flavor is allowed")
        XCTAssertEqual(RCU.flavor, .memb)
        RCU.unregisterThread()
        XCTAssertTrue(RCU.select(.qsbr))
        XCTAssertEqual(RCU.flavor, .qsbr)
    }

    /// qsbr with two workers that announce quiescent states: grace periods
    /// progress (the mms and groups they free come back) and nothing breaks.
    func testQSBRWithWorkers() throws {
        XCTAssertTrue(RCU.select(.qsbr))
        try withMachine(.small(frames: 256, vmaPages: 32, vmasPerProcess: 2)) { m, cpu in
            for _ in 0..<3 { XCTAssertTrue(m.spawn(cpu: cpu)) }
            // The main thread waits offline: it announces no quiescent states meanwhile.
            RCU.threadOffline()
            let totals = RunTotals()
            let finished = runWorkers(m, threads: 2, firstID: 1, seconds: 0.5, seed: 7,
                                      weights: ConcurrencyTests.mix, totals: totals)
            RCU.threadOnline()
            guard finished else { XCTFail("qsbr workers stuck"); throw TestFailure("workers stuck") }
            XCTAssertGreaterThan(totals.ok(.fault), 100)
            assertAuditClean(m)
        }
    }
}
