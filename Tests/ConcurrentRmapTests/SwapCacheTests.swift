import XCTest
@testable import ConcurrentRmap

/// The swap cache under each scheme, and Hugh Dickins' case (rmap 11,
/// 2004): after fork and mremap, a page is swapped out, and a sharer faults
/// it in at an address other than its index.
final class SwapCacheTests: XCTestCase {
    /// Parent P writes page 3 of VMA 0 and forks C; the page is swapped out
    /// of both and stays in the swap cache; C moves the VMA with mremap (its
    /// swap entry moves with it: a swap entry has no page to copy). Then P
    /// reads page 3 at the old address, C at the new one.
    ///
    /// anongroup: the cached page's one index is P's address; P maps it
    /// again, C must get a copy. anon_vma: the index is a page offset the
    /// moved VMA kept; both map the cached page and the sharing comes back.
    func testHughsCase() throws {
        for scheme in SchemeKind.allCases {
            try withMachine(.small(vmaPages: 16, vmasPerProcess: 1, scheme: scheme)) { m, cpu in
                func check(_ k: Kernel<some RmapScheme, RealPlatform>) throws {
                    let p = try k.startProcess(cpu)
                    let b = k.base(p, vma: 0)
                    XCTAssertEqual(k.fault(p, vpn: b + 3, write: true, cpu), .ok)
                    let f = try XCTUnwrap(k.frame(p, b + 3))
                    let x = k.content(f)
                    let c = try k.forkChild(p, cpu)
                    k.reclaim(cpu, scan: m.config.frames, target: Int.max)  // ages
                    k.reclaim(cpu, scan: m.config.frames, target: Int.max)  // swaps out, keeps it cached
                    let s = k.pte(p, b + 3)
                    XCTAssertTrue(s.isSwap, "\(scheme)")
                    XCTAssertEqual(k.pte(c, b + 3), s)
                    XCTAssertTrue(k.inSwapCache(f))
                    XCTAssertEqual(k.swapCount(s.target), 3, "two entries and the cache")
                    let nb = k.unusedStart(c)
                    XCTAssertTrue(k.mremap(c, vma: 0, to: nb, cpu))
                    XCTAssertEqual(k.pte(c, nb + 3), s, "the swap entry moved with the VMA")
                    assertAuditClean(m, "\(scheme): after mremap")

                    XCTAssertEqual(k.fault(p, vpn: b + 3, write: false, cpu), .ok)
                    XCTAssertEqual(k.frame(p, b + 3), f, "\(scheme): the parent maps the cached page")
                    XCTAssertEqual(k.fault(c, vpn: nb + 3, write: false, cpu), .ok)
                    let n = try XCTUnwrap(k.frame(c, nb + 3))
                    XCTAssertEqual(k.content(n), x)
                    switch scheme {
                    case .anongroup, .cowContext:
                        XCTAssertNotEqual(n, f, "anongroup: the sharer at another address gets a copy")
                        XCTAssertEqual(k.index(n), nb + 3)
                        XCTAssertEqual(k.mapcount(f), 1)
                        XCTAssertEqual(cpu.pointee.eventCount(.swapCacheCopy), 1)
                        XCTAssertEqual(cpu.pointee.eventCount(.swapCacheHit), 1)
                    case .anonVma, .anonVMAChain, .pteChains:
                        XCTAssertEqual(n, f, "anon_vma, pte chains: the sharer maps the cached page too")
                        XCTAssertEqual(k.mapcount(f), 2)
                        XCTAssertEqual(cpu.pointee.eventCount(.swapCacheCopy), 0)
                        XCTAssertEqual(cpu.pointee.eventCount(.swapCacheHit), 2)
                    }
                    XCTAssertEqual(k.swapCount(s.target), 1, "only the cache still names the slot")
                    assertAuditClean(m, "\(scheme): after both swap-ins")
                    // Migration finds every mapping of the page, at both addresses.
                    let t = try XCTUnwrap(k.migrate(frame: f, cpu))
                    XCTAssertTrue(k.inSwapCache(t), "the new page took the old one's place in the cache")
                    XCTAssertFalse(k.inSwapCache(f))
                    XCTAssertEqual(m.violations.map(\.description), [])
                    assertAuditClean(m, "\(scheme): after migration")
                }
                switch scheme {
                case .anongroup: try check(m.kernel)
                case .anonVma: try check(m.anonVMAKernel)
                case .anonVMAChain: try check(m.avcKernel)
                case .pteChains: try check(m.pteChainsKernel)
                case .cowContext: try check(m.cowKernel)
                }
            }
        }
    }

    /// A write to a page read back from swap: while a swap entry still
    /// names its slot the page stays the slot's copy, so the write copies;
    /// once the writer is the only user, the cache lets go and the page is
    /// written in place.
    func testWriteToACachedPage() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 1)) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            let c = try k.forkChild(p, cpu)
            k.swapOutAll(cpu)
            let s = k.pte(p, b)
            XCTAssertTrue(s.isSwap)
            XCTAssertEqual(k.fault(p, vpn: b, write: false, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, b))
            XCTAssertTrue(k.inSwapCache(f), "a page read back from swap stays in the cache")
            XCTAssertEqual(k.swapCount(s.target), 2, "c's entry and the cache")
            XCTAssertEqual(k.fault(p, vpn: b, write: true, cpu), .ok)
            XCTAssertNotEqual(k.frame(p, b), f, "c's entry still needs the cached copy: copy on write")
            XCTAssertEqual(k.fault(c, vpn: b, write: false, cpu), .ok)
            XCTAssertEqual(k.frame(c, b), f, "c maps the cached page")
            XCTAssertEqual(k.swapCount(s.target), 1)
            XCTAssertEqual(k.fault(c, vpn: b, write: true, cpu), .ok)
            XCTAssertEqual(k.frame(c, b), f, "the only user: the cache lets go and the page is reused")
            XCTAssertFalse(k.inSwapCache(f))
            XCTAssertEqual(m.swapSlotsInUse, 0)
            assertAuditClean(m)
        }
    }

    /// Reclaim frees cached pages that nobody maps on its next pass.
    func testReclaimFreesUnmappedCachedPages() throws {
        try withMachine(.small(vmaPages: 16, vmasPerProcess: 1, scheme: .anonVma)) { m, cpu in
            let k = m.anonVMAKernel
            let p = try k.startProcess(cpu)
            let b = k.base(p, vma: 0)
            for d: UInt64 in 0..<8 { XCTAssertEqual(k.fault(p, vpn: b + d, write: true, cpu), .ok) }
            k.reclaim(cpu, scan: m.config.frames, target: Int.max)
            k.reclaim(cpu, scan: m.config.frames, target: Int.max)
            XCTAssertEqual(m.swapCachePages, 8)
            XCTAssertEqual(m.framesInUse, 8, "swapped out, still cached")
            XCTAssertEqual(k.reclaim(cpu, scan: m.config.frames, target: Int.max), 8)
            XCTAssertEqual(m.swapCachePages, 0)
            XCTAssertEqual(m.framesInUse, 0)
            XCTAssertEqual(m.swapSlotsInUse, 8, "the entries keep their slots")
            assertAuditClean(m)
        }
    }
}
