import ConcurrentRmap
import StressSupport

/// The named workloads of `stress run` (`--workload`): the shapes the rmap
/// designs were argued over, run by every worker at once with reclaim and
/// migration walking the pages and every check on.
///
/// `mix` is the default random mix. `fork-heavy` is a mix too (fork and
/// exit at a quarter each). The others are scripts: each worker owns the
/// processes it starts (no other worker forks or exits them; reclaim and
/// migration still walk their pages), and every process operation the mix
/// draws runs the next step of its worker's script instead, so the mix's
/// weights set how often reclaim and migration interleave with the script.
public enum WorkloadShape: String, CaseIterable, Sendable, Codable {
    case mix
    /// One parent forks N children; each writes most (3/4) of the parent's
    /// first VMA; then all exit and the family starts again.
    case aim7
    /// Each process forks the next, which writes a page, and exits.
    case forkChain = "fork-chain"
    /// One parent with all its VMAs written forks long-lived children that
    /// write one page per VMA; then they keep writing, and now and then one
    /// exits and is started again (an app killed and relaunched).
    case zygote
    case forkHeavy = "fork-heavy"

    public static let forkHeavyMix = "fault=40,fork=25,exit=25,exec=2,reclaim=5,migrate=3"

    public var isScript: Bool { self == .aim7 || self == .forkChain || self == .zygote }

    /// Children per worker of the scripts that keep children: the worker's
    /// share of the process table less its parent, at most 1,000 (AIM7's).
    public static func children(processes: Int, workers: Int) -> Int {
        max(1, min(1000, processes / max(1, workers) - 1))
    }
}

/// One worker's script state, on a cache line of its own: only its worker
/// reads or writes it.
struct ShapeState {
    /// Table slot of the worker's parent (chain: its current process), -1 if none.
    var root = -1
    var kids = 0
    var step = 0
    var generation = 0
}

/// The per-worker scripts of `WorkloadShape`.
final class ShapeDriver: @unchecked Sendable {
    let shape: WorkloadShape
    let workers: Int
    let maxKids: Int
    /// Per worker: its state, and the table slots of its children.
    let states: UnsafeMutablePointer<ShapeState>
    let kidSlots: UnsafeMutablePointer<Int32>

    init(shape: WorkloadShape, workers: Int, processes: Int) {
        self.shape = shape
        self.workers = workers
        maxKids = WorkloadShape.children(processes: processes, workers: workers)
        // Padded to a cache line each (8 words), so workers share no line.
        states = CacheLine.allocate(ShapeState.self, count: workers * 2)
        states.initialize(repeating: ShapeState(), count: workers * 2)
        kidSlots = CacheLine.allocate(Int32.self, count: workers * maxKids)
        kidSlots.initialize(repeating: -1, count: workers * maxKids)
    }

    deinit {
        states.deinitialize(count: workers * 2); states.deallocate()
        kidSlots.deinitialize(count: workers * maxKids); kidSlots.deallocate()
    }

    /// The next step of the calling worker's script. False when it could
    /// not act (table or memory full): an idle attempt.
    func step(_ m: Machine, _ cpu: CPU) -> Bool {
        let id = cpu.pointee.id
        let st = states + id * 2
        let kids = kidSlots + id * maxKids
        // The parent (or the chain's current process) is started first.
        guard st.pointee.root >= 0 else {
            guard let p = m.spawnPinned(cpu: cpu) else { return false }
            defer { m.unpin(p, cpu: cpu) }
            st.pointee = ShapeState(root: p.slot)
            if shape == .zygote { while m.mapVMA(p, pages: m.vmaPages(m.vmaTable(p).first { $0 != 0 } ?? 0), cpu: cpu) != 0 {} }
            writeAll(m, p, cpu)
            return true
        }
        guard let parent = m.pinProcess(atSlot: st.pointee.root, cpu: cpu) else {
            // Only this worker exits its processes; an empty slot is a bug of
            // the model or of this script. Start over rather than stop.
            st.pointee = ShapeState()
            return false
        }
        defer { m.unpin(parent, cpu: cpu) }
        switch shape {
        case .aim7:
            if st.pointee.kids < maxKids {
                guard let c = m.fork(parent, cpu: cpu) else { return false }
                defer { m.unpin(c, cpu: cpu) }
                kids[st.pointee.kids] = Int32(c.slot)
                st.pointee.kids += 1
                writeFirstVMA(m, c, fraction: 3, of: 4, cpu)
                return true
            }
            // The family is complete: the children exit one a step, then the
            // parent, and the next family starts.
            st.pointee.kids -= 1
            let slot = Int(kids[st.pointee.kids])
            if let c = m.pinProcess(atSlot: slot, cpu: cpu) { _ = m.exit(c, cpu: cpu); m.unpin(c, cpu: cpu) }
            if st.pointee.kids == 0 {
                _ = m.exit(parent, cpu: cpu)
                st.pointee = ShapeState()
            }
            return true
        case .forkChain:
            guard let c = m.fork(parent, cpu: cpu) else { return false }
            defer { m.unpin(c, cpu: cpu) }
            st.pointee.generation += 1
            if let v = m.vmaTable(c).first(where: { $0 != 0 }) {
                _ = m.touch(c, vma: v, page: st.pointee.generation % max(1, m.vmaPages(v)), write: true, cpu: cpu)
            }
            _ = m.exit(parent, cpu: cpu)
            st.pointee.root = c.slot
            return true
        case .zygote:
            if st.pointee.kids < maxKids {
                guard let c = m.fork(parent, cpu: cpu) else { return false }
                defer { m.unpin(c, cpu: cpu) }
                kids[st.pointee.kids] = Int32(c.slot)
                st.pointee.kids += 1
                for v in m.vmaTable(c) where v != 0 { _ = m.touch(c, vma: v, page: st.pointee.kids % max(1, m.vmaPages(v)), write: true, cpu: cpu) }
                return true
            }
            // Steady state: an app runs (a write somewhere); one step in 64
            // an app is killed and relaunched (exits; the next step forks).
            let k = cpu.pointee.random(below: maxKids)
            guard let c = m.pinProcess(atSlot: Int(kids[k]), cpu: cpu) else { return false }
            defer { m.unpin(c, cpu: cpu) }
            if cpu.pointee.random() % 64 == 0 {
                _ = m.exit(c, cpu: cpu)
                st.pointee.kids -= 1
                kids[k] = kids[st.pointee.kids]
                return true
            }
            return m.fault(c, write: true, cpu: cpu)
        case .mix, .forkHeavy:
            return false
        }
    }

    private func writeAll(_ m: Machine, _ p: PinnedProcess, _ cpu: CPU) {
        for v in m.vmaTable(p) where v != 0 {
            for page in 0..<m.vmaPages(v) { _ = m.touch(p, vma: v, page: page, write: true, cpu: cpu) }
        }
    }

    private func writeFirstVMA(_ m: Machine, _ p: PinnedProcess, fraction: Int, of whole: Int, _ cpu: CPU) {
        guard let v = m.vmaTable(p).first(where: { $0 != 0 }) else { return }
        for page in 0..<(m.vmaPages(v) * fraction / whole) { _ = m.touch(p, vma: v, page: page, write: true, cpu: cpu) }
    }
}
