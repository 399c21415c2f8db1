#!/usr/bin/env bash
# `stress bench` of the working tree against a base commit, measured side by
# side in one run: both release builds take turns, round after round, so a
# noisy phase of the machine hits both alike. Prints each benchmark's median
# (over rounds of each round's median) for base and new, and new/base.
#
#   scripts/bench-vs-base.sh [BASE_REF] [ROUNDS] [-- extra stress bench options]
#
# BASE_REF defaults to HEAD (the last commit: what the working tree changes);
# ROUNDS to 5. The base is built from a git worktree under .build-base/
# (ignored by git). Extra options go to both sides (e.g. --work 0.5); an
# option the base does not know makes the script stop.
set -euo pipefail
cd "$(dirname "$0")/.."
base_ref=${1:-HEAD}
rounds=${2:-5}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
extra=("$@")
case "$rounds" in ''|*[!0-9]*) echo "bench-vs-base: ROUNDS must be a whole number (got '$rounds')" >&2; exit 2;; esac
[ "$rounds" -ge 1 ] || { echo "bench-vs-base: ROUNDS must be at least 1" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench-vs-base: python3 is needed to compare the JSON results" >&2; exit 2; }

base_sha=$(git rev-parse --verify --quiet "$base_ref^{commit}") || { echo "bench-vs-base: unknown ref '$base_ref'" >&2; exit 2; }
base_bin=$(scripts/build-base.sh "$base_sha")
echo "building the working tree (release)..." >&2
swift build -c release >/dev/null
new_bin=.build/release/stress

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq 1 "$rounds"); do
    echo "round $r of $rounds" >&2
    "$base_bin" bench --repeat 3 --json "$out/base-$r.json" "${extra[@]}" >/dev/null 2>&1
    "$new_bin" bench --repeat 3 --json "$out/new-$r.json" "${extra[@]}" >/dev/null 2>&1
done

python3 - "$out" "$rounds" "$(git rev-parse --short "$base_sha")" <<'EOF'
import json, statistics, sys
out, rounds, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(side):
    rows = {}
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{out}/{side}-{r}.json"))["rows"]:
            rows.setdefault(row["name"], []).append(row["ns_per_op"]["median"])
    return rows
b, n = load("base"), load("new")
print(f"stress bench, base {base} against the working tree, {rounds} alternating rounds (median of round medians)")
print(f"{'benchmark':44} {'base ns':>10} {'new ns':>10} {'new/base':>9}")
worst = 0.0
for name in b:
    if name not in n:
        print(f"{name:44} {statistics.median(b[name]):10.2f} {'-':>10} {'-':>9}")
        continue
    x, y = statistics.median(b[name]), statistics.median(n[name])
    ratio = y / x if x > 0 else float("nan")
    worst = max(worst, ratio)
    print(f"{name:44} {x:10.2f} {y:10.2f} {ratio:9.3f}")
for name in n:
    if name not in b:
        print(f"{name:44} {'-':>10} {statistics.median(n[name]):10.2f} {'(new)':>9}")
print(f"slowest ratio: {worst:.3f}")
EOF
