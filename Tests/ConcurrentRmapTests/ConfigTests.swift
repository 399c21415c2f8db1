import XCTest
@testable import ConcurrentRmap

final class ConfigTests: XCTestCase {
    func testDefaultAndSmallConfigsAreValid() {
        XCTAssertNil(MachineConfig().validate())
        XCTAssertNil(MachineConfig.small().validate())
        var c = MachineConfig.small(frames: 64, vmaPages: 32)
        XCTAssertNil(c.validate(), "64 frames hold two VMAs of 32 pages")
        c.vmasPerProcess = MachineConfig.maxVMAs / 2
        XCTAssertNil(c.validate(), "splits may double a process's VMAs")
    }

    func testValidateRejectsBadSizes() {
        let bad: [(String, (inout MachineConfig) -> Void)] = [
            ("too few frames", { $0.frames = 63 }),
            ("no frames", { $0.frames = 0 }),
            ("too many frames", { $0.frames = (1 << 24) + 1 }),
            ("no swap", { $0.swapSlots = 0 }),
            ("negative swap", { $0.swapSlots = -1 }),
            ("too much swap", { $0.swapSlots = (1 << 26) + 1 }),
            ("no processes", { $0.maxProcesses = 0 }),
            ("too many processes", { $0.maxProcesses = (1 << 16) + 1 }),
            ("empty VMA", { $0.vmaPages = 0 }),
            ("VMA not dividing a leaf", { $0.vmaPages = 48 }),
            ("VMA larger than a leaf", { $0.vmaPages = 1024 }),
            ("no VMAs", { $0.vmasPerProcess = 0 }),
            ("too many VMAs", { $0.vmasPerProcess = MachineConfig.maxVMAs + 1 }),
            ("frames below two VMAs", { $0.frames = 256; $0.vmaPages = 256 }),
        ]
        for (what, change) in bad {
            var c = MachineConfig.small()
            change(&c)
            let reason = c.validate()
            XCTAssertNotNil(reason, what)
            XCTAssertThrowsError(try Machine(config: c), what) { error in
                guard case Machine.ConfigError.invalid(let text) = error else {
                    return XCTFail("\(what): unexpected error \(error)")
                }
                XCTAssertEqual(text, reason)
            }
        }
    }

    func testLimitsAreInclusive() {
        var c = MachineConfig.small()
        c.frames = 1 << 24; XCTAssertNil(c.validate())
        c = .small(); c.swapSlots = 1; XCTAssertNil(c.validate())
        c = .small(); c.maxProcesses = 1; XCTAssertNil(c.validate())
        c = .small(frames: 1024); c.vmaPages = 512; XCTAssertNil(c.validate())
        c = .small(); c.vmaPages = 1; XCTAssertNil(c.validate())
    }
}
