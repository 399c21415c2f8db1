// swift-tools-version: 6.1
import PackageDescription

let urcuLibraries: [LinkerSetting] = [
    .linkedLibrary("urcu-memb"), .linkedLibrary("urcu-qsbr"), .linkedLibrary("urcu-mb"),
    .linkedLibrary("urcu-bp"), .linkedLibrary("urcu-common"), .linkedLibrary("pthread"),
]

// ThreadSanitizer builds set CRMAP_TSAN=1 (see scripts/tsan.sh). Swift's clang
// importer does not see -fsanitize=thread, so the shim's TSan mode is switched
// explicitly for the C target and for every Swift module that inlines it.
let tsan = Context.environment["CRMAP_TSAN"] == "1"
let shimC: [CSetting] = tsan ? [.define("CRM_TSAN", to: "1")] : []
let shimSwift: [SwiftSetting] = tsan ? [.unsafeFlags(["-Xcc", "-DCRM_TSAN=1"])] : []

// The model is specialized once per (rmap scheme, platform) pair. LLVM's
// function merging folds those near-identical specializations back into one
// body that takes the differing callees as arguments: indirect calls on the
// hot paths, and 5-15% slower operations (measured with
// scripts/bench-vs-base.sh). Each specialization keeps its own body.
//
// Every function of the model starts on a 64-byte boundary, so that a hot
// loop's position against fetch and cache-line boundaries does not shift
// with unrelated edits: one tree built without and with it ran the walk and
// migration benchmarks 8% and 6% apart. It does not remove all of the
// variance between builds: two builds whose model code sits at the same
// addresses still differed by up to 9% on walk and migration (data placement
// and the driver's code moved), so compare builds with
// scripts/bench-instructions.sh as well as with scripts/bench-vs-base.sh.
let modelSwift: [SwiftSetting] = shimSwift + [
    .unsafeFlags(["-Xllvm", "-swiftmergefunc-threshold=0",
                  "-Xllvm", "-align-all-functions=6"],
                 .when(configuration: .release)),
]

let package = Package(
    name: "ConcurrentRmap",
    products: [
        .library(name: "ConcurrentRmap", targets: ["ConcurrentRmap"]),
        .library(name: "RmapTrace", targets: ["RmapTrace"]),
        .library(name: "TraceReplay", targets: ["TraceReplay"]),
        .executable(name: "stress", targets: ["Stress"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C shim: the only target that includes liburcu headers.
        .target(name: "URCUShim", cSettings: shimC, linkerSettings: urcuLibraries),
        // C shim for the stress tool's process-level services (signals, CPU pinning).
        .target(name: "StressShim"),
        // The commit the binary was built from, recorded at build time.
        .plugin(name: "BuildIdentityPlugin", capability: .buildTool()),
        .target(name: "BuildIdentity", plugins: ["BuildIdentityPlugin"]),
        // The model: frames, mms, anongroups, operations, invariants. No Swift dependencies.
        .target(name: "ConcurrentRmap", dependencies: ["URCUShim"], swiftSettings: modelSwift),
        // The stress tool's shared plumbing, with no model dependency: the
        // atomic file writer, the child-process launcher, signal names, the
        // HTML escaper, host facts (CPU count, affinity, pinning slots),
        // threads and the monotonic clock, JSON trees, digests.
        .target(name: "StressSupport", dependencies: [
            "StressShim",
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: shimSwift),
        // One stress run: settings, workers and their hot loop, workload,
        // audits, watchdog, grace-period probe, latency histograms, results
        // and result files, signals, a run in a child process.
        .target(name: "RunEngine", dependencies: [
            "ConcurrentRmap", "StressShim", "StressSupport", "BuildIdentity",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ], swiftSettings: shimSwift),
        // Controlled runs: one schedule, exploration, shrinking, schedule files.
        .target(name: "Exploration", dependencies: [
            "ConcurrentRmap", "StressSupport", "RunEngine",
        ], swiftSettings: shimSwift),
        // Measurement: benchmarks, scale sweeps, their statistics, comparison,
        // charts and reports; the scheme comparison and its report.
        .target(name: "Measurement", dependencies: [
            "ConcurrentRmap", "StressSupport", "RunEngine", "RmapTrace",
        ], swiftSettings: shimSwift),
        // Campaigns: plans, results folders, the local and Slurm executors,
        // cell records, failure signatures and reports.
        .target(name: "Campaigns", dependencies: [
            "ConcurrentRmap", "StressSupport", "RunEngine",
        ], swiftSettings: shimSwift),
        // zlib, for the gzip-compressed trace files.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Real programs' process and memory system calls: the strace importer,
        // the trace format (reader, writer) and its statistics. Independent of the model.
        .target(name: "RmapTrace", dependencies: ["CZlib"]),
        // Replays a trace on the model: every mm a process, its events in
        // order, unrelated mms on concurrent workers, with the full checks.
        // Depends on the model and the trace library only.
        .target(name: "TraceReplay", dependencies: ["ConcurrentRmap", "RmapTrace", "StressSupport"], swiftSettings: shimSwift),
        // The `stress` command line.
        .executableTarget(name: "Stress", dependencies: [
            "ConcurrentRmap", "StressSupport", "RunEngine", "Exploration", "Measurement", "Campaigns", "RmapTrace", "TraceReplay",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: shimSwift),
        .testTarget(name: "ConcurrentRmapTests", dependencies: ["ConcurrentRmap"], swiftSettings: shimSwift),
        .testTarget(name: "RmapTraceTests", dependencies: ["RmapTrace"], exclude: ["Fixtures"]),
        .testTarget(name: "StressSupportTests", dependencies: ["StressSupport"], swiftSettings: shimSwift),
        .testTarget(name: "RunEngineTests", dependencies: ["RunEngine", "StressSupport"], swiftSettings: shimSwift),
        .testTarget(name: "ExplorationTests", dependencies: ["Exploration", "RunEngine", "StressSupport"], swiftSettings: shimSwift),
        .testTarget(name: "MeasurementTests", dependencies: ["Measurement", "RunEngine", "StressSupport", "RmapTrace"], swiftSettings: shimSwift),
        .testTarget(name: "CampaignsTests", dependencies: ["Campaigns", "RunEngine", "StressSupport"], swiftSettings: shimSwift),
        // The `stress` executable run as a child: exit statuses, usage errors, signals.
        .testTarget(name: "StressTests", dependencies: ["RunEngine", "Measurement", "StressSupport"], swiftSettings: shimSwift),
        .testTarget(name: "TraceReplayTests", dependencies: ["TraceReplay", "RmapTrace", "ConcurrentRmap"],
                    exclude: ["Fixtures"], swiftSettings: shimSwift),
    ]
)
