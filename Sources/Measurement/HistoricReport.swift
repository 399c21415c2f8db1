import ConcurrentRmap
import RunEngine
import StressSupport

/// Section 7 of the scheme report and its CSVs: the workloads the designs
/// were argued over, with the field's figures beside ours.
enum HistoricReport {
    typealias R = SchemeReport

    static func aim7CSV(_ a: [AIM7Run]) -> String {
        R.rows(["scheme", "children", "pages", "cow_pages", "repeat", "visits_per_page", "wasted_per_page", "child_copy_visited",
                "parent_own_visited", "shared_visited", "ns_per_walk", "contexts", "links", "rmap_bytes", "verdict"],
               a.map { [$0.scheme, "\($0.children)", "\($0.pages)", "\($0.cowPages)", "\($0.repeatIndex)", R.d($0.visitsPerPage, 3),
                        R.d($0.wastedPerPage, 3), "\($0.childCopy.visited)", "\($0.parentOwn.visited)", "\($0.shared.visited)",
                        R.d($0.nsPerWalk), "\($0.metadata.contexts)", "\($0.metadata.links)", "\($0.metadata.bytes)", $0.verdict] })
    }

    static func chainCSV(_ c: [ForkChainRun]) -> String {
        R.rows(["scheme", "reuse", "generation", "contexts", "links", "max_chain", "rmap_bytes", "live_mms", "live_vmas", "walk_visited", "walk_found", "verdict"],
               c.flatMap { r in r.samples.map { x in
                   [r.scheme, r.reuse ? "1" : "0", "\(x.generation)", "\(x.metadata.contexts)", "\(x.metadata.links)", "\(x.metadata.maxChain)",
                    "\(x.metadata.bytes)", "\(x.metadata.liveMMs)", "\(x.metadata.liveVMAs)", "\(x.visited)", "\(x.found)", r.verdict]
               } })
    }

    static func zygoteCSV(_ z: [ZygoteRun]) -> String {
        R.rows(["scheme", "children", "vmas", "contexts", "links", "max_chain", "rmap_bytes", "zygote_only_bytes", "bytes_per_child", "verdict"],
               z.map { [$0.scheme, "\($0.children)", "\($0.vmas)", "\($0.metadata.contexts)", "\($0.metadata.links)", "\($0.metadata.maxChain)",
                        "\($0.metadata.bytes)", "\($0.zygoteOnly.bytes)", R.d($0.bytesPerChild), $0.verdict] })
    }

    static func html(_ o: SchemeComparison) -> String {
        guard !o.aim7.isEmpty || !o.forkChain.isEmpty || !o.zygote.isEmpty || !o.forkHeavy.isEmpty else { return "" }
        let schemes = R.orderedSchemes(o.meta.schemes)
        var h = "<h2>7. The workloads the designs were argued over</h2>\n"
        if !o.aim7.isEmpty {
            let a = o.aim7[0]
            h += "<h3>AIM7: one parent, N children each writing most of an inherited range</h3>\n"
            h += "<p class=\"note\">The parent writes \(a.pages) pages of one VMA and forks N children; each child writes the first \(a.cowPages) of them (copy on write). Each kind of page is walked as migration walks it: a child's copy (N×\(a.cowPages) pages), the parent's page every child copied (now the parent's alone, \(a.cowPages) pages), a page nobody wrote (mapped by all, \(a.pages - a.cowPages) pages). <i>visits per page</i> averages the objects visited (mms or VMAs) over every mapped page of the family. Field (Rik van Riel, 2010): 1,000 children × 1,000 pages put a million pages on one anon_vma; 75% of cycles spun on its lock; anon_vma_chain cut the average scan to about 2.</p>\n<table>\n"
            h += R.header(["children"] + schemes.flatMap { ["\($0) visits/page", "wasted/page", "child copy visited", "ns/walk"] })
            for n in Set(o.aim7.map(\.children)).sorted() {
                h += "<tr>\(R.cell("\(n)", left: true))"
                for sc in schemes {
                    let v = o.aim7.filter { $0.scheme == sc && $0.children == n }
                    let bad = v.contains { $0.verdict != Verdict.success }
                    h += R.cell(v.isEmpty ? "–" : R.d(SchemeCompare.median(v.map(\.visitsPerPage)), 2) + (bad ? " (FAILED)" : ""))
                    h += R.cell(v.isEmpty ? "–" : R.d(SchemeCompare.median(v.map(\.wastedPerPage)), 2))
                    h += R.cell(v.first.map { "\($0.childCopy.visited)" } ?? "–")
                    h += R.cell(v.isEmpty ? "–" : R.us(SchemeCompare.median(v.map(\.nsPerWalk))))
                }
                h += "</tr>\n"
            }
            h += "</table>\n"
        }
        if !o.forkChain.isEmpty {
            h += "<h3>The fork chain: each process forks the next and exits</h3>\n"
            h += "<p class=\"note\">Each generation's child writes one page of the inherited range, then its parent exits. Live objects after a grace period, sampled along the chain. Field: before Linux 3.19 such chains grew the anon_vma hierarchy without bound; the reuse rule (an anon_vma with no active VMAs and at most one child is reused; since the CVE-2022-42703 fix counted as children and active VMAs) bounds it.</p>\n<table>\n"
            h += R.header(["scheme", "reuse", "generation", "contexts", "links", "longest chain", "rmap bytes", "walk visited/found"])
            for r in o.forkChain {
                for x in r.samples {
                    h += "<tr\(r.verdict != Verdict.success ? " class=\"fail\"" : "")>\(R.cell(r.scheme, left: true))\(R.cell(r.reuse ? "on" : "off"))\(R.cell("\(x.generation)"))\(R.cell("\(x.metadata.contexts)"))\(R.cell("\(x.metadata.links)"))\(R.cell("\(x.metadata.maxChain)"))\(R.cell("\(x.metadata.bytes) B"))\(R.cell("\(x.visited)/\(x.found)"))</tr>\n"
                }
            }
            h += "</table>\n"
        }
        if !o.zygote.isEmpty {
            let z = o.zygote[0]
            h += "<h3>The zygote: long-lived children of one parent</h3>\n"
            h += "<p class=\"note\">A parent with \(z.vmas) VMAs (each written) forks \(z.children) children that stay, each writing one page per VMA. Live rmap metadata as the kernel's slabs would count it. Field (Android, 2026): anon_vma + anon_vma_chain slabs about 20 + 19 MB after boot, 33 + 32 MB after 24 apps.</p>\n<table>\n"
            h += R.header(["scheme", "contexts", "links", "longest chain", "rmap bytes", "zygote alone", "bytes per child"])
            for r in o.zygote {
                h += "<tr\(r.verdict != Verdict.success ? " class=\"fail\"" : "")>\(R.cell(r.scheme, left: true))\(R.cell("\(r.metadata.contexts)"))\(R.cell("\(r.metadata.links)"))\(R.cell("\(r.metadata.maxChain)"))\(R.cell("\(r.metadata.bytes) B"))\(R.cell("\(r.zygoteOnly.bytes) B"))\(R.cell(R.d(r.bytesPerChild, 0) + " B"))</tr>\n"
            }
            h += "</table>\n"
        }
        if !o.forkHeavy.isEmpty {
            h += "<h3>Fork-heavy throughput: the list lock as a read-write lock or a mutex</h3>\n"
            h += "<p class=\"note\">\(o.forkHeavyRuns.first.map { "Mix \($0.result.settings.mix)" } ?? ""); medians over repeats. Field: Linux 3.8 made the anon_vma lock an rwsem and AIM7's fork test lost 50% until writer lock stealing; exim stayed 8% slower than with the mutex. glibc's rwlock (reader-preferring) stands for the rwsem here.</p>\n"
            h += R.throughputTable(o, o.forkHeavy, runs: o.forkHeavyRuns, syncs: Array(Set(o.forkHeavy.map(\.sync))).sorted())
        }
        return h
    }
}
