import ConcurrentRmap
import Foundation
import XCTest
@testable import RunEngine

/// The anon-vma scheme's walk and reuse settings: recorded under
/// `anon_vma_walk` and `anon_vma_merge`, read back, passed to child runs,
/// refused where they mean nothing.
final class AnonVMAMergeSettingsTests: XCTestCase {
    func testSettingsRoundTripAndReachTheMachine() throws {
        var s = RunSettings()
        s.scheme = .anonVma
        s.anonVmaWalk = .rcuOnly
        s.anonVmaMerge = false
        let data = try ResultFile.encoder().encode(s)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(obj["anon_vma_walk"] as? String, "rcu-only")
        XCTAssertEqual(obj["anon_vma_merge"] as? Bool, false)
        let back = try ResultFile.decoder().decode(RunSettings.self, from: data)
        XCTAssertEqual(back, s)
        XCTAssertEqual(back.machineConfig.anonVmaWalk, .rcuOnly)
        XCTAssertFalse(back.machineConfig.anonVmaMerge)
        // A child run (selftest, scale) gets both spelled out.
        let a = s.arguments
        XCTAssertEqual(a[try XCTUnwrap(a.firstIndex(of: "--anon-vma-walk")) + 1], "rcu-only")
        XCTAssertEqual(a[try XCTUnwrap(a.firstIndex(of: "--anon-vma-merge")) + 1], "off")
        // The default is the kernel's walk, with reuse; other schemes' child
        // command lines do not carry the options (they would be refused).
        XCTAssertEqual(RunSettings().anonVmaWalk, .locked)
        XCTAssertTrue(RunSettings().anonVmaMerge)
        XCTAssertFalse(RunSettings().arguments.contains("--anon-vma-walk"))
    }

    /// Files from before these settings walked under RCU alone and never
    /// reused an anon_vma; a lock-mode file gets the locked walk (rcu-only
    /// would not validate there).
    func testOlderFilesReadAsTheyRan() throws {
        let rcu = try ResultFile.decoder().decode(RunSettings.self, from: Data(#"{"scheme": "anon-vma", "sync": "rcu"}"#.utf8))
        XCTAssertEqual(rcu.anonVmaWalk, .rcuOnly)
        XCTAssertFalse(rcu.anonVmaMerge)
        let mutex = try ResultFile.decoder().decode(RunSettings.self, from: Data(#"{"scheme": "anon-vma", "sync": "mutex"}"#.utf8))
        XCTAssertEqual(mutex.anonVmaWalk, .locked)
        XCTAssertNil(mutex.validate())
        let group = try ResultFile.decoder().decode(RunSettings.self, from: Data(#"{"scheme": "anongroup"}"#.utf8))
        XCTAssertEqual(group.anonVmaWalk, .locked)
        XCTAssertNil(group.validate())
    }

    func testRCUOnlyIsRefusedOutsideSyncRCUAndOtherSchemes() {
        var s = RunSettings()
        s.scheme = .anonVma
        s.anonVmaWalk = .rcuOnly
        XCTAssertNil(s.validate())
        s.sync = .rwlock
        XCTAssertEqual(s.validate(), "anon_vma walk rcu-only needs sync rcu (got sync rwlock)")
        s.sync = .rcu
        s.scheme = .anongroup
        XCTAssertNotNil(s.validate())
    }
}
