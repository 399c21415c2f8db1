#!/usr/bin/env bash
# Where a short run's time goes: N runs of `stress run --threads 2
# --duration 0.3 --warmup 0` (options after N are added), each timed from
# exec to exit, with the run's own figures from its result file: wall_s
# (set-up to result), start-up (what is not warm-up, measuring or
# stopping), the cross-core probe's round trips. Then how long a Ctrl-C
# sent 0.2 s after start takes to end the process.
#
#   scripts/startup-time.sh [N] [STRESS OPTIONS...]
#   (STRESS defaults to .build/release/stress; build it with
#    swift build -c release --product stress)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
[ $# -gt 0 ] && shift
stress=${STRESS:-.build/release/stress}
[ -x "$stress" ] || { echo "startup-time: no $stress (swift build -c release --product stress)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
echo "run  process_s  wall_s  measured_s  cross_core_round_trip_ns"
for i in $(seq 1 "$n"); do
    t0=$(now)
    "$stress" run --threads 2 --duration 0.3 --warmup 0 --quiet --seed "$i" --json "$tmp/r.json" "$@" >/dev/null
    t1=$(now)
    python3 - "$tmp/r.json" "$i" "$t0" "$t1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cc = r.get("cross_core_round_trip_ns") or []
print("%3s  %9.2f  %6.2f  %10.2f  %s" % (sys.argv[2], float(sys.argv[4]) - float(sys.argv[3]), r["wall_s"], r["elapsed_s"],
                                        " ".join("%.0f" % x for x in cc) or "-"))
PY
done
for i in 1 2 3; do
    t0=$(now)
    "$stress" run --threads 2 --duration 30 --quiet --seed "$i" "$@" >/dev/null 2>&1 &
    pid=$!
    sleep 0.2
    kill -INT "$pid"
    set +e; wait "$pid"; status=$?; set -e
    t1=$(now)
    python3 -c "import sys; print('Ctrl-C at 0.2 s: exit %s after %.2f s' % (sys.argv[1], float(sys.argv[3]) - float(sys.argv[2])))" "$status" "$t0" "$t1"
done
