#!/usr/bin/env bash
# ThreadSanitizer run: builds everything with -sanitize=thread in its own
# scratch path (.build-tsan), with the URCUShim annotations switched on
# (CRMAP_TSAN=1: exported liburcu calls plus happens-before edges for grace
# periods and call_rcu callbacks), then runs a stress test and, unless
# TSAN_SKIP_TESTS=1, the test suite under it. No suppressions: a report fails
# the run.
#
#   scripts/tsan.sh [extra stress options...]      e.g. --inject walk-no-ptl
#   TSAN_THREADS=8 TSAN_DURATION=10 scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CRMAP_TSAN=1
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 abort_on_error=0 exitcode=66 second_deadlock_stack=1 history_size=4}"
threads="${TSAN_THREADS:-8}"
duration="${TSAN_DURATION:-10}"
swift build --sanitize=thread --scratch-path .build-tsan --product stress
echo "== stress under ThreadSanitizer: $threads threads, ${duration}s $*"
.build-tsan/debug/stress run --threads "$threads" --duration "$duration" --quiet --frames 4096 --processes 64 "$@"
if [ "${TSAN_SKIP_TESTS:-0}" != 1 ]; then
    echo "== swift test under ThreadSanitizer"
    swift test --sanitize=thread --scratch-path .build-tsan
fi
