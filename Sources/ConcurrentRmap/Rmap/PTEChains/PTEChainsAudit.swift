/// The pte_chains scheme's audit, leak check and metadata (all operations
/// paused, chain locks free).
extension PTEChainsRmap {
    /// The entries of `f`'s chain, or nil (reported) when the chain itself
    /// is broken. Marks each block reached in `seen`.
    func entries<P>(_ k: Kernel<Self, P>, _ f: UInt32, seen: inout [Bool], report: (Violation) -> Void) -> [UInt64]? {
        let h = heads + Int(f)
        let n = Int(h.pointee.count.load(ordering: .relaxed))
        var b = h.pointee.block.load(ordering: .relaxed)
        if b == 0 {
            let d = h.pointee.direct.load(ordering: .relaxed)
            if n > 1 || (n == 1) != (d != 0) {
                report(Violation(kind: .groupList, frame: f, detail: "direct page counts \(n) entries, direct entry \(d == 0 ? "empty" : "set")"))
                return nil
            }
            return n == 1 ? [d] : []
        }
        if h.pointee.direct.load(ordering: .relaxed) != 0 {
            report(Violation(kind: .groupList, frame: f, detail: "chained page keeps a direct entry"))
        }
        var out: [UInt64] = []
        var used = Self.fill(UInt32(n))
        while b != 0 {
            guard pool.contains(b), pool.isAllocated(b), !seen[Int(b)] else {
                report(Violation(kind: .groupList, frame: f, detail: "pte chain reaches block \(b), which is free, shared or out of range"))
                return nil
            }
            seen[Int(b)] = true
            for i in 0..<PTEChainsState.nrpte {
                let e = word(b, i + 1).pointee.load(ordering: .relaxed)
                if i < used && e == 0 || i >= used && e != 0 {
                    report(Violation(kind: .groupList, frame: f, detail: "pte chain block \(b) slot \(i) is \(e == 0 ? "empty" : "used") against the count \(n)"))
                    return nil
                }
                if i < used { out.append(e) }
            }
            used = PTEChainsState.nrpte
            b = UInt32(truncatingIfNeeded: word(b, 0).pointee.load(ordering: .relaxed))
        }
        if out.count != n || n == 0 {
            report(Violation(kind: .groupList, frame: f, detail: "pte chain holds \(out.count) entries, its count says \(n)"))
            return nil
        }
        return out
    }

    /// Every chain lists exactly the PTEs mapping its page: no entry twice,
    /// each entry's PTE maps the page (present or migration entry), as many
    /// entries as the mapcount; page cache pages have none; every allocated
    /// block is on exactly one chain.
    func audit<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        var seen = [Bool](repeating: false, count: pool.capacity + 1)
        for fi in 1...s.pointee.frameCount {
            let f = UInt32(fi)
            if heads[fi].lock.load(ordering: .relaxed) != 0 {
                report(Violation(kind: .groupList, frame: f, detail: "pte_chain_lock held with every operation paused"))
            }
            guard let list = entries(k, f, seen: &seen, report: report) else { continue }
            let fl = k.frames[fi].flags.load(ordering: .relaxed)
            if fl & FrameFlags.anon == 0 {
                if !list.isEmpty { report(Violation(kind: .groupList, frame: f, detail: "page that is not anonymous has \(list.count) pte chain entries")) }
                continue
            }
            let mc = Int(k.frames[fi].mapcount.load(ordering: .relaxed))
            if list.count != mc {
                report(Violation(kind: .groupList, frame: f, detail: "pte chain has \(list.count) entries, mapcount is \(mc)"))
            }
            let sorted = list.sorted()
            for j in sorted.indices {
                let e = sorted[j]
                let mm = Self.mm(of: e), vpn = Self.vpn(of: e)
                if j > 0 && sorted[j - 1] == e {
                    report(Violation(kind: .groupList, frame: f, mm: mm, vpn: vpn, detail: "pte chain lists this PTE twice"))
                    continue
                }
                guard k.mms.contains(mm), vpn < UInt64(MachineConfig.vpnLimit) else {
                    report(Violation(kind: .groupList, frame: f, mm: mm, vpn: vpn, detail: "pte chain entry names no PTE"))
                    continue
                }
                let i = k.pteIndex(mm, vpn)
                if i < 0 || k.pte(at: i).mappedFrame != f {
                    report(Violation(kind: .groupList, frame: f, mm: mm, vpn: vpn, detail: "pte chain entry names a PTE that does not map the page"))
                }
            }
        }
        for b in 1...pool.capacity where pool.isAllocated(UInt32(b)) && !seen[b] {
            report(Violation(kind: .leak, detail: "pte_chain block \(b) is allocated but on no chain"))
        }
    }

    func leakCheck<P>(_ k: Kernel<Self, P>, report: (Violation) -> Void) {
        if pool.inUse != 0 { report(Violation(kind: .leak, detail: "\(pool.inUse) pte_chain blocks still allocated")) }
        for fi in 1...s.pointee.frameCount where heads[fi].count.load(ordering: .relaxed) != 0 {
            report(Violation(kind: .leak, frame: UInt32(fi), detail: "page still has \(heads[fi].count.load(ordering: .relaxed)) pte chain entries"))
        }
    }

    /// Chained pages (contexts), entries (links: the mapped PTEs the chains
    /// record), the longest chain, and the block slab's bytes: direct
    /// entries cost nothing (they live in struct page), blocks 64 bytes.
    /// Scanned racily: statistics only.
    func metadata<P>(_ k: Kernel<Self, P>) -> RmapMetadata {
        var m = RmapMetadata()
        for fi in 1...s.pointee.frameCount {
            let n = Int(heads[fi].count.load(ordering: .relaxed))
            if n == 0 { continue }
            if heads[fi].block.load(ordering: .relaxed) != 0 { m.contexts += 1 }
            m.links += n
            m.maxChain = max(m.maxChain, n)
        }
        m.bytes = pool.inUse * PTEChainsRmap.blockBytes
        return m
    }
}
