import ConcurrentRmap
import StressSupport

/// Runs the steps of the mms a worker holds on the model. Shared by every
/// worker; an mm's state is touched only by the worker holding it.
final class StepRunner: @unchecked Sendable {
    let machine: Machine
    let plan: ReplayPlan
    let steps: UnsafeMutableBufferPointer<Step>
    let mms: UnsafeMutablePointer<MMState>
    let queue: ReadyQueue
    let faultPercent: Int
    let cowPercent: Int
    let scale: UInt64
    let vmaPages: Int
    let evictWhenFull: Bool
    let migrateEvery: Int
    let settings: ReplaySettings

    init(machine: Machine, plan: ReplayPlan, settings s: ReplaySettings, queue: ReadyQueue) {
        self.machine = machine
        self.plan = plan
        self.queue = queue
        steps = .allocate(capacity: plan.steps.count)
        _ = steps.initialize(from: plan.steps)
        mms = .allocate(capacity: plan.mmCount + 1)
        mms.initialize(repeating: MMState(), count: plan.mmCount + 1)
        for m in 0...plan.mmCount { mms[m].cursor = plan.head[m] }
        faultPercent = s.faultPercent
        cowPercent = s.cowPercent
        scale = UInt64(s.scale)
        vmaPages = s.vmaPages
        evictWhenFull = s.evictWhenFull
        migrateEvery = s.migrateEvery
        settings = s
    }

    deinit {
        steps.deallocate()
        mms.deinitialize(count: plan.mmCount + 1)
        mms.deallocate()
    }

    /// Pushes the roots (the trace's `start` mms).
    func seed() {
        for m in plan.roots { queue.push(mm: m, step: mms[Int(m)].cursor) }
    }

    /// Processes still pinned (mms alive at the trace's end).
    func pinnedProcesses() -> [PinnedProcess] {
        (0...plan.mmCount).compactMap { mms[$0].process }
    }

    /// Runs the steps of `mm` from its cursor while they come before `limit`
    /// (the next ready mm's step: the trace's order where it can be kept), at
    /// least one and at most `batch`; returns the mm's next step.
    func run(mm: UInt32, limit: UInt32, batch: Int, cpu: CPU, counters w: WorkerCounters, stop: () -> Bool) -> UInt32 {
        let state = mms + Int(mm)
        var i = state.pointee.cursor
        var n = 0
        while i != Step.end {
            perform(steps[Int(i)], i, state, cpu, w)
            w.add(.steps)
            if migrateEvery > 0, let p = state.pointee.process {
                state.pointee.sinceMigration += 1
                if state.pointee.sinceMigration >= migrateEvery {
                    state.pointee.sinceMigration = 0
                    cpu.pointee.note(.migrate, mm: p.mm, arg: i)
                    if machine.migrate(in: p, cpu: cpu) { w.add(.workerMigrations) }
                }
            }
            cpu.pointee.finished()
            RCU.quiescentState()
            n += 1
            let released = steps[Int(i)].kind.releasesAnMM
            i = steps[Int(i)].next
            // A released mm's first step may come before this one's next:
            // back to the queue, which orders them.
            if n >= batch || i >= limit || released || stop() { break }
        }
        state.pointee.cursor = i
        return i
    }

    // MARK: Steps

    private func perform(_ s: Step, _ index: UInt32, _ st: UnsafeMutablePointer<MMState>, _ cpu: CPU, _ w: WorkerCounters) {
        if s.flags & Step.synthetic == 0 { w.add(.events) }
        // The ring of recent operations (a failure's report): the step's index as argument.
        cpu.pointee.note(s.kind.operation, mm: st.pointee.process?.mm ?? 0, arg: index)
        switch s.kind {
        case .spawn:
            // start, or exec by a vfork child: a new process, a new group.
            guard let p = machine.spawnPinned(cpu: cpu) else {
                st.pointee.failed = true
                w.add(.spawnFailed)
                return
            }
            w.add(.spawned)
            if s.flags & Step.synthetic != 0 { w.add(.spawnedByVforkExec) }
            st.pointee.process = p
            addStack(st, p, cpu, w)
            return
        case .release:
            queue.push(mm: s.other, step: mms[Int(s.other)].cursor)
            return
        case .tasks:
            return
        default:
            break
        }
        guard let p = st.pointee.process else {
            // A child of an mm that was not modelled inherits that; any step
            // of an mm without a process is skipped.
            w.add(.stepsSkipped)
            if s.kind == .fork || s.kind == .execOwn {
                mms[Int(s.other)].failed = true
                queue.push(mm: s.other, step: mms[Int(s.other)].cursor)
            }
            return
        }
        switch s.kind {
        case .fork: fork(s, st, p, cpu, w)
        case .cowAfterFork: cowAfterFork(st, p, cpu, w)
        case .execOwn: execOwn(s, st, p, cpu, w)
        case .imageStart: addStack(st, p, cpu, w)
        case .exit:
            let t0 = monotonicNanos()
            let exited = machine.exit(p, cpu: cpu)
            machine.unpin(p, cpu: cpu)
            w.add(.exitNs, Int(monotonicNanos() &- t0))
            w.add(exited ? .exits : .exitFailed)
            st.pointee.process = nil
            st.pointee.regions.removeAll()
        case .mmap: mmap(s, index, st, p, cpu, w)
        case .munmap:
            if !unmapRange(s.a, pageEnd(s.a, s.b), st, p, cpu, w) { w.add(.munmapNotModelled) }
        case .mremap: mremap(s, index, st, p, cpu, w)
        case .brk: brk(s, index, st, p, cpu, w)
        case .mprotect: mprotect(s, st, p, cpu, w)
        case .madvise: madvise(s, st, p, cpu, w)
        case .spawn, .release, .tasks: break
        }
    }

    @discardableResult
    @inline(__always) private func touch(_ p: PinnedProcess, _ r: Region, _ page: Int, write: Bool, _ c: ReplayCounter,
                                         _ cpu: CPU, _ w: WorkerCounters) -> Bool {
        if machine.touch(p, vma: r.vma, page: page, write: write, cpu: cpu) { w.add(c); return true }
        w.add(.touchFailed)
        return false
    }

    /// After a touch of region `k` that made an anonymous page (any of
    /// anonymous memory, a write to a private file mapping): its first one
    /// is counted by origin, where Linux's anon_vma_prepare runs.
    @inline(__always) private func madeAnon(_ st: UnsafeMutablePointer<MMState>, _ k: Int, _ w: WorkerCounters) {
        let r = st.pointee.regions[k]
        guard !r.hasAnon, r.backing != .sharedFile else { return }
        st.pointee.regions[k].hasAnon = true
        w.add(r.backing == .privateFile ? .anonVmaFileWrite : .anonVmaFirstTouch)
    }

    /// The stack VMA a new image starts with, faulted like a new mapping.
    private func addStack(_ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        guard let v = machine.vmaTable(p).first(where: { $0 != 0 }) else { return }
        let pages = machine.vmaPages(v)
        // Above every trace address (they are below 2^57): never matched.
        let r = Region(start: 1 << 60, end: 1 << 60, base: 1 << 60, unit: 1, vma: v, pages: Int32(pages),
                       faultPercent: UInt8(faultPercent), kind: .stack)
        st.pointee.regions.append(r)
        for i in 0..<pages where Region.selected(i, faultPercent) {
            if touch(p, r, i, write: true, .stackFaults, cpu, w) { madeAnon(st, st.pointee.regions.count - 1, w) }
        }
    }

    private func fork(_ s: Step, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        let child = mms + Int(s.other)
        let t0 = monotonicNanos()
        let c = machine.fork(p, cpu: cpu)
        w.add(.forkNs, Int(monotonicNanos() &- t0))
        guard let c else {
            w.add(.forkFailed)
            child.pointee.failed = true
            queue.push(mm: s.other, step: child.pointee.cursor)
            return
        }
        w.add(.forks)
        let size = machine.familySize(c)
        w.groupSizeAtFork[min(size, WorkerCounters.maxGroup)] += 1
        // fork keeps table entries: follow each modelled VMA into the child.
        let parentTable = machine.vmaTable(p), childTable = machine.vmaTable(c)
        var regions: [Region] = []
        regions.reserveCapacity(st.pointee.regions.count)
        for var r in st.pointee.regions {
            guard let t = parentTable.firstIndex(of: r.vma), childTable[t] != 0 else { continue }
            r.vma = childTable[t]
            if r.hasAnon { w.add(.anonVmaFork) }
            regions.append(r)
        }
        child.pointee.process = c
        child.pointee.regions = regions
        queue.push(mm: s.other, step: child.pointee.cursor)
    }

    /// The child writes `cowPercent` of the pages it inherited (of those its
    /// parent faulted: the same even selection), breaking COW.
    private func cowAfterFork(_ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        for (k, r) in st.pointee.regions.enumerated() {
            let n = r.kind == .heap ? Int(r.top) : Int(r.pages)
            let fp = r.kind == .heap ? 100 : Int(r.faultPercent)
            var j = 0
            for i in 0..<n where Region.selected(i, fp) {
                if Region.selected(j, cowPercent) && touch(p, r, i, write: true, .cowWrites, cpu, w) { madeAnon(st, k, w) }
                j += 1
            }
        }
    }

    private func execOwn(_ s: Step, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        let next = mms + Int(s.other)
        st.pointee.regions.removeAll()
        st.pointee.process = nil
        if machine.exec(p, cpu: cpu), let np = machine.pinProcess(atSlot: p.slot, cpu: cpu) {
            machine.unpin(p, cpu: cpu)
            w.add(.execs)
            next.pointee.process = np
        } else {
            // Out of mm slots: the process ends here and the new image is not modelled.
            w.add(.execFailed)
            _ = machine.exit(p, cpu: cpu)
            machine.unpin(p, cpu: cpu)
            next.pointee.failed = true
        }
        queue.push(mm: s.other, step: next.pointee.cursor)
    }

    private func mmap(_ s: Step, _ index: UInt32, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        let end = pageEnd(s.a, s.b)
        // A mapping replaces whatever was there (MAP_FIXED).
        _ = unmapRange(s.a, end, st, p, cpu, w)
        if s.flags & Step.file != 0 { mmapFile(s, index, st, p, cpu, w); return }
        if end == s.a { w.add(.mmapEmpty); return }
        if s.flags & Step.shared != 0 { mmapShmem(s, index, st, p, cpu, w); return }
        let tracePages = (end - s.a) / 4096
        let pages = Int(min(UInt64(vmaPages), max(1, (tracePages + scale - 1) / scale)))
        var v = machine.mapVMA(p, pages: pages, cpu: cpu)
        if v == 0 && evictWhenFull && evictLeastRecentlyUsed(st, p, cpu) {
            w.add(.mmapEvicted)
            v = machine.mapVMA(p, pages: pages, cpu: cpu)
        }
        guard v != 0 else { w.add(.mmapTableFull); return }
        w.add(.mmapModelled)
        let writable = s.flags & Step.writable != 0
        let unit = (tracePages + UInt64(pages) - 1) / UInt64(pages)
        let r = Region(start: s.a, end: end, base: s.a, unit: max(1, unit), vma: v, pages: Int32(pages),
                       faultPercent: writable ? UInt8(faultPercent) : 0, kind: .mapping, lastUse: index)
        st.pointee.regions.append(r)
        if writable {
            for i in 0..<pages where Region.selected(i, faultPercent) {
                if touch(p, r, i, write: true, .mapFaults, cpu, w) { madeAnon(st, st.pointee.regions.count - 1, w) }
            }
        }
    }

    /// A shared anonymous mapping (MAP_SHARED|MAP_ANONYMOUS): a shmem inode
    /// of its size, as the kernel's internal tmpfs file; a fork's child
    /// maps the same inode (its VMA joins the same i_mmap). A writable one
    /// has `faultPercent` of its pages written (shared, never copied).
    private func mmapShmem(_ s: Step, _ index: UInt32, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess,
                           _ cpu: CPU, _ w: WorkerCounters) {
        let end = pageEnd(s.a, s.b)
        let tracePages = (end - s.a) / 4096
        let pages = Int(min(UInt64(vmaPages), max(1, (tracePages + scale - 1) / scale)))
        var v = machine.mapShmem(p, pages: pages, cpu: cpu)
        if v == 0 && evictWhenFull && evictLeastRecentlyUsed(st, p, cpu) {
            w.add(.mmapEvicted)
            v = machine.mapShmem(p, pages: pages, cpu: cpu)
        }
        guard v != 0 else { w.add(.mmapSharedFailed); return }
        w.add(.mmapShared)
        let n = machine.vmaPages(v)
        let writable = s.flags & Step.writable != 0
        let unit = (tracePages + UInt64(n) - 1) / UInt64(n)
        let r = Region(start: s.a, end: end, base: s.a, unit: max(1, unit), vma: v, pages: Int32(n),
                       faultPercent: writable ? UInt8(faultPercent) : 0, kind: .mapping, lastUse: index,
                       backing: .sharedFile)
        st.pointee.regions.append(r)
        guard writable else { return }
        for i in 0..<n where Region.selected(i, faultPercent) { _ = touch(p, r, i, write: true, .shmemWrites, cpu, w) }
    }

    /// A file mapping, shared or private, on its inode (`ReplaySettings.inode`):
    /// `scale` file pages per model page, offset likewise. A read-only one
    /// has `faultPercent` of its pages read (the page cache fills and is
    /// shared by every process mapping the file); a writable one has them
    /// written: a private one gets anonymous copies of file pages (births
    /// counted as `file_cow`), a shared one dirties the cache.
    private func mmapFile(_ s: Step, _ index: UInt32, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess,
                          _ cpu: CPU, _ w: WorkerCounters) {
        let end = pageEnd(s.a, s.b)
        let ino = settings.inode(file: s.c, unknown: s.other)
        guard ino != 0 else { w.add(.mmapFile); return }
        if end == s.a { w.add(.mmapEmpty); return }
        let tracePages = (end - s.a) / 4096
        let pages = Int(min(UInt64(vmaPages), max(1, (tracePages + scale - 1) / scale)))
        let pgoff = s.d / 4096 / scale
        let shared = s.flags & Step.shared != 0
        var v = machine.mapFile(p, inode: ino, pgoff: pgoff, pages: pages, shared: shared, cpu: cpu)
        if v == 0 && evictWhenFull && evictLeastRecentlyUsed(st, p, cpu) {
            w.add(.mmapEvicted)
            v = machine.mapFile(p, inode: ino, pgoff: pgoff, pages: pages, shared: shared, cpu: cpu)
        }
        guard v != 0 else { w.add(.mmapTableFull); return }
        w.add(s.c != 0 ? .mmapFileNamed : .mmapFileSpare)
        let n = machine.vmaPages(v)
        let writable = s.flags & Step.writable != 0
        let unit = (tracePages + UInt64(n) - 1) / UInt64(n)
        let r = Region(start: s.a, end: end, base: s.a, unit: max(1, unit), vma: v, pages: Int32(n),
                       faultPercent: writable ? UInt8(faultPercent) : 0, kind: .mapping, lastUse: index,
                       backing: shared ? .sharedFile : .privateFile)
        st.pointee.regions.append(r)
        for i in 0..<n where Region.selected(i, faultPercent) {
            if touch(p, r, i, write: writable, writable ? .fileWrites : .fileReads, cpu, w) && writable {
                madeAnon(st, st.pointee.regions.count - 1, w)
            }
        }
    }

    /// Unmaps the modelled mapping (not the heap or the stack) used least
    /// recently; false when there is none.
    private func evictLeastRecentlyUsed(_ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU) -> Bool {
        var victim = -1
        for (k, r) in st.pointee.regions.enumerated() where r.kind == .mapping {
            if victim < 0 || r.lastUse < st.pointee.regions[victim].lastUse { victim = k }
        }
        guard victim >= 0 else { return false }
        _ = machine.unmapVMA(p, vma: st.pointee.regions[victim].vma, cpu: cpu)
        st.pointee.regions.remove(at: victim)
        return true
    }

    /// munmap of [a, end) over the modelled regions: a region covered whole
    /// is unmapped, a partly covered one loses the covered pages (and
    /// shrinks when the cut is at one end). False when none overlapped.
    @discardableResult
    private func unmapRange(_ a: UInt64, _ end: UInt64, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess,
                            _ cpu: CPU, _ w: WorkerCounters) -> Bool {
        var hit = false
        var k = st.pointee.regions.count - 1
        while k >= 0 {
            let r = st.pointee.regions[k]
            if r.start < end && a < r.end {
                hit = true
                if a <= r.start && r.end <= end {
                    _ = machine.unmapVMA(p, vma: r.vma, cpu: cpu)
                    st.pointee.regions.remove(at: k)
                    w.add(.munmapWhole)
                } else {
                    let (lo, hi) = r.modelPages(a, end)
                    if hi > lo { _ = machine.dropPages(p, vma: r.vma, first: lo, count: hi - lo, cpu: cpu) }
                    if a <= r.start { st.pointee.regions[k].start = end } else if end >= r.end { st.pointee.regions[k].end = a }
                    if r.kind == .heap && hi >= Int(r.top) { st.pointee.regions[k].top = Int32(min(lo, Int(r.top))) }
                    w.add(.munmapPartial)
                }
            }
            k -= 1
        }
        return hit
    }

    private func regionIndex(containing a: UInt64, _ st: UnsafeMutablePointer<MMState>) -> Int? {
        st.pointee.regions.firstIndex { $0.start <= a && a < $0.end }
    }

    private func mremap(_ s: Step, _ index: UInt32, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        let old = s.a, oldEnd = pageEnd(s.a, s.b), new = s.c, newEnd = pageEnd(s.c, s.d)
        guard regionIndex(containing: old, st) != nil else { w.add(.mremapNotModelled); return }
        if new == old {
            // In place: a shrink unmaps the tail, a growth is counted.
            w.add(.mremapResized)
            if newEnd < oldEnd {
                unmapRange(newEnd, oldEnd, st, p, cpu, w)
            } else if let k = regionIndex(containing: old, st), st.pointee.regions[k].end == oldEnd {
                st.pointee.regions[k].end = newEnd
                st.pointee.regions[k].lastUse = index
            }
            return
        }
        // The destination is replaced (MREMAP_FIXED), then the VMA moves.
        unmapRange(new, newEnd, st, p, cpu, w)
        guard let k = regionIndex(containing: old, st) else { w.add(.mremapNotModelled); return }
        var r = st.pointee.regions[k]
        if s.flags & Step.dontUnmap != 0 { w.add(.mremapDontUnmap) }
        if r.start != old || r.end != oldEnd { w.add(.mremapPartialMoves) }
        // mremap needs a free table entry for the moved VMA before the old one goes.
        st.pointee.regions[k].lastUse = index
        if evictWhenFull && st.pointee.regions.count >= MachineConfig.maxVMAs && evictLeastRecentlyUsed(st, p, cpu) {
            w.add(.mmapEvicted)
        }
        guard let k2 = regionIndex(containing: old, st) else { w.add(.mremapNotModelled); return }
        r = st.pointee.regions[k2]
        let v = machine.moveVMA(p, vma: r.vma, cpu: cpu)
        guard v != 0 else { w.add(.mremapMoveFailed); return }
        w.add(.mremapMoves)
        r.vma = v
        r.lastUse = index
        r.base = new &- (old &- r.base)
        r.start = new
        r.end = newEnd
        st.pointee.regions[k2] = r
        // The program uses what it moved: read back the pages it had faulted.
        let n = r.kind == .heap ? Int(r.top) : Int(r.pages)
        let fp = r.kind == .heap ? 100 : Int(r.faultPercent)
        for i in 0..<n where Region.selected(i, fp) { touch(p, r, i, write: false, .moveReads, cpu, w) }
    }

    /// The heap: at the first growth a model VMA of `vmaPages` pages, one per
    /// `scale` trace pages from the initial break; each growth writes the
    /// model pages below the new break, a shrink drops those above it.
    private func brk(_ s: Step, _ index: UInt32, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        let from = s.a, to = s.b
        var k = st.pointee.regions.firstIndex { $0.kind == .heap }
        if k == nil {
            guard to > from else { w.add(.heapNotModelled); return }
            let base = from & ~4095
            var v = machine.mapVMA(p, pages: vmaPages, cpu: cpu)
            if v == 0 && evictWhenFull && evictLeastRecentlyUsed(st, p, cpu) {
                w.add(.mmapEvicted)
                v = machine.mapVMA(p, pages: vmaPages, cpu: cpu)
            }
            guard v != 0 else { w.add(.heapNotModelled); return }
            w.add(.heapMapped)
            st.pointee.regions.append(Region(start: base, end: base, base: base, unit: scale, vma: v,
                                             pages: Int32(machine.vmaPages(v)), faultPercent: 100, kind: .heap))
            k = st.pointee.regions.count - 1
        }
        let r = st.pointee.regions[k!]
        let end = max(r.start, (to + 4095) & ~4095)
        let top = to > r.base ? Int(min(UInt64(r.pages), ((to - r.base + 4095) / 4096 + r.unit - 1) / r.unit)) : 0
        st.pointee.regions[k!].end = end
        st.pointee.regions[k!].top = Int32(top)
        if top > Int(r.top) {
            w.add(.heapGrowths)
            for i in Int(r.top)..<top where touch(p, r, i, write: true, .heapFaults, cpu, w) { madeAnon(st, k!, w) }
        } else if top < Int(r.top) {
            w.add(.heapShrinks)
            _ = machine.dropPages(p, vma: r.vma, first: top, count: Int(r.top) - top, cpu: cpu)
        }
    }

    /// Counted; a range made writable that was mapped without write gets
    /// its pages faulted then, as a program writes what it just enabled.
    private func mprotect(_ s: Step, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        w.add(.mprotects)
        guard s.flags & Step.writable != 0 else { return }
        let end = pageEnd(s.a, s.b)
        for k in st.pointee.regions.indices {
            let r = st.pointee.regions[k]
            guard r.kind == .mapping, r.faultPercent == 0, r.start < end && s.a < r.end else { continue }
            w.add(.mprotectMadeWritable)
            st.pointee.regions[k].faultPercent = UInt8(faultPercent)
            let (lo, hi) = r.modelPages(s.a, end)
            for i in lo..<hi where Region.selected(i, faultPercent) {
                if touch(p, r, i, write: true, .mprotectFaults, cpu, w) { madeAnon(st, k, w) }
            }
        }
    }

    private func madvise(_ s: Step, _ st: UnsafeMutablePointer<MMState>, _ p: PinnedProcess, _ cpu: CPU, _ w: WorkerCounters) {
        guard s.flags & Step.dropsPages != 0 else { w.add(.madviseOther); return }
        let end = pageEnd(s.a, s.b)
        var hit = false
        for r in st.pointee.regions where r.start < end && s.a < r.end {
            hit = true
            let (lo, hi) = r.modelPages(s.a, end)
            if hi > lo { _ = machine.dropPages(p, vma: r.vma, first: lo, count: hi - lo, cpu: cpu) }
        }
        w.add(hit ? .madviseDrops : .madviseNotModelled)
    }
}

extension StepKind {
    /// Whether the step makes another mm runnable.
    var releasesAnMM: Bool { self == .fork || self == .execOwn || self == .release }

    /// The model operation a step mostly is, for the ring of recent operations.
    var operation: OpKind {
        switch self {
        case .spawn, .execOwn, .release: .exec
        case .fork: .fork
        case .exit: .exit
        case .munmap, .madvise: .munmap
        case .mremap: .mremap
        case .cowAfterFork, .imageStart, .mmap, .brk, .mprotect, .tasks: .fault
        }
    }
}
