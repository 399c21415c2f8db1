import XCTest
@testable import ConcurrentRmap

/// `Machine.mapFile` (a replayed program's file mapping, Kernel.mapFileVMA):
/// clamped to the file, refused for a missing inode, one inode's cache page
/// shared by every process mapping it, a private write copied into an
/// anonymous page.
final class MapFileTests: XCTestCase {
    func testMapFileClampsSharesTheCacheAndCopiesPrivateWrites() throws {
        for scheme in SchemeKind.allCases {
            var c = MachineConfig.small(frames: 512, vmaPages: 16, vmasPerProcess: 1, scheme: scheme)
            c.inodes = 4
            try withMachine(c) { m, cpu in
                let a = try XCTUnwrap(m.spawnPinned(cpu: cpu)), b = try XCTUnwrap(m.spawnPinned(cpu: cpu))
                XCTAssertEqual(m.mapFile(a, inode: 0, pgoff: 0, pages: 4, shared: false, cpu: cpu), 0, "no inode 0")
                XCTAssertEqual(m.mapFile(a, inode: 5, pgoff: 0, pages: 4, shared: false, cpu: cpu), 0, "past the inodes")
                // 1000 pages at page 1000: 16 pages, the file's last 16.
                let big = m.mapFile(a, inode: 2, pgoff: 1000, pages: 1000, shared: false, cpu: cpu)
                XCTAssertNotEqual(big, 0)
                XCTAssertEqual(m.vmaPages(big), 16)
                let va = m.mapFile(a, inode: 1, pgoff: 2, pages: 4, shared: false, cpu: cpu)
                let vb = m.mapFile(b, inode: 1, pgoff: 0, pages: 8, shared: false, cpu: cpu)
                XCTAssertNotEqual(va, 0); XCTAssertNotEqual(vb, 0)
                XCTAssertEqual(m.pageCachePages, 0)
                // File page 3: page 1 of a's mapping, page 3 of b's; read by both, cached once.
                XCTAssertTrue(m.touch(a, vma: va, page: 1, write: false, cpu: cpu))
                XCTAssertTrue(m.touch(b, vma: vb, page: 3, write: false, cpu: cpu))
                XCTAssertEqual(m.pageCachePages, 1)
                // A private write: an anonymous copy; the cache keeps its page.
                let copies = cpu.pointee.eventCount(.fileCow)
                XCTAssertTrue(m.touch(a, vma: va, page: 1, write: true, cpu: cpu))
                XCTAssertEqual(cpu.pointee.eventCount(.fileCow), copies + 1)
                XCTAssertEqual(m.pageCachePages, 1)
                XCTAssertEqual(m.audit().map(\.description), [])
                for p in [a, b] {
                    XCTAssertTrue(m.exit(p, cpu: cpu))
                    m.unpin(p, cpu: cpu)
                }
            }
        }
    }
}
