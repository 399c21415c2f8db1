#!/usr/bin/env bash
# Instructions executed by each `stress bench` benchmark, base commit against
# the working tree, counted by valgrind's callgrind: a figure that does not
# move with code placement or with the machine's load. Timed comparisons
# (scripts/bench-vs-base.sh) of two builds whose hot code is identical still
# differ by up to 10% on this machine for the lock-bound benchmarks (walk,
# migration), because the code lands at other addresses; use both.
#
#   scripts/bench-instructions.sh [BASE_REF] [WORK]
#
# BASE_REF defaults to HEAD; WORK (default 0.05) scales the iteration counts
# of both sides alike (`stress bench --work`). Needs valgrind, binutils'
# strip (valgrind 3.19 cannot read the DWARF 5 that Swift writes, so the
# copies it runs have their debug sections stripped; symbols stay) and
# python3. Counts are inclusive (everything a benchmark's function ran,
# set-up included, which is the same on both sides).
set -euo pipefail
cd "$(dirname "$0")/.."
base_ref=${1:-HEAD}
work=${2:-0.05}
for tool in valgrind callgrind_annotate strip python3 swift; do
    command -v "$tool" >/dev/null || { echo "bench-instructions: $tool is needed (apt-get install -y valgrind binutils python3)" >&2; exit 2; }
done
base_sha=$(git rev-parse --verify --quiet "$base_ref^{commit}") || { echo "bench-instructions: unknown ref '$base_ref'" >&2; exit 2; }
base_bin=$(scripts/build-base.sh "$base_sha")
echo "building the working tree (release)..." >&2
swift build -c release >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cp "$base_bin" "$out/base"
cp .build/release/stress "$out/new"
strip --strip-debug "$out/base" "$out/new"
for side in base new; do
    echo "callgrind: $side (a minute or two)" >&2
    valgrind --tool=callgrind --callgrind-out-file="$out/$side.cg" "$out/$side" bench --repeat 1 --work "$work" \
        >/dev/null 2>"$out/$side.log" || { tail -5 "$out/$side.log" >&2; exit 1; }
    callgrind_annotate --inclusive=yes --threshold=100 "$out/$side.cg" 2>/dev/null | swift demangle --simplified >"$out/$side.txt"
done
python3 - "$out" "$(git rev-parse --short "$base_sha")" "$work" <<'PY'
import re, sys
out, base, work = sys.argv[1:]
# The public entry points (Machine.benchX) exist on both sides whatever the
# model's internal structure; their inclusive count is the benchmark's.
pat = re.compile(r"^\s*([\d,]+)\s.*\?\?\?:Machine\.(bench\w+)\(")
def load(side):
    got = {}
    for line in open(f"{out}/{side}.txt"):
        m = pat.match(line)
        if m and m.group(2) not in got:
            got[m.group(2)] = int(m.group(1).replace(",", ""))
    return got
b, n = load("base"), load("new")
print(f"instructions per stress bench benchmark (callgrind, --work {work}), base {base} against the working tree")
print(f"{'benchmark function':28} {'base':>14} {'new':>14} {'new/base':>9}")
for name in b:
    if name in n:
        print(f"{name:28} {b[name]:>14,} {n[name]:>14,} {n[name] / b[name]:>9.3f}")
PY
