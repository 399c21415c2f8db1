import XCTest
@testable import ConcurrentRmap

/// Shared libraries: every process image maps them, their page is one
/// page cache page mapped by every process, truncate leaves them alone.
final class FileLibraryTests: XCTestCase {
    func libraryConfig(_ scheme: SchemeKind, libraries: Int = 1, iMmap: IMmapKind = .list) -> MachineConfig {
        var c = MachineConfig.small(frames: 512, scheme: scheme)
        c.libraries = libraries
        c.iMmap = iMmap
        return c
    }

    /// The VMA of `mm` mapping inode `ino`, or 0.
    func libraryVMA(_ k: some FileLibraryTestKernel, _ mm: UInt32, _ ino: UInt32) -> UInt32 {
        for t in 0..<MachineConfig.maxVMAs {
            let v = k.vmaHandle(mm, t)
            if v != 0 && VMAFile.inode(k.vmaFileOf(v)) == ino { return v }
        }
        return 0
    }

    /// Process creation, fork and exec each give the image its library; a
    /// read of its first page in each maps one cache page, walked from all.
    func testEveryImageMapsTheLibrary() throws {
        for scheme in SchemeKind.allCases {
            for iMmap in IMmapKind.allCases {
                try withMachine(libraryConfig(scheme, libraries: 2, iMmap: iMmap)) { m, cpu in
                    let k = m.fileKernel
                    let a = try k.startProcess(cpu), b = try k.startProcess(cpu)
                    let c = try k.forkChild(a, cpu)
                    XCTAssertEqual(k.files.inode[1].mappings.load(ordering: .relaxed), 3, "\(scheme) \(iMmap)")
                    XCTAssertEqual(k.files.inode[2].mappings.load(ordering: .relaxed), 3)
                    var frame: UInt32 = 0
                    for mm in [a, b, c] {
                        let v = libraryVMA(k, mm, 1)
                        XCTAssertNotEqual(v, 0)
                        XCTAssertFalse(VMAFile.isShared(k.vmaFileOf(v)), "text and data: a private mapping")
                        XCTAssertEqual(k.fault(mm, vpn: k.vmaStart(v), write: false, cpu), .ok)
                        let f = try XCTUnwrap(k.frame(mm, k.vmaStart(v)))
                        if frame == 0 { frame = f } else { XCTAssertEqual(f, frame, "one cache page for every process") }
                    }
                    XCTAssertEqual(k.mapcount(frame), 3)
                    let moved = try XCTUnwrap(k.migrate(frame: frame, cpu), "the walk reaches every mapping")
                    XCTAssertEqual(k.mapcount(moved), 3)
                    XCTAssertTrue(k.execSlot(b, cpu))
                    XCTAssertEqual(k.files.inode[1].mappings.load(ordering: .relaxed), 3, "exec: the old image's mapping goes, the new one's comes")
                    assertAuditClean(m)
                }
            }
        }
    }

    /// Random truncates and random file mappings never pick a library.
    func testTruncateAndMmapSkipLibraries() throws {
        var c = libraryConfig(.anongroup, libraries: 2)
        c.inodes = 3
        try withMachine(c) { m, cpu in
            let k = m.fileKernel
            let p = try k.startProcess(cpu)
            var mapped = 0
            for _ in 0..<200 {
                k.truncateRandom(cpu)
                if k.mmapRandomFile(p, cpu) { mapped += 1 }
                if k.vmaCountOf(p) >= MachineConfig.maxVMAs - 2 { _ = k.munmap(p, cpu) }
            }
            XCTAssertEqual(k.files.inode[1].size.load(ordering: .relaxed), UInt64(k.files.maxPages))
            XCTAssertEqual(k.files.inode[2].size.load(ordering: .relaxed), UInt64(k.files.maxPages))
            XCTAssertLessThanOrEqual(k.files.inode[1].mappings.load(ordering: .relaxed), 1, "at most the image's own mapping")
            XCTAssertGreaterThan(mapped, 0)
            assertAuditClean(m)
        }
    }

    /// Libraries out of range, more libraries than inodes, and the tree's
    /// planted bug on a list are refused with one line each.
    func testLibraryAndIMmapValidation() {
        var c = MachineConfig()
        c.libraries = 5
        XCTAssertEqual(c.validate(), "libraries must be 0...4 (got 5)")
        c.libraries = 3
        c.inodes = 2
        XCTAssertEqual(c.validate(), "libraries (3) must not outnumber inodes (2)")
        c = MachineConfig()
        c.injection = .iMmapTreeStaleMax
        XCTAssertEqual(c.validate(), "injection i-mmap-tree-stale-max is a bug of i_mmap tree, not of list")
        c.iMmap = .tree
        XCTAssertNil(c.validate())
    }
}

extension Machine {
    /// The machine's kernel, whatever its scheme, as the file tests see it.
    var fileKernel: any FileLibraryTestKernel {
        switch config.scheme {
        case .anongroup: (core as! AnonGroupMachine).kernel
        case .anonVma: (core as! AnonVMAMachine).kernel
        case .anonVMAChain: (core as! AnonVMAChainMachine).kernel
        case .pteChains: (core as! PTEChainsMachine).kernel
        case .cowContext: (core as! COWContextMachine).kernel
        }
    }
}

protocol FileLibraryTestKernel: FileTestKernel {
    func vmaFileOf(_ v: UInt32) -> UInt32
    func vmaCountOf(_ mm: UInt32) -> Int
    func execSlot(_ mm: UInt32, _ cpu: CPU) -> Bool
    func truncateRandom(_ cpu: CPU)
    func mmapRandomFile(_ mm: UInt32, _ cpu: CPU) -> Bool
}

extension Kernel: FileLibraryTestKernel {
    func vmaFileOf(_ v: UInt32) -> UInt32 { vmaFile(v) }
    func vmaCountOf(_ mm: UInt32) -> Int {
        mmapRead(mm)
        defer { mmapUnlock(mm) }
        return vmaCount(mm)
    }
    func execSlot(_ mm: UInt32, _ cpu: CPU) -> Bool {
        guard let s = slot(of: mm) else { return false }
        return execProcess(slot: s, mm: mm, cpu)
    }
    func truncateRandom(_ cpu: CPU) { truncate(cpu) }
    func mmapRandomFile(_ mm: UInt32, _ cpu: CPU) -> Bool { mmapFile(mm, cpu) }
}
