import ConcurrentRmap
import RmapTrace
import TraceReplay
import XCTest

/// File mappings of a replayed program on the model's inodes: the fixture
/// file_mappings.st is `sh` (pid 100) mapping ld.so.cache and libc, then
/// forking `cat` (pid 101), which maps both again (libc through an fd from
/// fcntl F_DUPFD_CLOEXEC), a file inherited across exec as fd 7 (dup2'ed by
/// the shell) and a memfd whose open the log does not have.
final class TraceFileReplayTests: XCTestCase {
    /// One thread in the trace's order, every selected page touched, no
    /// background reclaim: the page figures below are exact.
    func exact(_ scheme: SchemeKind, inodes: Int = 256) -> ReplaySettings {
        var s = testSettings(scheme)
        s.threads = 1
        s.faultPercent = 100
        s.background = false
        s.migrateEvery = 0
        s.inodes = inodes
        return s
    }

    func testTheImporterNamesEachPathOnceAcrossProcesses() throws {
        let (records, counts) = try TraceTools.importAll(fixture("file_mappings.st"))
        var files: [UInt32: String] = [:]
        var mapped: [MMID: [Backing]] = [:]
        for r in records {
            switch r.event {
            case .file(let id, let path): files[id] = path
            case .mmap(let mm, _, _, _, _, let b, _): mapped[mm, default: []].append(b)
            default: break
            }
        }
        XCTAssertEqual(files, [1: "\"/etc/ld.so.cache\"", 2: "\"/lib/x86_64-linux-gnu/libc.so.6\"", 3: "\"data\""])
        // sh (mm 2) and cat (mm 4, after fork and exec): the same ids.
        XCTAssertEqual(mapped[2], [.file(1), .file(2), .file(2), .file(2)])
        XCTAssertEqual(mapped[4], [.file(1), .file(2), .file(2), .file(3), .file(nil)])
        XCTAssertEqual(counts.skipped, ["wait4": 1, "memfd_create": 1])
    }

    /// The same path is the same inode in every process: cat's libc pages
    /// are the shell's page cache pages. libc's three mappings cover model
    /// pages 0...31 of its inode, ld.so.cache, data and the memfd one page
    /// each: 35 pages in the cache at the end (68 if cat had inodes of its own).
    func testSamePathSameInodeAndPrivateWritesBirthAnonPagesFromFiles() throws {
        let plan = try ReplayPlan.load(path: fixture("file_mappings.st"))
        XCTAssertEqual(plan.counts.fileMappings, 8)
        XCTAssertEqual(plan.counts.unknownFileMappings, 1)
        for scheme in SchemeKind.allCases {
            let r = try TraceReplay.run(plan, settings: exact(scheme))
            let what = scheme.rawValue
            XCTAssertEqual(r.verdict, "SUCCESS", "\(what): \(r.violations)")
            XCTAssertEqual(r.leakCheck, "clean", what)
            XCTAssertEqual(r.files.paths, 3, what)
            XCTAssertEqual(r.files.inodesUsed, 4, what)
            XCTAssertEqual(r.files.mappingsWithInode, 8, what)
            XCTAssertEqual(r.files.mappingsWithoutInode, 0, what)
            XCTAssertEqual(r.files.unknownFdMappings, 1, what)
            XCTAssertEqual(r.count(.mmapFileNamed), 8, what)
            XCTAssertEqual(r.count(.mmapFileSpare), 1, what)
            XCTAssertEqual(r.count(.mmapFile), 0, what)
            // sh: 1 + 31 + 22 read; cat: 1 + 31 + 1.
            XCTAssertEqual(r.count(.fileReads), 87, what)
            XCTAssertEqual(r.files.pageCachePagesAtEnd, 35, what)
            // libc's data page in each process and the memfd page: written
            // privately, each an anonymous copy of a page cache page.
            XCTAssertEqual(r.count(.fileWrites), 3, what)
            XCTAssertEqual(r.anonBirths.fileCopy, 3, what)
            XCTAssertEqual(r.event(.fileCow), 3, what)
            XCTAssertEqual(r.anonBirths.total, r.anonBirths.zeroFill + r.anonBirths.anonCopy + 3, what)
            XCTAssertEqual(r.privateFileShare, 3 / Double(r.anonBirths.total), accuracy: 1e-12, what)
            XCTAssertTrue(r.report.contains("3 copies of file pages"), r.report)
            // Mappings given a first anonymous page: the stacks of the first
            // task, sh and cat; libc's data in sh and cat and the memfd. The
            // forked child inherits sh's stack and libc data.
            XCTAssertEqual(r.anonVmaBirths.firstTouch, 3, what)
            XCTAssertEqual(r.anonVmaBirths.privateFileWrite, 3, what)
            XCTAssertEqual(r.anonVmaBirths.fork, 2, what)
            XCTAssertEqual(r.anonVmaBirths.privateFileShare, 0.5, what)
        }
    }

    /// Mappings of files the log did not name go to the spare inodes, one
    /// unknown file per mapping at offset 0 (a later one at another offset
    /// joins it), unknown file n on spare n mod spares.
    func testUnknownFilesGoToSpareInodes() throws {
        func map(_ mm: MMID, _ a: UInt64, _ offset: UInt64) -> TraceEvent {
            .mmap(mm: mm, address: a, length: 8192, protection: [.read], shared: false, backing: .file(nil), offset: offset)
        }
        let events: [TraceEvent] = [.start(mm: 1), map(1, 0x7000_0000_0000, 0), map(1, 0x7000_1000_0000, 0x100000),
                                    map(1, 0x7000_2000_0000, 0), .exit(mm: 1)]
        let plan = ReplayPlan.make(events.enumerated().map { TraceRecord(time: UInt64($0.offset), event: $0.element) })
        XCTAssertEqual(plan.unknownFiles, 2)
        // 256 inodes: 16 spares, the two unknown files on two of them; the
        // second mapping (offset 1 MiB = model page 16) joins the first file.
        let many = try TraceReplay.run(plan, settings: exact(.anongroup))
        XCTAssertEqual(many.verdict, "SUCCESS", "\(many.violations)")
        XCTAssertEqual(many.count(.mmapFileSpare), 3)
        XCTAssertEqual(many.files.spareInodes, 16)
        XCTAssertEqual(many.files.inodesUsed, 2)
        XCTAssertEqual(many.files.pageCachePagesAtEnd, 3)
        // 8 inodes: 1 spare, both files on it: page 0 is cached once.
        let one = try TraceReplay.run(plan, settings: exact(.anongroup, inodes: 8))
        XCTAssertEqual(one.verdict, "SUCCESS", "\(one.violations)")
        XCTAssertEqual(one.files.spareInodes, 1)
        XCTAssertEqual(one.files.inodesUsed, 1)
        XCTAssertEqual(one.files.pageCachePagesAtEnd, 2)
    }

    /// --inodes 0: no file mapping is modelled, every one is counted
    /// without an inode; few inodes: the files past them likewise.
    func testFilesPastTheInodesAreCountedWithoutOne() throws {
        let plan = try ReplayPlan.load(path: fixture("file_mappings.st"))
        let none = try TraceReplay.run(plan, settings: exact(.anonVma, inodes: 0))
        XCTAssertEqual(none.verdict, "SUCCESS", "\(none.violations)")
        XCTAssertEqual(none.files.mappingsWithInode, 0)
        XCTAssertEqual(none.files.mappingsWithoutInode, 9)
        XCTAssertEqual(none.files.pathsWithoutInode, 3)
        XCTAssertEqual(none.files.inodesUsed, 0)
        XCTAssertEqual(none.count(.mmapFile), 9)
        XCTAssertEqual(none.count(.fileReads) + none.count(.fileWrites), 0)
        XCTAssertEqual(none.anonBirths.fileCopy, 0)
        XCTAssertEqual(none.privateFileShare, 0)
        XCTAssertTrue(none.report.contains("9 file-backed mappings without an inode"), none.report)
        // 2 inodes: one spare (the memfd), one named (ld.so.cache, mapped twice).
        let two = try TraceReplay.run(plan, settings: exact(.anonVma, inodes: 2))
        XCTAssertEqual(two.verdict, "SUCCESS", "\(two.violations)")
        XCTAssertEqual(two.files.mappingsWithInode, 2)
        XCTAssertEqual(two.files.mappingsWithoutInode, 6)
        XCTAssertEqual(two.files.pathsWithoutInode, 2)
        XCTAssertEqual(two.count(.mmapFile), 6)
        XCTAssertEqual(two.count(.mmapFileSpare), 1)
        XCTAssertEqual(two.anonBirths.fileCopy, 1)
    }

    /// The committed real recording shell_ls_cat (dash running ls, cat and
    /// ls): every file mapping names its file, and libc is one file, hence
    /// one inode, mapped by every image.
    func testARealRecordingMapsLibcAsOneFileInEveryImage() throws {
        let path = here.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/traces/shell_ls_cat.trace.gz").path
        let records = try TraceTools.readAll(path)
        var libc: UInt32?
        var images = Set<MMID>(), mappingLibc = Set<MMID>()
        for r in records {
            switch r.event {
            case .file(let id, let p) where p.hasSuffix("/libc.so.6\""):
                XCTAssertNil(libc, "libc declared twice")
                libc = id
            case .exec(_, let n, _): images.insert(n)
            case .mmap(let mm, _, _, _, _, .file(let id), _):
                XCTAssertNotNil(id, "a file mapping without its file")
                if id == libc { mappingLibc.insert(mm) }
            default: break
            }
        }
        XCTAssertNotNil(libc)
        XCTAssertEqual(images.count, 4)
        XCTAssertEqual(mappingLibc, images)
        let plan = try ReplayPlan.load(path: path)
        let r = try TraceReplay.run(plan, settings: exact(.anonVMAChain))
        XCTAssertEqual(r.verdict, "SUCCESS", "\(r.violations)")
        XCTAssertEqual(r.files.unknownFdMappings, 0)
        XCTAssertEqual(r.files.mappingsWithoutInode, 0)
        XCTAssertEqual(r.files.inodesUsed, r.files.paths)
        XCTAssertGreaterThan(r.anonBirths.fileCopy, 0)
    }
}
