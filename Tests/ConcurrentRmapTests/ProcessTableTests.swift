import XCTest
@testable import ConcurrentRmap

/// The process table's shares: a worker's processes, and the children it
/// forks, stay in its own share (slots congruent to it modulo the shares)
/// while that share has room.
final class ProcessTableTests: XCTestCase {
    /// 8 slots in 2 shares: share 0 is slots 0, 2, 4, 6; share 1 is 1, 3, 5, 7.
    private func twoShares() -> MachineConfig {
        var c = MachineConfig.small(maxProcesses: 8)
        c.expectedCPUs = 2
        return c
    }

    /// A parent in the share's last slot: the child's slot wraps to the
    /// share's first free slot, not into the other share. (The scan used to
    /// stop at the table's end and fall back to any slot: slot 0, share 0,
    /// so the other worker ran the child and both CPUs wrote its lines.)
    func testForkFromTheLastSlotOfAShareStaysInIt() throws {
        try withMachine(twoShares()) { m, cpu in
            XCTAssertTrue(m.spawnProcess(cpu: cpu, near: 7, stride: 2))
            let parent = try XCTUnwrap(m.pinProcess(near: 7, stride: 2, cpu: cpu))
            XCTAssertEqual(parent.slot, 7)
            let child = try XCTUnwrap(m.fork(parent, cpu: cpu, near: parent.slot, stride: 2))
            XCTAssertEqual(child.slot, 1, "first free slot of share 1 after slot 7, wrapping")
            XCTAssertEqual(m.processCount(inShareOf: 1), 2)
            XCTAssertEqual(m.processCount(inShareOf: 0), 0)
            m.unpin(child, cpu: cpu)
            m.unpin(parent, cpu: cpu)
            assertAuditClean(m)
        }
    }

    /// A full share overflows into the other one (any slot), and pinning
    /// visits only the share it is asked for.
    func testFullShareFallsBackToAnySlot() throws {
        try withMachine(twoShares()) { m, cpu in
            for s in [1, 3, 5, 7] { XCTAssertTrue(m.spawnProcess(cpu: cpu, near: s, stride: 2)) }
            XCTAssertEqual(m.processCount(inShareOf: 1), 4)
            XCTAssertNil(m.pinProcess(near: 0, stride: 2, cpu: cpu), "share 0 is empty")
            let parent = try XCTUnwrap(m.pinProcess(near: 5, stride: 2, cpu: cpu))
            XCTAssertEqual(parent.slot, 5)
            let child = try XCTUnwrap(m.fork(parent, cpu: cpu, near: parent.slot, stride: 2))
            XCTAssertEqual(child.slot, 6, "share 1 is full: the next slot of any share after 5")
            XCTAssertEqual(m.processCount(inShareOf: 0), 1)
            m.unpin(child, cpu: cpu)
            m.unpin(parent, cpu: cpu)
            for s in [0, 2, 4] { XCTAssertTrue(m.spawnProcess(cpu: cpu, near: s, stride: 2)) }
            XCTAssertEqual(m.processCount, 8)
            XCTAssertFalse(m.spawnProcess(cpu: cpu, near: 3, stride: 2), "table full")
            assertAuditClean(m)
        }
    }

    /// Every slot of a share is reached by a scan from any of its slots, each
    /// once, in slot order with wrap-around.
    func testShareScanVisitsEachSlotOnceInOrder() throws {
        for (size, shares) in [(8, 2), (9, 2), (10, 3), (5, 1), (7, 7)] {
            var c = MachineConfig.small(maxProcesses: size)
            c.expectedCPUs = shares
            try withMachine(c) { m, _ in
                let table = m.kernel.processes
                for start in 0..<size {
                    for stride in Set([1, shares]) {
                        var seen: [Int] = []
                        _ = table.scan(from: start, stride: stride) { s, e in
                            XCTAssertEqual(e, table.entry(s))
                            seen.append(s)
                            return false
                        }
                        let r = start % stride
                        let expected = Array(stride_from(start, size, r, stride))
                        XCTAssertEqual(seen, expected, "size \(size) shares \(shares) start \(start) stride \(stride)")
                    }
                }
            }
        }
    }

    /// Slots r, r + stride, ... from `start` on, then the ones before it.
    private func stride_from(_ start: Int, _ size: Int, _ r: Int, _ stride: Int) -> [Int] {
        let all = Array(Swift.stride(from: r, to: size, by: stride))
        let i = all.firstIndex(of: start)!
        return Array(all[i...] + all[..<i])
    }
}
