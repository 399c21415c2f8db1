import XCTest
@testable import ConcurrentRmap

typealias COWKernel = Kernel<COWContextRmap, RealPlatform>

extension Machine {
    /// The cow-context machine's kernel.
    var cowKernel: COWKernel { (core as! COWContextMachine).kernel }
}

extension Kernel where R == COWContextRmap {
    func context(of mm: UInt32) -> UInt32 { rmap.context(of: mm) }
    func parentContext(_ c: UInt32) -> UInt32 { rmap.ctx(c).pointee.parent.load(ordering: .relaxed) }
    func contextLive(_ c: UInt32) -> Bool { rmap.slab.load(c) == SlotState.live }
    func contextLinked(_ c: UInt32) -> Bool { rmap.ctx(c).pointee.linked.load(ordering: .relaxed) != 0 }

    /// The children of context `c`, in walk order.
    func children(_ c: UInt32) -> [UInt32] {
        var out: [UInt32] = []
        var x = rmap.ctx(c).pointee.firstChild.load(ordering: .acquiring)
        while x != 0 && out.count <= rmap.slab.capacity {
            out.append(x)
            x = rmap.ctx(x).pointee.next.load(ordering: .acquiring)
        }
        return out
    }

    /// Every (mm, vpn) a walk of `f` visits, and the contexts it passed.
    func walked(_ f: UInt32, _ cpu: CPU) -> (visits: [UInt32: UInt64], contexts: Int) {
        var v: [UInt32: UInt64] = [:]
        let n = rmap.walk(self, frame: f, cpu: cpu) { mm, vpn in v[mm] = vpn }
        return (v, n)
    }

    func exitCOW(_ mm: UInt32, _ cpu: CPU) throws {
        guard let s = slot(of: mm), exitProcess(slot: s, mm: mm, cpu) else { throw TestFailure("exit of \(mm) failed") }
    }
}
