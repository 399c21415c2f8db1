/// The rmap walk protocol shared by reclaim and migration.
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
extension Kernel {
    struct WalkStats { var visited = 0; var trylockFailed = 0 }

    func rmapWalk(_ f: UInt32, trylock: Bool, _ cpu: CPU, _ body: (UInt32, UInt64, Int) -> Void) -> WalkStats {
        var stats = WalkStats()
        let lockPTL = inject != .walkNoPageTableLock
        stats.visited = rmap.walk(self, frame: f, cpu: cpu) { mm, vpn in
            guard vpn < UInt64(MachineConfig.vpnLimit) else {
                report(.location, frame: f, mm: mm, vpn: vpn, cpu: cpu, "page.index 0x\(String(vpn, radix: 16)) is no virtual page")
                return
            }
            raceWindow(cpu)  // between reading page.mapping/index and locking the mm
            if lockPTL {
                if trylock {
                    if !ptl.tryLock(Int(mm)) { stats.trylockFailed += 1; return }
                } else {
                    ptl.lock(Int(mm))
                }
            }
            defer { if lockPTL { ptl.unlock(Int(mm)) } }
            cpu.pointee.lastGeneration = mms.generation[Int(mm)]  // plain read: see SlotFreeTarget
            if mms.state[Int(mm)].pointee.load(ordering: .acquiring) == SlotState.free {
                report(.lifetime, frame: f, mm: mm, vpn: vpn, cpu: cpu, "rmap walk reached a freed mm")
                return
            }
            let i = pteIndex(mm, vpn)
            guard i >= 0 else { return }
            body(mm, vpn, i)
        }
        cpu.pointee.count(.rmapWalk)
        cpu.pointee.count(.walkMmsVisited, UInt64(stats.visited))
        cpu.pointee.count(.walkTrylockFail, UInt64(stats.trylockFailed))
        return stats
    }
}
