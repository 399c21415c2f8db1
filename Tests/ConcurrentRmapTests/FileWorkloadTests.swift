import XCTest
@testable import ConcurrentRmap

/// The file workloads' walk costs, list against tree, the tree under the
/// VMA changes of a random run, and the tree's planted bug.
final class FileWorkloadTests: XCTestCase {
    func windowsConfig(_ iMmap: IMmapKind, mappings: Int, injection: Injection = .none) -> MachineConfig {
        var c = MachineConfig.small(frames: 1024, maxProcesses: 64)
        c.iMmap = iMmap
        c.injection = injection
        return Machine.fileWindowsConfig(c, mappings: mappings)
    }

    /// Many windows of one file: the list visits every mapping, the tree
    /// about log M + 1; both find the page's one mapping.
    func testWindowsWalkListVisitsEveryMappingTreeFew() throws {
        for mappings in [1, 4, 16, 64] {
            var visits: [IMmapKind: Double] = [:]
            for iMmap in IMmapKind.allCases {
                try withMachine(windowsConfig(iMmap, mappings: mappings)) { m, cpu in
                    let fig = try XCTUnwrap(m.benchFileWindowsWalk(mappings: mappings, walks: 2 * mappings, cpu: cpu))
                    XCTAssertEqual(fig.foundPerWalk, 1, "\(iMmap) M=\(mappings)")
                    visits[iMmap] = fig.visitedPerWalk
                    assertAuditClean(m)
                }
            }
            XCTAssertEqual(visits[.list], Double(mappings), "the list reads all M")
            if mappings >= 16 {
                XCTAssertLessThan(visits[.tree]!, Double(mappings) / 2, "M=\(mappings): the tree prunes")
            }
        }
    }

    /// Many processes with one library: every walk of its page visits and
    /// finds one VMA per process, list or tree.
    func testLibraryWalkFindsEveryProcess() throws {
        for iMmap in IMmapKind.allCases {
            var c = MachineConfig.small(frames: 1024, maxProcesses: 32)
            c.libraries = 1
            c.iMmap = iMmap
            try withMachine(c) { m, cpu in
                let fig = try XCTUnwrap(m.benchLibraryWalk(processes: 20, walks: 10, cpu: cpu))
                XCTAssertEqual(fig.mappings, 20)
                XCTAssertEqual(fig.foundPerWalk, 20)
                XCTAssertGreaterThanOrEqual(fig.visitedPerWalk, 20)
                assertAuditClean(m)
            }
        }
    }

    /// The tree through a random run's VMA changes (split, merge, mremap,
    /// munmap, fork, exit, truncate) on every scheme: audits clean.
    func testTreeKeepsItsInvariantsUnderRandomOperations() throws {
        let ops: [OpKind] = [.fault, .fault, .fault, .fork, .exit, .exec, .mremap, .munmap, .split, .mmapFile, .mmapFile,
                             .truncate, .reclaim, .migrate]
        for scheme in SchemeKind.allCases {
            var c = MachineConfig.small(frames: 512, maxProcesses: 24, vmaPages: 16, scheme: scheme)
            c.iMmap = .tree
            c.inodes = 3
            c.libraries = 1
            try withMachine(c) { m, cpu in
                for i in 0..<3000 {
                    _ = m.perform(ops[cpu.pointee.random(below: ops.count)], cpu: cpu)
                    if i % 500 == 499 { assertAuditClean(m, "\(scheme) after \(i + 1) operations") }
                }
            }
        }
    }

    /// Equal starts keep insertion order: mremap's copy of a file VMA is
    /// walked after the VMA it copies (the list's tail rule).
    func testTreeWalksACopyAfterItsOriginal() throws {
        var c = MachineConfig.small()
        c.iMmap = .tree
        try withMachine(c) { m, cpu in
            let k = m.kernel
            let a = try k.startProcess(cpu), b = try k.startProcess(cpu)
            let va = k.mmapFile(a, inode: 7, pgoff: 0, pages: 4, shared: true, cpu)
            let vb = k.mmapFile(b, inode: 7, pgoff: 0, pages: 4, shared: true, cpu)
            XCTAssertEqual(k.iMmapOrder(7, at: 1), [va, vb])
            let t = try XCTUnwrap((0..<MachineConfig.maxVMAs).first { k.vmaHandle(a, $0) == va })
            let to = k.unusedStart(a)
            XCTAssertTrue(k.mremap(a, vma: t, to: to, cpu))
            XCTAssertEqual(k.iMmapOrder(7, at: 1), [vb, k.findVMA(a, to)])
            assertAuditClean(m)
        }
    }

    /// i-mmap-tree-stale-max: the audit finds the stale maximum, and a
    /// walk that prunes on it misses the mapping.
    func testStaleMaxIsCaught() throws {
        try withMachine(windowsConfig(.tree, mappings: 64, injection: .iMmapTreeStaleMax), expectNoViolations: false) { m, cpu in
            let k = m.kernel
            var last: (mm: UInt32, vpn: UInt64) = (0, 0)
            for p in 0..<8 {
                let mm = try k.startProcess(cpu)
                for w in 0..<8 {
                    let v = k.mmapFile(mm, inode: 1, pgoff: UInt64((p * 8 + w) * 8), pages: 8, shared: true, cpu)
                    XCTAssertNotEqual(v, 0)
                    XCTAssertEqual(k.fault(mm, vpn: k.vmaStart(v), write: false, cpu), .ok)
                    last = (mm, k.vmaStart(v))
                }
            }
            let audit = m.audit()
            XCTAssertTrue(audit.contains { $0.kind == .groupList && $0.detail.contains("subtree maximum") },
                          audit.map(\.description).joined(separator: "\n"))
            // The highest window was inserted last, below ancestors whose
            // maxima it never raised: its page's walk is pruned.
            let f = try XCTUnwrap(k.frame(last.mm, last.vpn))
            XCTAssertEqual(k.iMmapOrder(1, at: k.index(f)), [], "the walk misses the only mapping")
        }
    }
}

extension Kernel {
    /// The VMAs the walk of page `index` of inode `ino` reaches, in order.
    func iMmapOrder(_ ino: UInt32, at index: UInt64) -> [UInt32] {
        var out: [UInt32] = []
        iMmapRead(ino)
        _ = iMmapForEach(ino, index, index) { v in
            if vmaAddress(v, index: index) != nil { out.append(v) }
            return true
        }
        iMmapUnlock(ino)
        return out
    }
}
