/// The rmap walk of the pte_chains scheme: try_to_unmap of 2.6.5. Holding
/// the page's chain lock, visit every entry, newest first; the caller
/// trylocks each mm's ptl (`walkTrylocksPTL`). The chain lists exactly the
/// PTEs mapping the page, so every visit finds one (`walkIsExact`).
extension PTEChainsRmap {
    /// Visits the entries from the newest (the top of the newest block) to
    /// the oldest, so that an entry the visit clears, which the newest
    /// entry replaces, leaves no entry unvisited and none visited twice.
    /// The next block is read before the visit: clearing the last entry of
    /// the newest block frees it.
    ///
    /// Inlined into each caller so that the visit closure is inlined too.
    @inline(__always)
    func walk<P>(_ k: Kernel<Self, P>, frame f: UInt32, cpu: CPU, _ visit: (UInt32, UInt64) -> Void) -> Int {
        let h = heads + Int(f)
        let c = cursor(cpu)
        lockChain(k, f, nested: c.pointee.frame != 0)
        let outer = c.pointee.frame
        c.pointee.frame = f
        defer {
            c.pointee.frame = outer
            unlockChain(k, f)
        }
        let n = Int(h.pointee.count.load(ordering: .relaxed))
        guard n > 0 else { return 0 }
        var b = h.pointee.block.load(ordering: .relaxed)
        if b == 0 {
            let e = h.pointee.direct.load(ordering: .relaxed)
            c.pointee.block = 0
            c.pointee.slot = 0
            visit(Self.mm(of: e), Self.vpn(of: e))
            return 1
        }
        let checked = k.checks != .off
        var slot = Self.fill(UInt32(n)) - 1
        var visited = 0
        while b != 0 {
            guard pool.contains(b) else {
                k.report(.groupList, frame: f, cpu: cpu, "pte chain links to block \(b), outside 1...\(pool.capacity)")
                break
            }
            let older = UInt32(truncatingIfNeeded: word(b, 0).pointee.load(ordering: .relaxed))
            while slot >= 0 {
                visited += 1
                if visited > n {
                    if checked { k.report(.groupList, frame: f, cpu: cpu, "pte chain holds more entries than its count \(n)") }
                    return visited - 1
                }
                let e = word(b, slot + 1).pointee.load(ordering: .relaxed)
                if e == 0 {
                    if checked { k.report(.groupList, frame: f, cpu: cpu, "pte chain block \(b) has an empty slot \(slot)") }
                } else {
                    c.pointee.block = b
                    c.pointee.slot = slot
                    visit(Self.mm(of: e), Self.vpn(of: e))
                }
                slot -= 1
            }
            b = older
            slot = PTEChainsState.nrpte - 1
        }
        if visited != n && checked {
            k.report(.groupList, frame: f, cpu: cpu, "pte chain holds \(visited) entries, its count says \(n)")
        }
        return visited
    }
}
