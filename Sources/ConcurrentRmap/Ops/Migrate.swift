/// Page migration: move an anonymous or page cache page to a new frame. It must find and
/// replace every mapping, so it is the strictest test of rmap completeness
/// (as in the kernel's tools/testing/selftests/mm/rmap.c).
///
/// Protocol (try_to_migrate + remove_migration_ptes):
/// 1. pin and lock the old page; walk with blocking ptl locks, replacing
///    each present PTE by a migration entry (it keeps its mapcount);
/// 2. copy the content (no one can write: every mapping is a migration entry);
/// 3. lock the new page and walk again, replacing each migration entry by a
///    PTE of the new page.
///
/// Checks: a present PTE of the old page found in step 3 was missed in step
/// 1; a mapcount left on the old page after step 3 is a migration entry
/// that no walk found. Both are completeness violations, never retries.
extension Kernel {
    /// Migrates one randomly chosen mapped page. False when none was found.
    func migrate(_ cpu: CPU) -> Bool {
        let target = allocFrame(cpu)
        guard target != 0 else { cpu.pointee.count(.migrateSkipped); return false }
        var f: UInt32 = 0
        for _ in 0..<16 {
            let c = UInt32(cpu.pointee.random(below: config.frames)) + 1
            let fl = frames[Int(c)].flags.load(ordering: .relaxed)
            guard fl & (FrameFlags.anon | FrameFlags.pageCache) != 0 && fl & FrameFlags.free == 0, c != target else { continue }
            if isolate(c, cpu) { f = c; break }
        }
        guard f != 0 else { put(target, cpu); cpu.pointee.count(.migrateSkipped); return false }
        migrateLocked(f, to: target, cpu)
        return true
    }

    /// Migrates a page mapped in pinned `mm` (the first present one of up to
    /// 16 random addresses), the way NUMA balancing migrates the pages of
    /// the task it runs for. False when none of them held a page.
    func migrate(in mm: UInt32, _ cpu: CPU) -> Bool {
        var f: UInt32 = 0
        var at: UInt64 = 0
        mmapRead(mm)
        ptlLock(mm)
        for _ in 0..<16 {
            guard let (_, vpn) = randomAddress(mm, cpu) else { break }
            let i = pteIndex(mm, vpn)
            if i >= 0, pte(at: i).isPresent { f = pte(at: i).target; at = vpn; break }
        }
        ptlUnlock(mm)
        mmapUnlock(mm)
        guard f != 0, validFrame(f, mm: mm, vpn: at, cpu) else { cpu.pointee.count(.migrateSkipped); return false }
        let target = allocFrame(cpu)
        guard target != 0 else { cpu.pointee.count(.migrateSkipped); return false }
        // f may have been freed and reused since we let go of the ptl: the
        // isolate step re-checks it as the scanners do.
        guard isolate(f, cpu) else { put(target, cpu); cpu.pointee.count(.migrateSkipped); return false }
        migrateLocked(f, to: target, cpu)
        return true
    }

    /// Migrates pinned, locked `f` into freshly allocated `target`; unlocks
    /// and unpins `f` and drops the allocation reference on `target`.
    func migrateLocked(_ f: UInt32, to target: UInt32, _ cpu: CPU) {
        // A walk that may only trylock ptls (pte-chains) goes again while
        // one failed: migration must reach every mapping.
        while true {
            let first = rmapWalk(f, trylock: false, cpu) { _, _, i in
                let pte = pte(at: i)
                guard pte.isPresent && pte.target == f else { return pte.mappedFrame == f }
                raceWindow(cpu)  // read-to-write window: only the ptl closes it
                setPTE(at: i, .migration(f, writable: pte.isWritable))
                return true
            }
            if first.trylockFailed == 0 || inject == .pteChainsMigratePartial { break }
            P.relax()
        }
        // The new page is locked too until every entry points at it: between
        // two conversions it is mapped once but not yet everywhere, and an
        // mremap that saw mapcount 1 would re-index it under the walk.
        // A reclaim or migration scan that read this frame's flags in its
        // previous life may still pin and trylock it for a moment; it lets
        // go once it sees the frame is not (yet) anonymous, so wait for it.
        lockPage(target, nested: true)
        frames[Int(target)].content.store(frames[Int(f)].content.load(ordering: .relaxed), ordering: .relaxed)
        // An anonymous page's anchor comes from the scheme; a page cache
        // page hands over its anchor and its slot (the cache's reference
        // moves: dropped on the old page below).
        let file = isFilePage(f)
        if file { cacheMove(from: f, to: target) } else { rmap.pageCloned(self, from: f, to: target) }
        // A page in the swap cache hands its place there to the new one.
        let cached = file || frames[Int(f)].flags.load(ordering: .acquiring) & FrameFlags.swapCache != 0
        if cached && !file { swapCacheMove(from: f, to: target) }
        while true {
            let second = rmapWalk(f, trylock: false, cpu) { mm, vpn, i in
                let pte = pte(at: i)
                guard pte.mappedFrame == f else { return false }
                if pte.isMigration {
                    refInc(target)
                    rmap.pteInstalled(self, frame: target, mm: mm, vpn: vpn, cpu: cpu)
                    mapInc(target, cpu)
                    setPTE(at: i, .present(target, writable: pte.isWritable))
                    mapDec(f, cpu)
                    rmap.pteCleared(self, frame: f, mm: mm, vpn: vpn, cpu: cpu)
                    put(f, cpu)  // cannot free: we hold a pin
                } else if pte.isPresent && checks != .off {
                    report(.incompleteWalk, frame: f, mm: mm, vpn: vpn, cpu: cpu,
                           "migration: first walk missed this mapping")
                }
                return true
            }
            if second.trylockFailed == 0 { break }
            P.relax()
        }
        let left = frames[Int(f)].mapcount.load(ordering: .relaxed)
        if left != 0 && checks != .off {
            report(.incompleteWalk, frame: f, vpn: frames[Int(f)].index.load(ordering: .relaxed), cpu: cpu,
                   "migration left \(left) mappings of the old page")
        }
        unlockPage(target)
        if cached { put(f, cpu) }  // the swap or page cache's reference, now the new page's
        putBack(f, cpu)
        put(target, cpu)
        cpu.pointee.count(.migrated)
    }
}
