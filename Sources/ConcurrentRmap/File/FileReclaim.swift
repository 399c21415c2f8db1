/// Reclaim of page cache pages (shrink_folio_list's file half): age
/// through the i_mmap walk, unmap every mapping, write a dirty page back
/// (pageout), then take it out of the cache and free it.
///
/// Locks (order: `LockClass`): the page lock by trylock, then the walk's
/// i_mmap (read) and each ptl by trylock.
extension Kernel {
    /// One page cache page met by the clock. True when it was freed.
    func shrinkFilePage(_ f: UInt32, _ cpu: CPU) -> Bool {
        guard tryPin(f) else { return false }
        guard tryLockPage(f) else { put(f, cpu); return false }
        let fr = frames + Int(f)
        guard fr.pointee.flags.load(ordering: .acquiring) & (FrameFlags.pageCache | FrameFlags.anon) == FrameFlags.pageCache else {
            putBack(f, cpu)
            return false
        }
        if fr.pointee.mapcount.load(ordering: .relaxed) > 0 {
            var referenced = false
            _ = rmapWalk(f, trylock: true, cpu) { _, _, i in
                let pte = pte(at: i)
                guard pte.isPresent && pte.target == f else { return pte.mappedFrame == f }
                if pte.isYoung { setPTE(at: i, pte.with(young: false)); referenced = true }
                return true
            }
            if referenced {
                fr.pointee.flags.bitwiseOr(FrameFlags.referenced, ordering: .relaxed)
                cpu.pointee.count(.reclaimReferenced)
                putBack(f, cpu)
                return false
            }
            // try_to_unmap: a file page needs no swap entry, the PTE just
            // goes (the next fault finds the page, or reads it back).
            let stats = rmapWalk(f, trylock: true, cpu) { _, _, i in
                let pte = pte(at: i)
                guard pte.isPresent && pte.target == f else { return pte.mappedFrame == f }
                raceWindow(cpu)  // read-to-write window: only the ptl closes it
                setPTE(at: i, .none)
                mapDec(f, cpu)
                put(f, cpu)  // cannot free: we hold a pin
                return true
            }
            let left = fr.pointee.mapcount.load(ordering: .relaxed)
            if left != 0 && stats.trylockFailed == 0 && checks != .off {
                report(.incompleteWalk, frame: f, vpn: fr.pointee.index.load(ordering: .relaxed), cpu: cpu,
                       "file unmap walk visited \(stats.visited) VMAs and left \(left) mappings")
            }
            if left != 0 { putBack(f, cpu); return false }
        }
        // Unmapped, locked: no one can write it now.
        if inject == .fileReclaimDropsDirty {
            // The planted bug: the page is taken for clean.
        } else {
            writeback(f, cpu)
        }
        cacheRemove(f, discard: false, cpu)
        unlockPage(f)
        put(f, cpu)  // the cache's reference
        let last = fr.pointee.refcount.load(ordering: .acquiring) == 1
        put(f, cpu)  // our pin: the last, unless a fault pinned it a moment
        if last { cpu.pointee.count(.fileDropped) }
        return last
    }
}
