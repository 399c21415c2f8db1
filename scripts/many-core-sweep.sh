#!/usr/bin/env bash
# A scalability sweep for a many-core machine that has no Swift: run it
# next to a static `stress` (scripts/build-static.sh makes one; it needs
# nothing on the target but Linux with /proc).
#
#   scripts/many-core-sweep.sh [STRESS_BIN] [OUT_DIR]
#   (defaults: out/stress-static, scale-$(nproc)cpu)
#
# Thread counts 1, 2, 4, ... up to the online CPUs (and the CPU count itself),
# every group-list protection, 3 interleaved repeats of 5 s after 1 s of
# warm-up, the machine's ceiling (independent processes) at each count,
# workers pinned to CPUs; then `stress bench`. Everything it writes is in
# OUT_DIR: the scale report (report.html, runs.csv, runs.json, ceiling.json,
# meta.json), bench.txt and bench.json. Exit status: that of the sweep.
set -euo pipefail
bin="${1:-out/stress-static}"
cpus="$(getconf _NPROCESSORS_ONLN)"
out="${2:-scale-${cpus}cpu}"
[ -x "$bin" ] || { echo "many-core-sweep: no executable at $bin (build one with scripts/build-static.sh)" >&2; exit 2; }
threads=1
t=2
while [ "$t" -lt "$cpus" ]; do threads="$threads,$t"; t=$((t * 2)); done
[ "$cpus" -gt 1 ] && threads="$threads,$cpus"
mkdir -p "$out"
echo "many-core-sweep: $cpus CPUs, threads $threads, into $out"
status=0
"$bin" scale --threads "$threads" --sync rcu,rwlock,mutex --repeat 3 --duration 5 --warmup 1 --pin \
    --frames $((4096 * cpus)) --processes $((256 * cpus)) --out "$out" || status=$?
"$bin" bench --json "$out/bench.json" > "$out/bench.txt" 2>/dev/null || true
exit "$status"
