#!/usr/bin/env bash
# Same-run scaling ratios of the model against the machine's own ceiling,
# for the workloads README names, as medians over interleaved repeats:
#   t2/t1        2 threads over 1 thread (completed ops/s)
#   ceiling      two independent 1-thread processes at once over one alone:
#                the scaling this machine allows a workload that shares nothing
#   t2/ceiling   how much of that the model reaches (target >= 0.9)
#   full/off     --checks full over --checks off at 2 threads (target >= 0.8)
#   spread       (max - min) / median of each point's repeats (target <= 10%);
#                then of t2/t1 taken repeat by repeat (adjacent runs: a slow
#                drift of the machine cancels out, swings within seconds do
#                not), and of the ceiling, which shares nothing and so is the
#                machine's own noise
# Every 2-thread run also records how long a cache line takes to go from
# CPU 0 to CPU 1 and back (cross_core_round_trip_ns, before and after). On a
# VM that changes as the hypervisor moves the virtual CPUs, and shared-data
# runs change with it; a second table splits the 2-thread runs into "near"
# (every probe within 2x of the fastest probe seen) and "far".
# Each repeat runs every variant of every workload once, in turn, so slow
# drift of a shared machine hits them alike.
#
# RATIOS_SIZING=weak gives the 2-thread runs twice each size of the workload
# (frames, swap slots, processes, population), so that each thread keeps one
# thread's worth, as `scale --per-thread-size` does; the default (strong)
# runs both on one table, where each of 2 threads (locality 100) works over
# half the processes the 1-thread run does and so fits cache better: its
# t2/t1 can pass the ceiling for that reason alone.
#
#   scripts/ratios.sh [repeats] [seconds] [workload ...]
#   (defaults: 5 repeats of 4 s after 1 s of warm-up; all workloads)
#   STRESS_BIN=path uses that binary instead of building the release one.
#   RATIOS_BASE=REF also builds commit REF (scripts/build-base.sh) and runs
#   its 1- and 2-thread points in every repeat, beside the new ones and
#   against the same ceiling: a before/after that drift cannot fake.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-5}"
secs="${2:-4}"
shift $(( $# > 2 ? 2 : $# )) || true
if [ -z "${STRESS_BIN:-}" ]; then
    scripts/ensure-deps.sh
    swift build -c release --product stress >&2
    STRESS_BIN=.build/release/stress
fi
if [ -n "${RATIOS_BASE:-}" ]; then
    RATIOS_BASE_BIN=$(scripts/build-base.sh "$RATIOS_BASE")
    export RATIOS_BASE_BIN
fi
exec python3 - "$STRESS_BIN" "$repeats" "$secs" "$@" <<'PY'
import json, os, statistics, subprocess, sys, tempfile

binary, repeats, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
base_binary = os.environ.get("RATIOS_BASE_BIN")
sizing = os.environ.get("RATIOS_SIZING", "strong")
if sizing not in ("strong", "weak"):
    sys.exit(f"ratios: RATIOS_SIZING must be strong or weak (got '{sizing}')")
# The sizes weak sizing multiplies: option, and its key in a run's recorded
# settings.
size_keys = {"--frames": "frames", "--swap-slots": "swap_slots", "--processes": "processes", "--population": "population"}

def sized(w, args, one, k):
    """The workload's arguments with every size times k (weak sizing only),
    taken from `one`, the settings its 1-thread run recorded: so stress's
    own defaults fill in the sizes the workload leaves out."""
    if sizing == "strong" or k == 1:
        return args
    out, i = [], 0
    while i < len(args):
        if args[i] in size_keys:
            i += 2
        else:
            out.append(args[i])
            i += 1
    for name, key in size_keys.items():
        v = one[key]
        out += [name, str(v if name in weak_keeps.get(w, ()) else v * k)]
    return out

# name: (arguments, held to the targets?)
workloads = {
    "default": ([], True),
    "walk-heavy": (["--mix", "fault=20,fork=5,exit=5,reclaim=35,migrate=35", "--frames", "1024"], True),
    "fault-only": (["--mix", "fault=100", "--frames", "262144", "--population", "128"], True),
    "one-process": (["--mix", "fault=100", "--frames", "262144", "--processes", "1", "--population", "1"], False),
}
# Sizes weak sizing leaves alone: the one-process workload stays one process.
weak_keeps = {
    "one-process": {"--processes", "--population"},
}
chosen = sys.argv[4:] or list(workloads)
for w in chosen:
    if w not in workloads:
        sys.exit(f"ratios: unknown workload '{w}' (known: {', '.join(workloads)})")
tmp = tempfile.mkdtemp(prefix="crmap-ratios-")
common = ["--quiet", "--duration", secs, "--warmup", "1", "--gp-probe-interval", "1", "--latency-sample", "16", "--locality", "100"]

def start(args, tag, exe=None):
    path = os.path.join(tmp, tag + ".json")
    return subprocess.Popen([exe or binary, "run", *args, *common, "--json", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path

probes = {}  # run tag -> cross-core round trips (ns) of that run
settings_of = {}  # run tag -> the settings that run recorded

def rate(procs):
    total = 0.0
    for p, path in procs:
        rc = p.wait()
        r = json.load(open(path))
        if r["verdict"] != "SUCCESS":
            sys.exit(f"ratios: a run ended {r['verdict']} (exit {rc}): {path}")
        total += r["ops_per_s"]
        settings_of[os.path.basename(path)[:-5]] = r["settings"]
        if r.get("cross_core_round_trip_ns"):
            probes[os.path.basename(path)[:-5]] = r["cross_core_round_trip_ns"]
    return total

data = {w: {"t1": [], "t2": [], "off": [], "ceil": [], "bt1": [], "bt2": []} for w in chosen}
for rep in range(repeats):
    for w in chosen:
        args, _ = workloads[w]
        seed = ["--seed", str(1000 + rep)]
        d = data[w]
        d["t1"].append(rate([start(args + seed + ["--threads", "1"], f"{w}-t1-{rep}")]))
        two = sized(w, args, settings_of[f"{w}-t1-{rep}"], 2)
        d["t2"].append(rate([start(two + seed + ["--threads", "2"], f"{w}-t2-{rep}")]))
        d["off"].append(rate([start(two + seed + ["--threads", "2", "--checks", "off"], f"{w}-off-{rep}")]))
        if base_binary:
            d["bt1"].append(rate([start(args + seed + ["--threads", "1"], f"{w}-bt1-{rep}", base_binary)]))
            d["bt2"].append(rate([start(two + seed + ["--threads", "2"], f"{w}-bt2-{rep}", base_binary)]))
        d["ceil"].append(rate([start(args + ["--seed", str(2000 + rep), "--threads", "1"], f"{w}-ca-{rep}"),
                               start(args + ["--seed", str(3000 + rep), "--threads", "1"], f"{w}-cb-{rep}")]))
        x = probes.get(f"{w}-t2-{rep}", [])
        print(f"repeat {rep + 1}/{repeats} {w}: t1 {d['t1'][-1]:,.0f}  t2 {d['t2'][-1]:,.0f}  "
              f"t2 checks off {d['off'][-1]:,.0f}  ceiling {d['ceil'][-1]:,.0f} ops/s  "
              f"(t2 cross-core {', '.join(f'{v:.0f}' for v in x) or '-'} ns)", file=sys.stderr)

def med(v): return statistics.median(v)
def spread(v): return (max(v) - min(v)) / med(v) * 100
print(f"{'workload':12} {'t1 ops/s':>12} {'t2 ops/s':>12} {'t2/t1':>7} {'ceiling':>8} {'t2/ceil':>8} {'full/off':>9} "
      f"{'spread t1,t2':>14} {'t2/t1':>6} {'ceiling':>8}   (medians of {repeats} interleaved repeats of {secs} s, {sizing} sizing)")
for w in chosen:
    d = data[w]
    t1, t2 = med(d["t1"]), med(d["t2"])
    ratios = [b / a for a, b in zip(d["t1"], d["t2"])]
    ceil = [c / a for a, c in zip(d["t1"], d["ceil"])]
    of_ceiling = [r / c for r, c in zip(ratios, ceil)]
    checks = [a / b for a, b in zip(d["t2"], d["off"])]
    held = "" if workloads[w][1] else "  (reported, not held to the targets)"
    print(f"{w:12} {t1:>12,.0f} {t2:>12,.0f} {med(ratios):>7.2f} {med(ceil):>8.2f} {med(of_ceiling):>8.2f} "
          f"{med(checks):>9.2f} {spread(d['t1']):>6.1f}%,{spread(d['t2']):>5.1f}% {spread(ratios):>5.1f}% {spread(d['ceil']):>7.1f}%{held}")

if base_binary:
    print(f"\nbase {os.environ.get('RATIOS_BASE')} in the same repeats, against the same ceiling")
    print(f"{'workload':12} {'t1 ops/s':>12} {'t2 ops/s':>12} {'t2/t1':>7} {'t2/ceil':>8} {'spread t1,t2':>14} {'new/base t2/ceil':>17}")
    for w in chosen:
        d = data[w]
        # Each side's t2/t1 over the machine's ceiling (ceiling runs over the new t1).
        ceiling = [c / a for a, c in zip(d["t1"], d["ceil"])]
        of_ceiling = lambda t1, t2: [b / a / x for a, b, x in zip(t1, t2, ceiling)]
        new, old = of_ceiling(d["t1"], d["t2"]), of_ceiling(d["bt1"], d["bt2"])
        ratios = [b / a for a, b in zip(d["bt1"], d["bt2"])]
        print(f"{w:12} {med(d['bt1']):>12,.0f} {med(d['bt2']):>12,.0f} {med(ratios):>7.2f} {med(old):>8.2f} "
              f"{spread(d['bt1']):>6.1f}%,{spread(d['bt2']):>5.1f}% {med(new) / med(old):>17.2f}")

fastest = min((v for x in probes.values() for v in x), default=0)
if fastest > 0:
    print(f"\n2-thread runs by cross-core placement (near: every probe <= {2 * fastest:.0f} ns, twice the fastest seen)")
    print(f"{'workload':12} {'near':>5} {'t2/ceil near':>13} {'far':>4} {'t2/ceil far':>12}")
    for w in chosen:
        d = data[w]
        near, far = [], []
        for rep in range(repeats):
            x = probes.get(f"{w}-t2-{rep}")
            if not x:
                continue
            v = d["t2"][rep] / d["ceil"][rep]
            (near if max(x) <= 2 * fastest else far).append(v)
        fmt = lambda v: f"{med(v):.2f}" if v else "-"
        print(f"{w:12} {len(near):>5} {fmt(near):>13} {len(far):>4} {fmt(far):>12}")
PY
