/// The file workloads of issue 26 as single-thread benchmarks: many
/// processes mapping one library, and many mappings of one big shared
/// file each through its own window (the case that motivated prio_tree:
/// a list walk visits every mapping, an interval tree only those near the
/// page). Each walk is checked: it must find every mapping of the page.

/// The cost of walking one file page, averaged over `walks` walks.
public struct BenchFileWalkFigure: Sendable, Equatable, Codable {
    /// VMAs on the inode's i_mmap.
    public var mappings: Int
    public var walks: Int
    public var nsPerWalk: Double
    /// i_mmap entries (list) or tree nodes read per walk.
    public var visitedPerWalk: Double
    /// Mappings of the page found per walk (its mapcount).
    public var foundPerWalk: Double
    public var wastedPerWalk: Double { visitedPerWalk - foundPerWalk }
}

extension Machine {
    /// `processes` processes (each an image with the machine's libraries,
    /// `libraries` >= 1) read the first page of library 1; that page is
    /// walked `walks` times. Nil when the machine is too small.
    public func benchLibraryWalk(processes: Int, walks: Int, cpu: CPU) -> BenchFileWalkFigure? {
        core.bench.benchLibraryWalk(processes: processes, walks: walks, cpu: cpu)
    }

    /// `mappings` shared mappings of inode 1 (of `vmaPages` pages, a
    /// multiple of `mappings`), each a different window of vmaPages /
    /// mappings pages, spread over processes of at most 8 each; one page of
    /// every window is read, then pages of the windows in turn are walked
    /// `walks` times. Nil when the machine is too small.
    public func benchFileWindowsWalk(mappings: Int, walks: Int, cpu: CPU) -> BenchFileWalkFigure? {
        core.bench.benchFileWindowsWalk(mappings: mappings, walks: walks, cpu: cpu)
    }

    /// A bench machine for `benchFileWindowsWalk`: one file of 512 pages,
    /// `mappings` windows over it.
    public static func fileWindowsConfig(_ base: MachineConfig, mappings: Int) -> MachineConfig {
        var c = base
        c.vmaPages = 512
        c.vmasPerProcess = 1
        c.inodes = 1
        c.libraries = 0
        c.maxProcesses = max(c.maxProcesses, (mappings + 7) / 8 + 4)
        c.frames = max(c.frames, 2048)
        return c
    }
}

extension KernelMachine {
    /// Walks locked, pinned file frame `f` once; the figure's counts, or
    /// nil (reported) when the walk misses a mapping.
    private func benchFileWalk(_ f: UInt32, _ cpu: CPU) -> (visited: Int, found: Int)? {
        let k = kernel
        let r = k.rmapWalk(f, trylock: false, cpu) { _, _, i in
            let pte = k.pte(at: i)
            return pte.isPresent && pte.target == f
        }
        let mapcount = Int(k.frames[Int(f)].mapcount.load(ordering: .relaxed))
        guard r.found == mapcount else {
            k.report(.incompleteWalk, frame: f, vpn: k.frames[Int(f)].index.load(ordering: .relaxed), cpu: cpu,
                     "bench file walk found \(r.found) of \(mapcount) mappings (\(r.visited) visited)")
            return nil
        }
        return (r.visited, r.found)
    }

    /// Times `walks` walks over `frames` in turn (each pinned and locked
    /// for its walk, as reclaim does).
    private func benchFileWalks(_ frames: [UInt32], mappings: Int, walks: Int, _ cpu: CPU) -> BenchFileWalkFigure? {
        let k = kernel
        guard !frames.isEmpty, walks >= 1 else { return nil }
        var visited = 0, found = 0
        let t0 = RealPlatform.now()
        for w in 0..<walks {
            let f = frames[w % frames.count]
            guard k.tryPin(f) else { return nil }
            k.lockPage(f)
            let r = benchFileWalk(f, cpu)
            k.unlockPage(f)
            k.put(f, cpu)
            guard let r else { return nil }
            visited += r.visited
            found += r.found
        }
        let ns = RealPlatform.now() - t0
        return BenchFileWalkFigure(mappings: mappings, walks: walks, nsPerWalk: Double(ns) / Double(walks),
                                   visitedPerWalk: Double(visited) / Double(walks), foundPerWalk: Double(found) / Double(walks))
    }

    func benchLibraryWalk(processes n: Int, walks: Int, cpu: CPU) -> BenchFileWalkFigure? {
        let k = kernel
        guard n >= 1, n < config.maxProcesses, config.libraries >= 1 else { return nil }
        var mms: [UInt32] = []
        defer { for mm in mms { benchExit(mm, cpu) } }
        var frame: UInt32 = 0
        for _ in 0..<n {
            let mm = benchSpawnMM(cpu)
            guard mm != 0 else { return nil }
            mms.append(mm)
            // The library's VMA: the one whose file is inode 1.
            var start: UInt64?
            for t in 0..<MachineConfig.maxVMAs {
                let v = k.vmaHandle(mm, t)
                if v != 0 && VMAFile.inode(k.vmaFile(v)) == 1 { start = k.vmaStart(v) }
            }
            guard let start, k.fault(mm, vpn: start, write: false, cpu) == .ok else { return nil }
            frame = benchFrameAt(mm, start)
        }
        return benchFileWalks([frame], mappings: Int(k.files.inode[1].mappings.load(ordering: .relaxed)), walks: walks, cpu)
    }

    func benchFileWindowsWalk(mappings m: Int, walks: Int, cpu: CPU) -> BenchFileWalkFigure? {
        let k = kernel
        guard m >= 1, config.inodes >= 1, k.files.maxPages % m == 0 else { return nil }
        let window = k.files.maxPages / m
        let perProcess = 8
        guard (m + perProcess - 1) / perProcess < config.maxProcesses else { return nil }
        var mms: [UInt32] = []
        defer { for mm in mms { benchExit(mm, cpu) } }
        var frames: [UInt32] = []
        for w in 0..<m {
            if w % perProcess == 0 {
                let mm = benchSpawnMM(cpu)
                guard mm != 0 else { return nil }
                mms.append(mm)
            }
            let mm = mms[mms.count - 1]
            let v = k.mmapFile(mm, inode: 1, pgoff: UInt64(w * window), pages: window, shared: true, cpu)
            guard v != 0, k.fault(mm, vpn: k.vmaStart(v) + UInt64(window / 2), write: false, cpu) == .ok else { return nil }
            frames.append(benchFrameAt(mm, k.vmaStart(v) + UInt64(window / 2)))
        }
        return benchFileWalks(frames, mappings: m, walks: walks, cpu)
    }
}
