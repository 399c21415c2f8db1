import XCTest
@testable import ConcurrentRmap

/// The file branch: inodes and the page cache, file VMAs and their faults,
/// the i_mmap walk (reclaim, migration), truncate, and the planted bugs of
/// the branch, under every scheme.
final class FileTests: XCTestCase {
    /// Runs `body` on a small machine of each scheme, with its kernel.
    func eachScheme(injection: Injection = .none, expectNoViolations: Bool = true,
                    _ body: (any FileTestKernel, Machine, CPU) throws -> Void) throws {
        for scheme in SchemeKind.allCases {
            let c = MachineConfig.small(frames: 512, injection: injection, scheme: scheme)
            try withMachine(c, expectNoViolations: expectNoViolations) { m, cpu in
                let k: any FileTestKernel
                switch scheme {
                case .anongroup: k = (m.core as! AnonGroupMachine).kernel
                case .anonVma: k = (m.core as! AnonVMAMachine).kernel
                case .anonVMAChain: k = (m.core as! AnonVMAChainMachine).kernel
                case .pteChains: k = (m.core as! PTEChainsMachine).kernel
                case .cowContext: k = (m.core as! COWContextMachine).kernel
                }
                try body(k, m, cpu)
            }
        }
    }

    /// Two processes map one file shared: a read maps the cache page, a
    /// write dirties it and the other process sees the write.
    func testSharedMappingSharesTheCachePage() throws {
        try eachScheme { k, m, cpu in
            let a = try k.startProcess(cpu), b = try k.startProcess(cpu)
            let va = k.mmapFile(a, inode: 1, pgoff: 0, pages: 8, shared: true, cpu)
            let vb = k.mmapFile(b, inode: 1, pgoff: 4, pages: 4, shared: true, cpu)
            XCTAssertNotEqual(va, 0); XCTAssertNotEqual(vb, 0)
            XCTAssertEqual(k.fault(a, vpn: k.vmaStart(va) + 5, write: false, cpu), .ok)
            XCTAssertEqual(k.fault(b, vpn: k.vmaStart(vb) + 1, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(a, k.vmaStart(va) + 5))
            XCTAssertEqual(k.frame(b, k.vmaStart(vb) + 1), f, "file offset 5 is one page in both")
            XCTAssertFalse(k.isAnon(f))
            XCTAssertEqual(k.files.slot(1, 5).pointee.load(ordering: .relaxed), f)
            XCTAssertEqual(k.mapcount(f), 2)
            XCTAssertEqual(k.refcount(f), 3, "two mappings and the cache")
            XCTAssertNotEqual(k.frames[Int(f)].flags.load(ordering: .relaxed) & FrameFlags.dirty, 0)
            XCTAssertEqual(k.files.inode[1].mappings.load(ordering: .relaxed), 2)
            assertAuditClean(m)
        }
    }

    /// A private write copies into an anonymous page of the active scheme;
    /// the cache page stays clean and mapped by the reader.
    func testPrivateWriteCopiesIntoAnAnonymousPage() throws {
        try eachScheme { k, m, cpu in
            let a = try k.startProcess(cpu), b = try k.startProcess(cpu)
            let va = k.mmapFile(a, inode: 2, pgoff: 0, pages: 8, shared: false, cpu)
            let vb = k.mmapFile(b, inode: 2, pgoff: 0, pages: 8, shared: false, cpu)
            XCTAssertEqual(k.fault(b, vpn: k.vmaStart(vb) + 3, write: false, cpu), .ok)
            let cached = try XCTUnwrap(k.frame(b, k.vmaStart(vb) + 3))
            XCTAssertEqual(k.fault(a, vpn: k.vmaStart(va) + 3, write: true, cpu), .ok)
            let copy = try XCTUnwrap(k.frame(a, k.vmaStart(va) + 3))
            XCTAssertNotEqual(copy, cached)
            XCTAssertTrue(k.isAnon(copy), "a private COW copy is anonymous")
            XCTAssertEqual(k.frames[Int(cached)].flags.load(ordering: .relaxed) & FrameFlags.dirty, 0)
            XCTAssertEqual(k.mapcount(cached), 1)
            XCTAssertTrue(k.pte(a, k.vmaStart(va) + 3).isWritable)
            // Reclaim and migration find the copy through the scheme.
            XCTAssertNotNil(k.migrate(frame: copy, cpu))
            assertAuditClean(m)
        }
    }

    /// fork: the child's file VMA joins i_mmap; file pages are not copied
    /// (the child refaults the same cache page), private copies are.
    func testForkJoinsIMmapAndRefaults() throws {
        try eachScheme { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 3, pgoff: 0, pages: 8, shared: true, cpu)
            let base = k.vmaStart(v)
            XCTAssertEqual(k.fault(p, vpn: base, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, base))
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.files.inode[3].mappings.load(ordering: .relaxed), 2)
            XCTAssertNil(k.frame(c, base), "no PTE copied for a shared file page")
            XCTAssertEqual(k.fault(c, vpn: base, write: false, cpu), .ok)
            XCTAssertEqual(k.frame(c, base), f)
            // Migration walks i_mmap and must find both mappings.
            let n = try XCTUnwrap(k.migrate(frame: f, cpu))
            XCTAssertEqual(k.frame(p, base), n); XCTAssertEqual(k.frame(c, base), n)
            XCTAssertEqual(k.files.slot(3, 0).pointee.load(ordering: .relaxed), n, "the cache slot follows the page")
            assertAuditClean(m)
        }
    }

    /// Reclaim: a dirty page is written back before it goes; the refault
    /// reads the written data back from the disk.
    func testReclaimWritesBackDirtyPages() throws {
        try eachScheme { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 4, pgoff: 0, pages: 4, shared: true, cpu)
            let base = k.vmaStart(v)
            XCTAssertEqual(k.fault(p, vpn: base + 1, write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, base + 1))
            let written = k.content(f)
            // The first pass ages (young PTE), the second drops it.
            for _ in 0..<2 { _ = k.shrinkFilePage(f, cpu) }
            XCTAssertNil(k.frame(p, base + 1))
            XCTAssertEqual(k.files.slot(4, 1).pointee.load(ordering: .relaxed), 0)
            XCTAssertEqual(k.files.diskWord(4, 1).pointee.load(ordering: .relaxed), written)
            XCTAssertEqual(k.fault(p, vpn: base + 1, write: false, cpu), .ok)
            let g = try XCTUnwrap(k.frame(p, base + 1))
            XCTAssertEqual(k.content(g), written)
            assertAuditClean(m)
        }
    }

    /// Truncate unmaps every mapping beyond the new size (file pages and
    /// private copies) and drops the cache pages; a fault there fails.
    func testTruncateUnmapsAndDropsBeyondEOF() throws {
        try eachScheme { k, m, cpu in
            let a = try k.startProcess(cpu), b = try k.startProcess(cpu)
            let va = k.mmapFile(a, inode: 5, pgoff: 0, pages: 8, shared: true, cpu)
            let vb = k.mmapFile(b, inode: 5, pgoff: 2, pages: 6, shared: false, cpu)
            for d: UInt64 in 0..<8 { XCTAssertEqual(k.fault(a, vpn: k.vmaStart(va) + d, write: d % 2 == 0, cpu), .ok) }
            for d: UInt64 in 0..<6 { XCTAssertEqual(k.fault(b, vpn: k.vmaStart(vb) + d, write: d == 4, cpu), .ok) }
            k.truncate(5, to: 4, cpu)
            for d: UInt64 in 4..<8 { XCTAssertNil(k.frame(a, k.vmaStart(va) + d), "offset \(d) unmapped in a") }
            for d: UInt64 in 2..<6 { XCTAssertNil(k.frame(b, k.vmaStart(vb) + d), "offset \(d + 2) unmapped in b") }
            XCTAssertNotNil(k.frame(a, k.vmaStart(va) + 3))
            for i: UInt64 in 4..<8 { XCTAssertEqual(k.files.slot(5, i).pointee.load(ordering: .relaxed), 0) }
            XCTAssertEqual(k.files.inode[5].nrpages.load(ordering: .relaxed), 4)
            XCTAssertEqual(k.fault(a, vpn: k.vmaStart(va) + 6, write: false, cpu), .badAddress, "SIGBUS beyond EOF")
            assertAuditClean(m)
            k.truncate(5, to: 8, cpu)
            XCTAssertEqual(k.fault(a, vpn: k.vmaStart(va) + 6, write: false, cpu), .ok, "grown back")
            assertAuditClean(m)
        }
    }

    /// mremap, split, merge and munmap keep i_mmap and the file offsets
    /// right: the walk still finds every mapping.
    func testVMAChangesKeepIMmap() throws {
        try eachScheme { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 6, pgoff: 8, pages: 16, shared: true, cpu)
            let base = k.vmaStart(v)
            for d: UInt64 in 0..<16 { XCTAssertEqual(k.fault(p, vpn: base + d, write: false, cpu), .ok) }
            k.mmapWrite(p)
            XCTAssertTrue(k.splitLocked(p, v, at: 6, cpu))
            k.mmapUnlock(p)
            XCTAssertEqual(k.files.inode[6].mappings.load(ordering: .relaxed), 2)
            assertAuditClean(m)
            let t = try XCTUnwrap((0..<MachineConfig.maxVMAs).first { k.vmaHandle(p, $0) == v })
            let to = k.unusedStart(p)
            XCTAssertTrue(k.mremap(p, vma: t, to: to, cpu))
            let moved = k.findVMA(p, to)
            XCTAssertEqual(k.vmaPgoff(moved), 8, "a file VMA keeps its file offset")
            let f = try XCTUnwrap(k.frame(p, to + 2))
            XCTAssertEqual(k.index(f), 10)
            XCTAssertNotNil(k.migrate(frame: f, cpu))
            assertAuditClean(m)
            XCTAssertTrue(k.munmap(p, cpu) || true)
            assertAuditClean(m)
        }
    }

    // MARK: The planted bugs, each caught by a general check

    func testTruncateWithoutUnmapIsCaught() throws {
        try eachScheme(injection: .fileTruncateNoUnmap, expectNoViolations: false) { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 1, pgoff: 0, pages: 8, shared: true, cpu)
            XCTAssertEqual(k.fault(p, vpn: k.vmaStart(v) + 6, write: false, cpu), .ok)
            k.truncate(1, to: 2, cpu)
            let kinds = Set(m.audit().map(\.kind))
            XCTAssertTrue(kinds.contains(.location), "\(kinds)")
            XCTAssertTrue(kinds.isSubset(of: Injection.fileTruncateNoUnmap.caughtBy), "\(kinds)")
            // Let teardown run clean of this test's own mess.
            k.zap(p, v, cpu)
        }
    }

    func testForkWithoutIMmapIsCaught() throws {
        try eachScheme(injection: .fileForkNoIMmap, expectNoViolations: false) { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 2, pgoff: 0, pages: 8, shared: true, cpu)
            let c = try k.forkChild(p, cpu)
            XCTAssertEqual(k.fault(c, vpn: k.vmaStart(v), write: false, cpu), .ok)
            let kinds = Set(m.audit().map(\.kind))
            XCTAssertFalse(kinds.isEmpty)
            XCTAssertTrue(kinds.isSubset(of: Injection.fileForkNoIMmap.caughtBy), "\(kinds)")
        }
    }

    func testReclaimDroppingDirtyIsCaught() throws {
        try eachScheme(injection: .fileReclaimDropsDirty, expectNoViolations: false) { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 3, pgoff: 0, pages: 8, shared: true, cpu)
            XCTAssertEqual(k.fault(p, vpn: k.vmaStart(v), write: true, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, k.vmaStart(v)))
            for _ in 0..<2 { _ = k.shrinkFilePage(f, cpu) }
            let kinds = Set(m.violations.map(\.kind))
            XCTAssertEqual(kinds, [.content])
        }
    }

    func testPrivateWriteIntoCacheIsCaught() throws {
        try eachScheme(injection: .filePrivateWriteInCache, expectNoViolations: false) { k, m, cpu in
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 4, pgoff: 0, pages: 8, shared: false, cpu)
            XCTAssertEqual(k.fault(p, vpn: k.vmaStart(v), write: true, cpu), .ok)
            let kinds = Set(m.audit().map(\.kind))
            XCTAssertTrue(kinds.contains(.location), "\(kinds)")
            XCTAssertTrue(kinds.isSubset(of: Injection.filePrivateWriteInCache.caughtBy), "\(kinds)")
        }
    }

    func testFileBugsAreSchemeNeutral() {
        let bugs: [Injection] = [.fileTruncateNoUnmap, .fileFaultNoSizeCheck, .fileForkNoIMmap,
                                 .fileWalkNoIMmapLock, .fileReclaimDropsDirty, .filePrivateWriteInCache,
                                 .shmemEvictWhileMapped, .shmemEvictKeepsPages]
        for b in bugs {
            XCTAssertNil(b.scheme)
            XCTAssertFalse(b.caughtBy.isEmpty)
            for s in SchemeKind.allCases { XCTAssertTrue(Injection.catalogue(for: s).contains(b)) }
        }
    }
}

/// The kernel calls the file tests make, whatever the scheme.
protocol FileTestKernel {
    var files: Inodes { get }
    var frames: UnsafeMutablePointer<Frame> { get }
    func startProcess(_ cpu: CPU) throws -> UInt32
    func forkChild(_ parent: UInt32, _ cpu: CPU) throws -> UInt32
    func mmapFile(_ mm: UInt32, inode: UInt32, pgoff: UInt64, pages: Int, shared: Bool, _ cpu: CPU) -> UInt32
    func fault(_ mm: UInt32, vpn: UInt64, write: Bool, _ cpu: CPU) -> FaultResult
    func frame(_ mm: UInt32, _ vpn: UInt64) -> UInt32?
    func pte(_ mm: UInt32, _ vpn: UInt64) -> PTE
    func vmaStart(_ v: UInt32) -> UInt64
    func vmaPgoff(_ v: UInt32) -> UInt64
    func vmaHandle(_ mm: UInt32, _ k: Int) -> UInt32
    func findVMA(_ mm: UInt32, _ vpn: UInt64) -> UInt32
    func unusedStart(_ mm: UInt32) -> UInt64
    func isAnon(_ f: UInt32) -> Bool
    func mapcount(_ f: UInt32) -> Int32
    func refcount(_ f: UInt32) -> Int32
    func content(_ f: UInt32) -> UInt64
    func index(_ f: UInt32) -> UInt64
    func migrate(frame f: UInt32, _ cpu: CPU) -> UInt32?
    func mremap(_ mm: UInt32, vma k: Int, to start: UInt64, _ cpu: CPU) -> Bool
    func munmap(_ mm: UInt32, _ cpu: CPU) -> Bool
    func shrinkFilePage(_ f: UInt32, _ cpu: CPU) -> Bool
    func truncate(_ ino: UInt32, to pages: Int, _ cpu: CPU)
    func splitLocked(_ mm: UInt32, _ v: UInt32, at cut: Int, _ cpu: CPU) -> Bool
    func mmapWrite(_ mm: UInt32, file: StaticString, line: UInt)
    func mmapUnlock(_ mm: UInt32)
    func zap(_ mm: UInt32, _ v: UInt32, _ cpu: CPU)
    func mmapShmem(_ mm: UInt32, pages: Int, _ cpu: CPU) -> UInt32
    func vmaFile(_ v: UInt32) -> UInt32
    var shmemInUse: Int { get }
    func visibleContent(_ mm: UInt32, _ vpn: UInt64) -> UInt64?
    func walkedMMs(_ f: UInt32, _ cpu: CPU) -> [UInt32]
    func exitMM(_ mm: UInt32, _ cpu: CPU) throws
    func munmapVMA(_ mm: UInt32, _ start: UInt64, _ cpu: CPU) -> Bool
}

extension FileTestKernel {
    func mmapWrite(_ mm: UInt32) { mmapWrite(mm, file: #fileID, line: #line) }
}

extension Kernel: FileTestKernel {}

extension FileTests {
    /// i_mmap keeps link order, new VMAs at the tail: mremap's copy is
    /// walked after the VMA it copies, so a walker racing the PTE moves
    /// finds each PTE in one of the two (explore found the miss with
    /// head insertion).
    func testIMmapLinksAtTheTail() throws {
        try withMachine(.small()) { m, cpu in
            let k = m.kernel
            let a = try k.startProcess(cpu), b = try k.startProcess(cpu)
            let va = k.mmapFile(a, inode: 7, pgoff: 0, pages: 4, shared: true, cpu)
            let vb = k.mmapFile(b, inode: 7, pgoff: 0, pages: 4, shared: true, cpu)
            XCTAssertEqual(k.iMmapList(7), [va, vb])
            let t = try XCTUnwrap((0..<MachineConfig.maxVMAs).first { k.vmaHandle(a, $0) == va })
            let to = k.unusedStart(a)
            XCTAssertTrue(k.mremap(a, vma: t, to: to, cpu))
            XCTAssertEqual(k.iMmapList(7), [vb, k.findVMA(a, to)])
            assertAuditClean(m)
        }
    }
}

extension Kernel {
    /// Inode `ino`'s i_mmap, head to tail.
    func iMmapList(_ ino: UInt32) -> [UInt32] {
        var out: [UInt32] = []
        var v = files.inode[Int(ino)].head.load(ordering: .relaxed)
        while v != 0 { out.append(v); v = vmaRecord(v).pointee.iNext.load(ordering: .relaxed) }
        return out
    }
}

extension FileTests {
    /// Split halves of one file VMA merge back (same file, continuous
    /// offsets) and the absorbed half leaves i_mmap; a file VMA never
    /// merges with an anonymous neighbour.
    func testMergeKeepsIMmap() throws {
        try withMachine(.small()) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 8, pgoff: 0, pages: 16, shared: true, cpu)
            let base = k.vmaStart(v)
            for d: UInt64 in [2, 12] { XCTAssertEqual(k.fault(p, vpn: base + d, write: true, cpu), .ok) }
            k.mmapWrite(p)
            XCTAssertTrue(k.splitLocked(p, v, at: 8, cpu))
            k.mmapUnlock(p)
            XCTAssertEqual(k.iMmapList(8).count, 2)
            XCTAssertEqual(k.mergeVMA(p, vma: v, cpu), v)
            XCTAssertEqual(k.iMmapList(8), [v])
            XCTAssertEqual(k.files.inode[8].mappings.load(ordering: .relaxed), 1)
            // An anonymous VMA right after it, with continuous offsets, stays apart.
            k.mmapWrite(p)
            XCTAssertTrue(k.splitLocked(p, v, at: 8, cpu))
            let upper = k.findVMA(p, base + 8)
            k.vmaRecord(upper).pointee.file.store(0, ordering: .relaxed)  // as if it were anonymous
            XCTAssertFalse(k.canMerge(p, lower: v, upper: upper))
            k.vmaRecord(upper).pointee.file.store(8 | VMAFile.shared, ordering: .relaxed)
            k.mmapUnlock(p)
            assertAuditClean(m)
        }
    }

    /// The general check behind truncate's guarantee: a mapped page beyond
    /// EOF with no truncate in flight is reported by the walk that meets
    /// it, and by the audit.
    func testMappedBeyondEOFIsReported() throws {
        try withMachine(.small(), expectNoViolations: false) { m, cpu in
            let k = m.kernel
            let p = try k.startProcess(cpu)
            let v = k.mmapFile(p, inode: 1, pgoff: 0, pages: 8, shared: true, cpu)
            XCTAssertEqual(k.fault(p, vpn: k.vmaStart(v) + 5, write: false, cpu), .ok)
            let f = try XCTUnwrap(k.frame(p, k.vmaStart(v) + 5))
            k.files.inode[1].size.store(4, ordering: .relaxed)  // a size change with no unmap
            XCTAssertTrue(Set(m.audit().map(\.kind)).contains(.location))
            XCTAssertNotNil(k.migrate(frame: f, cpu))
            XCTAssertTrue(m.violations.contains { $0.kind == .location && $0.detail.contains("beyond EOF") })
            k.files.inode[1].size.store(UInt64(k.files.maxPages), ordering: .relaxed)
        }
    }

    /// The teardown leak check covers the inodes: a VMA left on i_mmap is
    /// reported.
    func testLeakCheckCoversInodes() throws {
        try withMachine(.small()) { m, cpu in
            let k = m.kernel
            var found: [Violation] = []
            k.files.inode[2].mappings.store(1, ordering: .relaxed)
            k.files.inode[3].nrpages.store(1, ordering: .relaxed)
            k.fileLeakCheck { found.append($0) }
            XCTAssertEqual(found.map(\.kind), [.leak, .leak])
            k.files.inode[2].mappings.store(0, ordering: .relaxed)
            k.files.inode[3].nrpages.store(0, ordering: .relaxed)
        }
    }
}
