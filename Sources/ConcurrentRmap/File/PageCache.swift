/// The page cache: find or create the page of (inode, index), take one
/// out, write one back.
///
/// A page in the cache has `pageCache` set, `mapping` = the inode, `index`
/// = the file offset, and one reference that is the cache's. It enters and
/// leaves under its page lock; a finder pins it, locks it and re-checks all
/// three, so a page that left (reclaim, truncate, migration) or a frame
/// reused meanwhile is never taken for it.
extension Kernel {
    enum CachePage { case page(UInt32), outOfMemory }

    /// find_lock_page / filemap_fault's miss path: the page of (`ino`,
    /// `index`), pinned and locked; on a miss a new page read from the disk
    /// word is inserted. No ptl held (it may allocate and wait for a page
    /// lock). The caller re-checks the size under the page lock.
    func findOrCreateCachePage(_ ino: UInt32, _ index: UInt64, _ cpu: CPU) -> CachePage {
        let slot = files.slot(ino, index)
        while true {
            let f = slot.pointee.load(ordering: .acquiring)
            if f != 0 {
                guard tryPin(f) else { P.relax(); continue }
                lockPage(f)
                if inCache(f, ino, index) { return .page(f) }
                unlockPage(f)
                put(f, cpu)
                continue
            }
            let n = allocFrame(cpu)
            guard n != 0 else { return .outOfMemory }
            // A scanner that saw this frame in its previous life may hold
            // its lock a moment: wait for it.
            lockPage(n)
            let fr = frames + Int(n)
            fr.pointee.mapping.store(ino, ordering: .relaxed)
            fr.pointee.index.store(index, ordering: .relaxed)
            fr.pointee.content.store(files.diskWord(ino, index).pointee.load(ordering: .acquiring), ordering: .relaxed)
            fr.pointee.flags.bitwiseOr(FrameFlags.pageCache, ordering: .releasing)
            refInc(n)  // our pin; the allocation's reference becomes the cache's
            // Sequentially consistent, against truncate's size store and
            // slot load: one of the two sees the other.
            guard slot.pointee.compareExchange(expected: 0, desired: n, ordering: .sequentiallyConsistent).exchanged else {
                fr.pointee.flags.bitwiseAnd(~FrameFlags.pageCache, ordering: .releasing)
                unlockPage(n)
                put(n, cpu)
                put(n, cpu)
                continue
            }
            files.inode[Int(ino)].nrpages.wrappingAdd(1, ordering: .relaxed)
            return .page(n)
        }
    }

    /// Whether `f` (pinned) is the cache's page of (`ino`, `index`).
    @inline(__always) func inCache(_ f: UInt32, _ ino: UInt32, _ index: UInt64) -> Bool {
        frames[Int(f)].flags.load(ordering: .acquiring) & (FrameFlags.pageCache | FrameFlags.anon) == FrameFlags.pageCache
            && frames[Int(f)].mapping.load(ordering: .relaxed) == ino
            && frames[Int(f)].index.load(ordering: .relaxed) == index
    }

    /// __delete_from_page_cache: locked, pinned `f` leaves its slot. The
    /// caller then drops the cache's reference. `discard`: truncate, whose
    /// data goes with the page; any other remover must have written a
    /// dirty page back first (data loss otherwise: reported).
    func cacheRemove(_ f: UInt32, discard: Bool, _ cpu: CPU) {
        let fr = frames + Int(f)
        let ino = fr.pointee.mapping.load(ordering: .relaxed)
        let index = fr.pointee.index.load(ordering: .relaxed)
        if !discard && fr.pointee.flags.load(ordering: .relaxed) & FrameFlags.dirty != 0 && checks != .off {
            report(.content, frame: f, cpu: cpu, "dirty page cache page (inode \(ino), index \(index)) dropped without writeback")
        }
        if !files.slot(ino, index).pointee.compareExchange(expected: f, desired: 0, ordering: .sequentiallyConsistent).exchanged {
            report(.refcount, frame: f, cpu: cpu, "page cache page (inode \(ino), index \(index)) is not in its slot")
        }
        fr.pointee.flags.bitwiseAnd(~(FrameFlags.pageCache | FrameFlags.dirty), ordering: .releasing)
        files.inode[Int(ino)].nrpages.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Migration: `to` (locked) takes `from`'s (locked) place in the cache:
    /// anchor, dirty bit and slot. The cache's reference moves with it; the
    /// caller drops `from`'s. `from` keeps mapping and index (its migration
    /// entries are walked through them) but is no longer in the cache.
    func cacheMove(from: UInt32, to: UInt32) {
        let ff = frames + Int(from), tf = frames + Int(to)
        let ino = ff.pointee.mapping.load(ordering: .relaxed)
        let index = ff.pointee.index.load(ordering: .relaxed)
        tf.pointee.mapping.store(ino, ordering: .relaxed)
        tf.pointee.index.store(index, ordering: .relaxed)
        let dirty = ff.pointee.flags.load(ordering: .relaxed) & FrameFlags.dirty
        refInc(to)
        tf.pointee.flags.bitwiseOr(FrameFlags.pageCache | dirty, ordering: .releasing)
        files.slot(ino, index).pointee.store(to, ordering: .sequentiallyConsistent)
        ff.pointee.flags.bitwiseAnd(~(FrameFlags.pageCache | FrameFlags.dirty), ordering: .releasing)
    }

    /// pageout: a dirty page's content goes to its disk word (a modelled
    /// I/O delay first). Locked, and no PTE maps it writable (reclaim
    /// unmapped it), so the content cannot change under the copy.
    func writeback(_ f: UInt32, _ cpu: CPU) {
        let fr = frames + Int(f)
        guard fr.pointee.flags.load(ordering: .relaxed) & FrameFlags.dirty != 0 else { return }
        raceWindow(cpu)
        raceWindow(cpu)
        files.diskWord(fr.pointee.mapping.load(ordering: .relaxed), fr.pointee.index.load(ordering: .relaxed))
            .pointee.store(fr.pointee.content.load(ordering: .relaxed), ordering: .releasing)
        fr.pointee.flags.bitwiseAnd(~FrameFlags.dirty, ordering: .releasing)
        cpu.pointee.count(files.isShmem(fr.pointee.mapping.load(ordering: .relaxed)) ? .shmemWriteback : .fileWriteback)
    }
}
