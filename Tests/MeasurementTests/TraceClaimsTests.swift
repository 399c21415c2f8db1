import RmapTrace
import XCTest
@testable import Measurement

/// The claims on a recorded program follow from its statistics, by the
/// rules their rows state: the same claim moves when the figures do.
final class TraceClaimsTests: XCTestCase {
    func verdict(_ s: TraceStats, _ prefix: String) throws -> String {
        try XCTUnwrap(TraceClaims.judge(workload: "w", s, .init()).first { $0.claim.hasPrefix(prefix) }).verdict
    }

    func testVerdictsFollowTheStatistics() throws {
        var s = TraceStats()
        s.groupSizeTimeUS = [1: 900, 2: 100]
        s.maxLiveGroupSize = 2
        XCTAssertEqual(try verdict(s, "In most cases"), "supports")
        s.groupSizeTimeUS = [10: 1000]
        s.maxLiveGroupSize = 12
        XCTAssertEqual(try verdict(s, "In most cases"), "partly")
        s.groupSizeTimeUS = [40: 1000]
        s.maxLiveGroupSize = 40
        XCTAssertEqual(try verdict(s, "In most cases"), "refutes")

        s.mremapCalls = 10; s.mremapMoved = 10; s.mremapMovedInForkChildren = 5; s.mremapMovedSharedBytesBound = 0
        XCTAssertEqual(try verdict(s, "The extra COW"), "supports", "nothing a relative could share was moved")
        s.mremapMovedSharedBytesBound = 4096
        XCTAssertEqual(try verdict(s, "The extra COW"), "refutes", "half the moves by fork children")
        XCTAssertEqual(try verdict(s, "mremap of shared"), "refutes")
        s.mremapMovedInForkChildren = 1
        XCTAssertEqual(try verdict(s, "The extra COW"), "partly")
        XCTAssertEqual(try verdict(s, "mremap of shared"), "partly")

        s.forks = 0; s.threads = 8
        XCTAssertEqual(try verdict(s, "A high-performance server"), "supports")
        s.forks = 100; s.threads = 0; s.maxLiveGroupSize = 40
        XCTAssertEqual(try verdict(s, "A high-performance server"), "refutes")
        XCTAssertEqual(try verdict(s, "anon_vma costs"), "by construction")
    }

    /// Live mms: an own exec replaces its mm, a vfork child's exec adds one.
    func testMappingsCountLiveMMsAndWritablePrivateMappings() {
        let rw: Protection = [.read, .write]
        let records: [TraceEvent] = [
            .start(mm: 1), .fork(parent: 1, child: 2), .exec(old: 2, new: 3, fromVfork: false),
            .exec(old: 1, new: 4, fromVfork: true),
            .mmap(mm: 3, address: 0x1000, length: 4096, protection: rw, shared: false, backing: .anon, offset: 0),
            .mmap(mm: 3, address: 0x9000, length: 4096, protection: [.read], shared: false, backing: .anon, offset: 0),
            .mmap(mm: 3, address: 0x5000, length: 4096, protection: rw, shared: true, backing: .anon, offset: 0),
            .mmap(mm: 4, address: 0x2000, length: 4096, protection: rw, shared: false, backing: .file(nil), offset: 0),
            .exit(mm: 3),
        ]
        let m = TraceClaims.mappings(records.enumerated().map { TraceRecord(time: UInt64($0.offset), event: $0.element) })
        XCTAssertEqual(m.peakLiveMMs, 3, "1, 2 (replaced by 3), then 4")
        XCTAssertEqual(m.anonymousMappings, 2)
        XCTAssertEqual(m.writablePrivateMappings, 2)
    }
}
