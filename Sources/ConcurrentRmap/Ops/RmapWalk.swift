/// The rmap walk protocol shared by reclaim, migration and truncate, over
/// both branches: an anonymous page's mappings come from the scheme, a
/// file page's from its inode's i_mmap (`fileWalk`).
///
/// Preconditions: the frame is pinned and its page lock is held, so its
/// `mapping` and `index` are stable (mremap re-indexes under the page lock)
/// and no new mapping of it can appear except fork's copies, which land in
/// an mm later in the walk order.
///
/// For each candidate (mm, vpn) from the scheme: take that mm's ptl (trylock
/// for reclaim, as in Hugh Dickins' anonmm; blocking for migration, which must
/// be complete), re-check the mm (its slot must not be free; a dying mm is
/// still walked, its zap and our walk are serialized by the ptl), look up
/// the PTE and hand it to `body` with the ptl held.
///
/// Cost accounting: objects visited (the scheme's count) and wasted visits,
/// the objects that turned out not to map the page (an mm of the group
/// that never had it or copied it; a VMA of the anon_vma that does not
/// cover the offset or whose PTE there is another page's).
extension Kernel {
    /// Objects the scheme visited (mms or VMAs), mappings of the page found,
    /// and ptl trylocks that failed.
    struct WalkStats { var visited = 0; var found = 0; var trylockFailed = 0 }

    /// `body` gets (mm, vpn, PTE index) with the ptl held and returns
    /// whether that PTE maps `f` (present or migration entry), which it has
    /// looked at anyway: the walk counts the visits that found nothing.
    @inline(__always)
    func rmapWalk(_ f: UInt32, trylock: Bool, _ cpu: CPU, _ body: (UInt32, UInt64, Int) -> Bool) -> WalkStats {
        var stats = WalkStats()
        let lockPTL = inject != .walkNoPageTableLock
        // PageAnon decides the branch: the scheme's walk, or i_mmap's (never exact).
        let anon = frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.anon != 0
        // pte-chains' walk holds its chain lock, which ranks after the ptl.
        let trylock = trylock || (R.walkTrylocksPTL && anon)
        let exact = R.walkIsExact && anon && checks != .off
        // Hoisted: the scheme's acquire loads between visits would make
        // every one of these a reload.
        let perturb = config.perturb
        let generation = mms.generation
        let states = mms.state
        func visit(_ mm: UInt32, _ vpn: UInt64) {
            guard vpn < UInt64(MachineConfig.vpnLimit) else {
                report(.location, frame: f, mm: mm, vpn: vpn, cpu: cpu, "page.index 0x\(String(vpn, radix: 16)) is no virtual page")
                return
            }
            // Between reading page.mapping/index and locking the mm.
            if perturb { P.raceWindow(cpu.pointee.random()) } else { P.schedulingPoint() }
            if lockPTL {
                if trylock {
                    if !ptlTryLock(mm) { stats.trylockFailed += 1; return }
                } else {
                    ptlLock(mm)
                }
            }
            defer { if lockPTL { ptlUnlock(mm) } }
            cpu.pointee.lastGeneration = generation[Int(mm)]  // plain read: see SlotFreeTarget
            if states[Int(mm)].pointee.load(ordering: .acquiring) == SlotState.free {
                report(.lifetime, frame: f, mm: mm, vpn: vpn, cpu: cpu, "rmap walk reached a freed mm")
                return
            }
            assertPTLHeld(mm)  // the PTE is read, and rewritten by `body`, under it
            let i = pteIndex(mm, vpn)
            // An exact walk names only PTEs that map the page.
            guard i >= 0, body(mm, vpn, i) else {
                if exact { report(.groupList, frame: f, mm: mm, vpn: vpn, cpu: cpu, "rmap walk visited a PTE that does not map the page") }
                return
            }
            stats.found += 1
        }
        if anon {
            stats.visited = rmap.walk(self, frame: f, cpu: cpu, visit)
        } else {
            stats.visited = fileWalk(f, cpu, visit)
        }
        cpu.pointee.count(.rmapWalk)
        cpu.pointee.count(.walkVisited, UInt64(stats.visited))
        cpu.pointee.count(.walkWasted, UInt64(max(0, stats.visited - stats.found - stats.trylockFailed)))
        cpu.pointee.count(.walkTrylockFail, UInt64(stats.trylockFailed))
        return stats
    }
}
