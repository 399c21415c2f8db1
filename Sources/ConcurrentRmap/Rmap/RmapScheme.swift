/// The seam between the memory-management operations and a reverse-mapping
/// design.
///
/// Operations (fault, fork, exit, exec, mremap, munmap, reclaim, migration)
/// never look inside the rmap: they tell it about life-cycle events through
/// these calls and ask it for the candidate mappings of a page through
/// `walk`. The seed's anongroup is `AnonGroupRmap`, the only conformer so
/// far. anon_vma and anon_vma_chain would also need per-VMA events (mmap,
/// munmap, mremap of a whole VMA) and pte_chains per-PTE events (fork
/// copies, zaps, swap-out), which this protocol does not have yet; adding
/// them is part of adding those schemes. `Machine` picks the scheme.
///
/// Call contexts (what the kernel holds when it calls in) are part of the
/// contract, and each conformer must respect the lock order in
/// ARCHITECTURE.md.
protocol RmapScheme: Sendable {
    init(config: MachineConfig, log: ViolationLog)
    func destroy()

    /// A new address space (a new process, or the new image of exec) begins
    /// its own rmap context. Holds nothing. False when out of slots.
    func mmStarted(_ k: Kernel<Self>, mm: UInt32, cpu: CPU) -> Bool
    /// fork: the child joins the parent's context. Called with the parent's
    /// mmap lock held for writing, before (or, injected, after) the parent's
    /// PTEs are copied into the child.
    func mmForked(_ k: Kernel<Self>, parent: UInt32, child: UInt32, cpu: CPU)
    /// exit: the mm's page tables are already empty; the mm leaves its
    /// context. Walkers may still be looking at it until a grace period ends.
    func mmExited(_ k: Kernel<Self>, mm: UInt32, cpu: CPU)

    /// A frame becomes an anonymous page first mapped at (mm, vpn). Holds the
    /// mm's ptl; the frame is not yet visible to anyone else.
    func pageAdded(_ k: Kernel<Self>, frame: UInt32, mm: UInt32, vpn: UInt64)
    /// Migration: `to` takes over `from`'s place in the rmap. `from` is locked.
    func pageCloned(_ k: Kernel<Self>, from: UInt32, to: UInt32)
    /// The frame's last reference is gone.
    func pageFreed(_ k: Kernel<Self>, frame: UInt32, cpu: CPU)

    /// mremap: may the page keep its frame when its PTE moves in `mm`
    /// (true), or must it be copied (false)? Page locked, ptl held.
    func canMoveWithoutCopy(_ k: Kernel<Self>, frame: UInt32, mm: UInt32) -> Bool
    /// mremap: the page's only PTE moves to `newVpn`. Page locked, ptl held.
    func pageMoved(_ k: Kernel<Self>, frame: UInt32, mm: UInt32, newVpn: UInt64)
    /// Swap-in of a page swapped out at `swappedVpn`, now faulted at `vpn`.
    func swapInIndex(_ k: Kernel<Self>, swappedVpn: UInt64, vpn: UInt64) -> UInt64

    /// Visits every (mm, vpn) that may map `frame`, in list order, with the
    /// list protected for the whole walk. The page is locked and pinned.
    /// Returns the number of mms visited.
    func walk(_ k: Kernel<Self>, frame: UInt32, cpu: CPU, _ visit: (UInt32, UInt64) -> Void) -> Int

    /// Cheap check, under the mm's ptl: is a PTE of `mm` at `vpn` allowed to
    /// map `frame`? (Invariant 1 for this scheme.)
    func locationOK(_ k: Kernel<Self>, frame: UInt32, mm: UInt32, vpn: UInt64) -> Bool

    /// Full audit of the scheme's own structures (all operations paused).
    func audit(_ k: Kernel<Self>, report: (Violation) -> Void)
    /// After every process exited and RCU callbacks drained: nothing left.
    func leakCheck(_ k: Kernel<Self>, report: (Violation) -> Void)
    /// Live rmap contexts (groups), for statistics.
    var contextsInUse: Int { get }
    /// The pool of the scheme's context slots (fronted by per-CPU caches).
    var slotPool: HandlePool { get }
}
