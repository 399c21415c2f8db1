import Synchronization

/// Fork families: the mms related by fork without exec. A new process or an
/// exec image starts a family; fork puts the child in its parent's; an mm
/// leaves when it is torn down. The workload bounds a family's size so that
/// rmap walk lengths hold still during a run (for the anongroup scheme a
/// family is exactly an anongroup; for others it is the fork tree their
/// rmap objects follow).
///
/// `familyOf[mm]` is set before the mm is published and fixed for its life.
/// `members[f]` is an atomic count (fork and exit of any member write it),
/// each on lines of its own.
struct Families: @unchecked Sendable {
    let pool: NodePool
    let members: PaddedArray<Atomic<Int32>>
    let familyOf: UnsafeMutablePointer<UInt32>

    init(mmSlots: Int, nodes: Int) {
        // An mm belongs to one family, so there are never more families than mms.
        pool = NodePool(capacity: mmSlots, nodes: nodes, trackOwnership: true)
        members = PaddedArray(count: mmSlots + 1)
        for i in 0...mmSlots { members[i].initialize(to: Atomic(0)) }
        familyOf = .allocate(capacity: mmSlots + 1)
        familyOf.initialize(repeating: 0, count: mmSlots + 1)
    }

    func destroy() {
        for i in 0...pool.capacity { members[i].deinitialize(count: 1) }
        members.deallocate()
        familyOf.deallocate()
        pool.destroy()
    }

    @inline(__always) func size(of mm: UInt32) -> Int {
        let f = familyOf[Int(mm)]
        return f == 0 ? 0 : Int(members[Int(f)].pointee.load(ordering: .relaxed))
    }
}

extension Kernel {
    /// A new image starts a family of one. False when out of family slots.
    func familyStart(_ mm: UInt32, _ cpu: CPU) -> Bool {
        let f = cacheAlloc(.families, cpu)
        guard f != 0 else { return false }
        processes.families.members[Int(f)].pointee.store(1, ordering: .relaxed)
        processes.families.familyOf[Int(mm)] = f
        return true
    }

    /// fork: the child joins its parent's family.
    func familyJoin(child: UInt32, parent: UInt32) {
        let f = processes.families.familyOf[Int(parent)]
        processes.families.familyOf[Int(child)] = f
        processes.families.members[Int(f)].pointee.wrappingAdd(1, ordering: .relaxed)
    }

    /// The mm is torn down: it leaves; the last one frees the family.
    func familyLeave(_ mm: UInt32, _ cpu: CPU) {
        let f = processes.families.familyOf[Int(mm)]
        guard f != 0 else { return }
        processes.families.familyOf[Int(mm)] = 0
        let now = processes.families.members[Int(f)].pointee.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue
        if now == 0 {
            cacheFree(.families, f, cpu)
        } else if now < 0 {
            report(.lifetime, mm: mm, cpu: cpu, "family \(f) member count went negative")
        }
    }
}
