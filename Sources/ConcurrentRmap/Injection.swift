/// Bugs that can be planted on purpose, each a real member of the rmap bug
/// family. A stress tool is trusted when it catches these (as rcutorture's
/// deliberately broken "busted" RCU shows its own worth).
public enum Injection: String, CaseIterable, Sendable {
    case none
    /// mremap moves a still-shared page without copying it.
    case mremapNoCopy = "mremap-no-copy"
    /// mremap re-indexes an exclusive page without holding the page lock.
    case mremapNoPageLock = "mremap-no-page-lock"
    /// fork links the child into the group only after copying its PTEs.
    case forkLinkAfterCopy = "fork-link-after-copy"
    /// fork links the child at the head of the group list.
    case forkLinkAtHead = "fork-link-at-head"
    /// rmap walks traverse the group list outside any read-side protection.
    case walkOutsideRCU = "walk-outside-rcu"
    /// an exiting mm's slot is freed without waiting for a grace period.
    case mmFreeNoGrace = "mm-free-no-grace"
    /// pages do not pin their group, so it is freed while pages point to it.
    case groupFreedWhilePages = "group-freed-while-pages"
    /// rmap walks read and change PTEs without the mm's page-table lock.
    case walkNoPageTableLock = "walk-no-ptl"
    /// swap-in gives the new page the index it had when swapped out, not
    /// the faulting address.
    case swapInStaleIndex = "swapin-stale-index"
    /// mapcount is updated with a non-atomic load and store.
    case racyMapcount = "racy-mapcount"
    /// a walker blocks forever inside its read-side section.
    case rcuReaderStall = "rcu-reader-stall"
    /// a walker leaves its read-side section open and goes on running.
    case rcuUnlockForgotten = "rcu-unlock-forgotten"
    /// mms are pinned with a plain increment instead of increment-if-not-zero.
    case mmPinNoZeroCheck = "mm-pin-no-zero-check"

    /// What the bug breaks, and the real fix it mirrors.
    public var summary: String {
        switch self {
        case .none: "no injected bug"
        case .mremapNoCopy:
            "mremap after fork moves a shared page and re-indexes it: the other mm's PTE is no longer at page.index (location). The seed email's copy_one_pte rule."
        case .mremapNoPageLock:
            "mremap changes page.index while a walker holding the page lock reads it: the walker looks at the wrong address (completeness). Linux 2011/2012 mremap vs migration fixes (anon_vma lock in move_ptes)."
        case .forkLinkAfterCopy:
            "fork copies PTEs before the child is on the group list: a walk in between misses the child's copy (completeness). Linux 2008 anon_vma_prepare/fork ordering fixes."
        case .forkLinkAtHead:
            "the child is linked at the head, so a walk can pass the child before fork copies into it and then see the parent already converted (completeness). Hugh Dickins' anonmm linked at the tail."
        case .walkOutsideRCU:
            "the group list is walked with no read-side section: a concurrently exiting mm is freed and reused under the walker (lifetime). Linux page_lock_anon_vma RCU fixes (2008)."
        case .mmFreeNoGrace:
            "an exiting mm slot is recycled at once: a walker still on it lands in another mm (lifetime). The reason SLAB_DESTROY_BY_RCU exists for anon_vma."
        case .groupFreedWhilePages:
            "pages take no reference on their group: the group is freed and reused while pages point to it (lifetime). Linux 2010 'pick the oldest anon_vma' / anon_vma refcount fixes."
        case .walkNoPageTableLock:
            "the walk reads and rewrites PTEs without the ptl, racing faults and zaps (counts, content). Every page_check_address caller takes the ptl."
        case .swapInStaleIndex:
            "swap-in at an address other than the one the page was swapped out from keeps the old index instead of taking the new one (location). Hugh Dickins' anonmm copy at swap-in."
        case .racyMapcount:
            "mapcount increments and decrements are plain load+store: concurrent updates are lost (counts). atomic_t mapcount since 2.5."
        case .rcuUnlockForgotten:
            "worker 0 forgets one rcu_read_unlock after a walk and goes on working: its read-side section never ends, so no grace period completes and no call_rcu callback runs (the watchdog names the worker: no grace period, exit 3). Under qsbr a read-side lock is only a marker and the bug is invisible. rcutorture's forgotten-unlock and RCU CPU stall warnings."
        case .mmPinNoZeroCheck:
            "a worker pins an mm with a plain increment (mmget) instead of mmget_not_zero: an mm whose last user has gone is brought back, and its last user leaves twice (lifetime: torn down twice). Linux's mmget_not_zero fixes (2017-2019)."
        case .rcuReaderStall:
            "worker 0's first rmap walk blocks inside its read-side section, as a reader that sleeps on something that waits for a grace period would: no grace period ends and the worker stops (stall, exit 3). rcutorture's RCU CPU stall warnings."
        }
    }
}
