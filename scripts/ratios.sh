#!/usr/bin/env bash
# Same-run ratios for the README and issue notes, as medians over repeats:
#   1. default mix, 2 threads over 1 thread (ops/s);
#   2. always-on checks: --checks full over --checks off at 2 threads;
#   3. the machine's own ceiling for this workload: two independent 1-thread
#      processes at once (nothing shared) over one alone. A 2-thread ratio
#      is only as good as this allows.
# Runs are interleaved (1,2,full,off, 1,2,full,off, ...) so that drift in a
# shared machine's load hits every variant alike.
#   scripts/ratios.sh [repeats] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-5}"
secs="${2:-10}"
swift build -c release --product stress >&2
bin=.build/release/stress
tmp=$(mktemp -d)
for r in $(seq "$repeats"); do
    $bin --threads 1 --duration "$secs" --seed "$r" --quiet --json "$tmp/t1-$r.json" >/dev/null
    $bin --threads 2 --duration "$secs" --seed "$r" --quiet --json "$tmp/t2-$r.json" >/dev/null
    $bin --threads 2 --duration "$secs" --seed "$r" --quiet --checks full --json "$tmp/full-$r.json" >/dev/null
    $bin --threads 2 --duration "$secs" --seed "$r" --quiet --checks off --json "$tmp/off-$r.json" >/dev/null
    $bin --threads 1 --duration "$secs" --seed "$r" --quiet --json "$tmp/pa-$r.json" >/dev/null &
    $bin --threads 1 --duration "$secs" --seed "$((r + 1000))" --quiet --json "$tmp/pb-$r.json" >/dev/null
    wait
done
python3 - "$tmp" "$repeats" <<'PY'
import json, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
def rate(name, r): return json.load(open(f"{d}/{name}-{r}.json"))["ops_per_s"]
for a, b, label in [("t2", "t1", "2 threads / 1 thread"), ("full", "off", "checks full / checks off")]:
    ra = [rate(a, r) for r in range(1, n + 1)]
    rb = [rate(b, r) for r in range(1, n + 1)]
    ratios = [x / y for x, y in zip(ra, rb)]
    print(f"{label}: median ratio {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); "
          f"medians {statistics.median(ra):,.0f} vs {statistics.median(rb):,.0f} ops/s over {n} repeats")
pair = [(rate("pa", r) + rate("pb", r)) / rate("t1", r) for r in range(1, n + 1)]
print(f"two independent 1-thread processes / one alone: median ratio {statistics.median(pair):.3f} "
      f"(min {min(pair):.3f}, max {max(pair):.3f}): the machine's ceiling for this workload")
PY
rm -rf "$tmp"
