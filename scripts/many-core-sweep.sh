#!/usr/bin/env bash
# A scalability sweep for a many-core machine that has no Swift: run it
# next to a static `stress` (scripts/build-static.sh makes one; it needs
# nothing on the target but Linux with /proc).
#
#   scripts/many-core-sweep.sh [STRESS_BIN] [OUT_DIR]
#   (defaults: out/stress-static, scale-<CPUs>cpu)
#
# CPUs means the CPUs this process may use (`nproc`: the affinity mask of a
# container or taskset), further capped by a cgroup CPU quota, not the CPUs
# online. Thread counts 1, 2, 4, ... up to that count (and the count
# itself), the group-list protections of SWEEP_SYNC, SWEEP_REPEAT
# interleaved repeats of SWEEP_DURATION s after 1 s of warm-up, the
# machine's ceiling (independent 1-thread processes, each pinned to its own
# CPU) at each count, workers pinned to CPUs; then `stress bench`.
#
#   SWEEP_SYNC      default rcu,rwlock,mutex
#   SWEEP_REPEAT    default 3
#   SWEEP_DURATION  default 5 (seconds per run)
#   SWEEP_SCHEME    default anongroup
#   SWEEP_SIZING    weak (default): 4096 frames and 256 processes per thread,
#                   `scale --per-thread-size`, as will-it-scale gives each
#                   task its own work; strong: one table of 4096 frames and
#                   256 processes per CPU for every thread count (then the
#                   1-thread run's working set is N times each worker's at
#                   N threads, and the curve can rise above N)
#
# Everything it writes is in OUT_DIR: the scale report (report.html,
# runs.csv, runs.json, ceiling.json, meta.json), host.txt (what the machine
# said about its CPUs), bench.txt and bench.json. Exit status: that of the
# sweep.
set -euo pipefail
bin="${1:-out/stress-static}"
cpus="$(nproc)"
if [ -r /sys/fs/cgroup/cpu.max ]; then
    read -r quota period < /sys/fs/cgroup/cpu.max || true
    if [ "${quota:-max}" != max ] && [ "${period:-0}" -gt 0 ]; then
        q=$(( (quota + period - 1) / period ))
        [ "$q" -ge 1 ] && [ "$q" -lt "$cpus" ] && cpus=$q
    fi
fi
out="${2:-scale-${cpus}cpu}"
sync="${SWEEP_SYNC:-rcu,rwlock,mutex}"
repeat="${SWEEP_REPEAT:-3}"
duration="${SWEEP_DURATION:-5}"
scheme="${SWEEP_SCHEME:-anongroup}"
case "${SWEEP_SIZING:-weak}" in
    weak) sizing=(--per-thread-size --frames 4096 --processes 256) ;;
    strong) sizing=(--frames $((4096 * cpus)) --processes $((256 * cpus))) ;;
    *) echo "many-core-sweep: SWEEP_SIZING must be weak or strong (got '$SWEEP_SIZING')" >&2; exit 2 ;;
esac
[ -x "$bin" ] || { echo "many-core-sweep: no executable at $bin (build one with scripts/build-static.sh)" >&2; exit 2; }
threads=1
t=2
while [ "$t" -lt "$cpus" ]; do threads="$threads,$t"; t=$((t * 2)); done
[ "$cpus" -gt 1 ] && threads="$threads,$cpus"
mkdir -p "$out"
{
    echo "nproc: $(nproc)"
    echo "online: $(getconf _NPROCESSORS_ONLN)"
    echo "cgroup cpu.max: $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo none)"
    echo "swept up to: $cpus"
    grep -m1 "model name" /proc/cpuinfo || true
    uname -a
    command -v lscpu >/dev/null && lscpu || true
    command -v lscpu >/dev/null && lscpu -e=CPU,CORE,SOCKET,NODE,L3 2>/dev/null || true
} > "$out/host.txt" 2>&1
nsync=$(( $(tr -cd , <<<"$sync" | wc -c) + 1 ))
npoints=$(( $(tr -cd , <<<"$threads" | wc -c) + 1 ))
echo "many-core-sweep: $cpus CPUs, threads $threads, sync $sync, $repeat x ${duration}s, ${SWEEP_SIZING:-weak} scaling, into $out" \
     "(about $(( (npoints * nsync + npoints - 1) * repeat * (duration + 1) + 60 )) s)"
status=0
"$bin" scale --scheme "$scheme" --threads "$threads" --sync "$sync" --repeat "$repeat" --duration "$duration" \
    --warmup 1 --pin "${sizing[@]}" --out "$out" || status=$?
"$bin" bench --scheme "$scheme" --json "$out/bench.json" > "$out/bench.txt" 2>&1 || true
exit "$status"
