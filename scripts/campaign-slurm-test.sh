#!/usr/bin/env bash
# Integration test of `stress campaign slurm` on a real Slurm: starts a
# single-node Slurm (scripts/slurm-up.sh), submits a small campaign as an
# sbatch job array, waits for it, and checks the merged report (every cell
# present, verdicts right, the planted-bug cells failed with a signature of
# a declared class, so every cell met its expectation and the campaign
# passes: exit 0).
# Then it makes one cell look crashed and resubmits: only that cell may run
# again. Last, a submission sbatch refuses must be a one-line error, exit 2.
# Stops Slurm again (unless it was already up). Needs root; about a minute.
#
#   scripts/campaign-slurm-test.sh        STRESS_BIN=path skips the release build
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "campaign-slurm-test: needs root (it starts Slurm's daemons)" >&2; exit 1; }
start=$SECONDS

if [ -z "${STRESS_BIN:-}" ]; then
    swift build -c release --product stress >/dev/null
    STRESS_BIN="$(swift build -c release --show-bin-path)/stress"
fi
stress="$STRESS_BIN"

state="${CRMAP_SLURM_STATE:-/var/tmp/crmap-slurm}"
was_up=1
for d in munged slurmctld slurmd; do
    pid="$(cat "$state/$d.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$d" ] || was_up=0
done
work="$(mktemp -d "${TMPDIR:-/tmp}/crmap-campaign-slurm.XXXXXX")"
finish() {
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "campaign-slurm-test: FAILED; logs follow" >&2
        tail -n 20 "$state/slurmctld.log" "$state/slurmd.log" 2>/dev/null >&2 || true
        for f in "$work"/results/slurm/task-*.out; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 5 "$f" >&2; }; done
    fi
    [ "$was_up" -eq 1 ] || scripts/slurm-down.sh || true
    rm -rf "$work"
    exit "$rc"
}
trap finish EXIT
fail() { echo "campaign-slurm-test: FAIL: $*" >&2; exit 1; }

scripts/slurm-up.sh

# 2 seeds x {no bug, mremap-no-copy} x {1, 2} threads, 2 s each: 8 cells,
# two at a time on a 2-CPU node.
cat > "$work/plan.json" <<'EOF'
{
  "name": "slurm-integration",
  "axes": {
    "seed": [1, 2],
    "inject": ["none", "mremap-no-copy"],
    "threads": [1, 2],
    "duration": 2
  }
}
EOF
results="$work/results"
opts=(--results "$results" --partition debug --cpus-per-task 1 --throttle 2 --time 5)

echo "== submit and wait"
set +e
timeout 300 "$stress" campaign slurm "$work/plan.json" "${opts[@]}" --wait | tee "$work/submit.out"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || fail "campaign slurm --wait exited $rc, expected 0 (the planted bug is caught, as expected)"
grep -q '^submitted job [0-9]*: array 0-7%2, 8 tasks, 8 cells' "$work/submit.out" || fail "unexpected submission line"
[ -f "$results/slurm/submit-1.sbatch" ] && [ -f "$results/slurm/submit-1.json" ] || fail "no job script or submission record"

# check_report EXPECTED_ATTEMPTS_OF_CELL_0: the CSV's leading columns are
# index,seed,inject,threads,duration,state,verdict,exit_status,signal,wall_s,
# ops_per_s,completed_ops,first_violation_s,build,attempts,slurm_job,expected,
# met; the free text (signature, note, miss, reproduce) follows and may hold
# quoted commas.
check_report() {
    set +e
    "$stress" campaign report "$results" > "$work/report.out"
    rc=$?
    set -e
    [ "$rc" -eq 0 ] || fail "campaign report exited $rc, expected 0 (every cell met its expectation)"
    grep -q "8 cells: 4 passed, 4 failed" "$work/report.out" || fail "report summary: $(head -1 "$work/report.out")"
    grep -q "^PASS: every cell met its expectation" "$work/report.out" || fail "the report does not say every cell met its expectation"
    grep -q "planted bugs caught with a declared class: 4 of 4 cells" "$work/report.out" || fail "the report does not count the 4 planted-bug cells as caught"
    csv="$results/report.csv"
    [ "$(tail -n +2 "$csv" | wc -l)" -eq 8 ] || fail "report.csv has $(tail -n +2 "$csv" | wc -l) cells, expected 8"
    tail -n +2 "$csv" | awk -F, -v a0="$1" '
        { seen[$1] = 1 }
        $16 !~ /^[0-9]+_[0-9]+$/ { print "cell " $1 ": no Slurm array task recorded (" $16 ")"; bad = 1 }
        $3 == "none" && !($6 == "passed" && $7 == "SUCCESS" && $8 == "0") { print "cell " $1 ": " $6 " " $7; bad = 1 }
        $3 == "mremap-no-copy" && !($6 == "failed" && $7 == "FAILURE" && $8 == "1") { print "cell " $1 ": " $6 " " $7; bad = 1 }
        $3 == "mremap-no-copy" && $0 !~ /,"?(location|incomplete-walk) in [a-z]+: / { print "cell " $1 ": no signature"; bad = 1 }
        $18 != "yes" { print "cell " $1 ": expectation not met (" $17 ")"; bad = 1 }
        $1 == 0 && $15 != a0 { print "cell 0: " $15 " attempts, expected " a0; bad = 1 }
        $1 != 0 && $15 != 1 { print "cell " $1 ": " $15 " attempts, expected 1"; bad = 1 }
        END { for (i = 0; i < 8; i++) if (!(i in seen)) { print "cell " i " missing"; bad = 1 }; exit bad }' \
        || fail "report.csv does not show the expected verdicts"
    grep -q "failure signatures:" "$work/report.out" || fail "no failure signatures in the report"
    grep -q -- "--inject mremap-no-copy" "$work/report.out" || fail "no reproduce command for the planted bug"
    grep -q "<svg" "$results/report.html" && ! grep -q "<script" "$results/report.html" || fail "report.html is not an offline SVG page"
}
check_report 1
[ "$(ls "$results"/slurm/task-*_*.out | wc -l)" -eq 8 ] || fail "expected 8 array task logs"

echo "== resume: cell 0 made to look crashed; only it may run again"
sed -i 's/"state" : "passed"/"state" : "crashed"/' "$results/cells/00000/cell.json"
set +e
timeout 300 "$stress" campaign slurm "$work/plan.json" "${opts[@]}" --wait | tee "$work/resubmit.out"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || fail "resubmission exited $rc, expected 0"
grep -q '^submitted job [0-9]*: array 0%2, 1 tasks, 1 cells' "$work/resubmit.out" || fail "resubmission did not queue exactly cell 0"
[ -f "$results/cells/00000/attempt-1/cell.json" ] || fail "cell 0's crashed attempt was not kept"
check_report 2

echo "== a submission sbatch refuses"
set +e
"$stress" campaign slurm "$work/plan.json" --results "$work/other" --partition no-such-partition 2> "$work/err" >/dev/null
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "refused submission exited $rc, expected 2"
[ "$(wc -l < "$work/err")" -eq 1 ] && grep -q '^stress: error: sbatch failed' "$work/err" || fail "refused submission: $(cat "$work/err")"

for job in $(sed -n 's/.*"job_id" : "\([0-9]*\)".*/\1/p' "$results"/slurm/submit-*.json); do
    [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] || fail "job $job is still queued: $(squeue -h -j "$job")"
done
echo "campaign-slurm-test: all checks passed in $((SECONDS - start)) s"
