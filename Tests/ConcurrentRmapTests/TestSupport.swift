import XCTest
import Synchronization
@testable import ConcurrentRmap

typealias TestKernel = Kernel<AnonGroupRmap, RealPlatform>
typealias AnonVMAKernel = Kernel<AnonVMARmap, RealPlatform>

extension Machine {
    /// The anongroup machine's kernel (the tests' way in below the public API).
    var kernel: TestKernel { (core as! AnonGroupMachine).kernel }
    /// The anon_vma machine's kernel.
    var anonVMAKernel: AnonVMAKernel { (core as! AnonVMAMachine).kernel }
}

extension MachineConfig {
    /// A machine small enough for unit tests: memory runs short quickly, so
    /// reclaim and swap are exercised.
    static func small(frames: Int = 256, swapSlots: Int = 1024, maxProcesses: Int = 16,
                      vmaPages: Int = 64, vmasPerProcess: Int = 2, sync: ListSync = .rcu,
                      checks: CheckLevel = .full, injection: Injection = .none,
                      perturb: Bool = false, scheme: SchemeKind = .anongroup) -> MachineConfig {
        var c = MachineConfig()
        c.scheme = scheme
        c.frames = frames
        c.swapSlots = swapSlots
        c.maxProcesses = maxProcesses
        c.vmaPages = vmaPages
        c.vmasPerProcess = vmasPerProcess
        c.sync = sync
        c.checks = checks
        c.injection = injection
        c.perturb = perturb
        return c
    }
}

/// Runs `body` with a fresh machine and CPU on the calling thread, registered
/// with RCU for the duration. Afterwards tears the machine down and checks
/// that teardown found no leak, and (with `expectNoViolations`) that nothing
/// at all was recorded during the test.
func withMachine(_ config: MachineConfig, seed: UInt64 = 1, expectNoViolations: Bool = true,
                 file: StaticString = #filePath, line: UInt = #line,
                 _ body: (Machine, CPU) throws -> Void) throws {
    RCU.registerThread()
    defer { RCU.unregisterThread() }
    let machine = try Machine(config: config)
    let cpu = machine.makeCPU(id: 0, seed: seed)
    defer { machine.releaseCPU(cpu) }
    var failure: Error?
    do { try body(machine, cpu) } catch { failure = error }
    let leaks = machine.teardown(cpu: cpu)
    XCTAssertEqual(leaks.map(\.description), [], "teardown found leftovers", file: file, line: line)
    XCTAssertEqual(machine.processCount, 0, file: file, line: line)
    XCTAssertEqual(machine.framesInUse, 0, file: file, line: line)
    XCTAssertEqual(machine.swapSlotsInUse, 0, file: file, line: line)
    XCTAssertEqual(machine.contextsInUse, 0, file: file, line: line)
    XCTAssertEqual(machine.vmasInUse, 0, file: file, line: line)
    XCTAssertEqual(machine.swapCachePages, 0, file: file, line: line)
    XCTAssertEqual(machine.mmsInUse, 0, file: file, line: line)
    if expectNoViolations {
        XCTAssertEqual(machine.violations.map(\.description), [], "violations recorded", file: file, line: line)
    }
    if let failure { throw failure }
}

/// Asserts that a full audit finds nothing.
func assertAuditClean(_ machine: Machine, _ message: String = "",
                      file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(machine.audit().map(\.description), [], message, file: file, line: line)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

extension Kernel {
    /// The PTE of (mm, vpn), `.none` when no leaf exists. Callers that race
    /// other threads must hold the mm's ptl.
    func pte(_ mm: UInt32, _ vpn: UInt64) -> PTE {
        let i = pteIndex(mm, vpn)
        return i < 0 ? .none : pte(at: i)
    }

    /// The checker's expected content word beside (mm, vpn).
    func expectedWord(_ mm: UInt32, _ vpn: UInt64) -> UInt64? {
        let i = pteIndex(mm, vpn)
        return i < 0 ? nil : expected[i]
    }

    /// First virtual page of VMA table entry `k` of `mm`.
    func base(_ mm: UInt32, vma k: Int) -> UInt64 { vmaStart(vmaHandle(mm, k)) }

    /// Every (slot, mm) in the process table.
    func table() -> [(slot: Int, mm: UInt32)] {
        (0..<config.maxProcesses).compactMap { s in
            let mm = processes.entry(s).pointee.load(ordering: .acquiring)
            return mm == 0 ? nil : (s, mm)
        }
    }

    func slot(of mm: UInt32) -> Int? { table().first { $0.mm == mm }?.slot }

    /// Starts a process and returns its mm.
    func startProcess(_ cpu: CPU) throws -> UInt32 {
        let mm = newProcessMM(cpu)
        guard mm != 0 else { throw TestFailure("newProcessMM failed") }
        guard installProcess(mm, near: 0) >= 0 else { throw TestFailure("process table full") }
        return mm
    }

    /// Forks `parent` and returns the child's mm (the process table holds it).
    func forkChild(_ parent: UInt32, _ cpu: CPU) throws -> UInt32 {
        let r = fork(parent, cpu)
        guard r.result == .ok else { throw TestFailure("fork returned \(r.result)") }
        mmPut(r.child, cpu)  // fork's pin for the caller
        return r.child
    }

    func content(_ f: UInt32) -> UInt64 { frames[Int(f)].content.load(ordering: .relaxed) }
    func mapcount(_ f: UInt32) -> Int32 { frames[Int(f)].mapcount.load(ordering: .relaxed) }
    func refcount(_ f: UInt32) -> Int32 { frames[Int(f)].refcount.load(ordering: .relaxed) }
    func index(_ f: UInt32) -> UInt64 { frames[Int(f)].index.load(ordering: .relaxed) }
    func mapping(_ f: UInt32) -> UInt32 { frames[Int(f)].mapping.load(ordering: .relaxed) }
    func isFree(_ f: UInt32) -> Bool { frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.free != 0 }
    func isAnon(_ f: UInt32) -> Bool { frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.anon != 0 }
    func inSwapCache(_ f: UInt32) -> Bool { frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.swapCache != 0 }
    func swapCount(_ s: UInt32) -> Int32 { swap.count[Int(s)].load(ordering: .relaxed) }
    func swapContent(_ s: UInt32) -> UInt64 { swap.content[Int(s)].load(ordering: .relaxed) }

    /// The frame a present PTE maps, or nil.
    func frame(_ mm: UInt32, _ vpn: UInt64) -> UInt32? {
        let p = pte(mm, vpn)
        return p.isPresent ? p.target : nil
    }

    /// What a process would read at (mm, vpn) right now: the frame's or the
    /// swap slot's content, nil when nothing is mapped.
    func visibleContent(_ mm: UInt32, _ vpn: UInt64) -> UInt64? {
        let p = pte(mm, vpn)
        if p.isPresent { return content(p.target) }
        if p.isSwap { return swapContent(p.target) }
        return nil
    }

    /// Every vpn of `mm`'s VMAs whose PTE is not none.
    func mappedVPNs(_ mm: UInt32) -> [UInt64] {
        var out: [UInt64] = []
        for k in 0..<MachineConfig.maxVMAs where vmaHandle(mm, k) != 0 {
            let v = vmaHandle(mm, k)
            for vpn in vmaStart(v)..<(vmaStart(v) + UInt64(vmaPages(v))) where !pte(mm, vpn).isNone { out.append(vpn) }
        }
        return out
    }

    /// The start of the lowest VMA-sized slot no VMA of `mm` lies in.
    func unusedStart(_ mm: UInt32) -> UInt64 {
        let size = UInt64(config.vmaPages)
        var start: UInt64 = 0
        while (0..<MachineConfig.maxVMAs).contains(where: { vmaHandle(mm, $0) != 0 && vmaStart(vmaHandle(mm, $0)) / size == start / size }) {
            start += size
        }
        return start
    }

    /// Migrates frame `f` the way `migrate` does: allocate the target,
    /// isolate `f` (the scanners' own pin, trylock and re-check), then
    /// `migrateLocked`. Returns the target, nil when `f` was no longer a
    /// mapped anonymous page, its lock was taken, or no frame was free.
    func migrate(frame f: UInt32, _ cpu: CPU) -> UInt32? {
        let target = allocFrame(cpu)
        guard target != 0 else { return nil }
        guard isolate(f, cpu) else { put(target, cpu); return nil }
        migrateLocked(f, to: target, cpu)
        return target
    }

    /// mremap of VMA table entry `k` of `mm` to `start`, taking the mmap
    /// lock as mremap does. The new VMA takes a free table entry: find it
    /// by address afterwards (`findVMA`).
    func mremap(_ mm: UInt32, vma k: Int, to start: UInt64, _ cpu: CPU) -> Bool {
        mmapWrite(mm)
        defer { mmapUnlock(mm) }
        return mremapLocked(mm, vma: k, to: start, cpu)
    }

    /// Two passes of reclaim over all memory that free what they swap out
    /// (the first ages, the second swaps out): every unreferenced mapped
    /// page ends in swap, nothing in the swap cache. Returns frames freed.
    @discardableResult
    func swapOutAll(_ cpu: CPU) -> Int {
        reclaim(cpu, scan: config.frames, target: Int.max, keepCached: false)
            + reclaim(cpu, scan: config.frames, target: Int.max, keepCached: false)
    }
}

extension Kernel where R == AnonGroupRmap {
    /// The group's member list in walk order.
    func members(_ g: UInt32) -> [UInt32] {
        var out: [UInt32] = []
        var mm = rmap.head[Int(g)].pointee.load(ordering: .acquiring)
        while mm != 0 && out.count <= config.mmSlots {
            out.append(mm)
            mm = rmap.links[Int(mm)].pointee.next.load(ordering: .acquiring)
        }
        return out
    }

    func group(of mm: UInt32) -> UInt32 { rmap.links[Int(mm)].pointee.group }
    func groupState(_ g: UInt32) -> UInt32 { rmap.state[Int(g)].pointee.load(ordering: .acquiring) }
    func groupRefs(_ g: UInt32) -> Int32 { rmap.refcount[Int(g)].pointee.load(ordering: .relaxed) }
}

extension Kernel where R == AnonVMARmap {
    /// The VMAs on anon_vma `av`'s list, in walk order.
    func listed(_ av: UInt32) -> [UInt32] {
        var out: [UInt32] = []
        var v = rmap.heads[Int(av)].pointee.first.load(ordering: .acquiring)
        while v != 0 && out.count <= config.vmaCount {
            out.append(v)
            v = rmap.links[Int(v)].next.load(ordering: .acquiring)
        }
        return out
    }
}

extension Array where Element == Violation {
    var kinds: Set<ViolationKind> { Set(map(\.kind)) }
}

extension Machine {
    /// A plain driver for the model's own tests: one operation of kind `op`
    /// on a random process (RunEngine's Workload adds the population and
    /// family bounds). False when there was nothing to act on.
    func perform(_ op: OpKind, cpu: CPU) -> Bool {
        switch op {
        case .reclaim: return reclaim(cpu: cpu, scan: 64, target: 16) > 0
        case .migrate: return migrate(cpu: cpu)
        case .truncate: return truncate(cpu: cpu)
        default: break
        }
        guard let p = pinProcess(near: cpu.pointee.random(below: config.maxProcesses), cpu: cpu) else {
            return spawnProcess(cpu: cpu)
        }
        defer { unpin(p, cpu: cpu) }
        switch op {
        case .fault: return fault(p, write: cpu.pointee.random() & 1 == 0, cpu: cpu)
        case .fork:
            guard processCount < config.maxProcesses, let child = fork(p, cpu: cpu) else { return false }
            unpin(child, cpu: cpu)
            return true
        case .exit: return processCount > max(2, config.maxProcesses / 4) && exit(p, cpu: cpu)
        case .exec: return exec(p, cpu: cpu)
        case .mremap: return mremap(p, cpu: cpu)
        case .munmap: return munmap(p, cpu: cpu)
        case .split: return split(p, cpu: cpu)
        case .mmapFile: return mmapFile(p, cpu: cpu)
        case .mmapShmem: return mmapShmem(p, cpu: cpu)
        case .reclaim, .migrate, .truncate: return false
        }
    }

    func spawn(cpu: CPU) -> Bool { spawnProcess(cpu: cpu) }
}
