#!/usr/bin/env bash
# Test-free check of the trace importer on real strace logs:
#   scripts/trace-check.sh LOG.st.gz ...     (or a folder holding *.st.gz)
# For each log: `stress trace stats` on the raw log, import it, `stress trace
# stats` on the trace (the figures must be the same), and the import speed
# (`stress trace bench`, best of 5). Builds the release binary first.
# Writes the JSON figures to ${TRACE_CHECK_OUT:-out/trace-check}.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || { echo "usage: scripts/trace-check.sh LOG... | DIR" >&2; exit 2; }
logs=()
for a in "$@"; do
    if [ -d "$a" ]; then
        for f in "$a"/*.st.gz "$a"/*.st; do [ -e "$f" ] && logs+=("$f"); done
    else
        logs+=("$a")
    fi
done
swift build -c release --product stress >/dev/null
stress=.build/release/stress
out=${TRACE_CHECK_OUT:-out/trace-check}
mkdir -p "$out"
status=0
for f in "${logs[@]}"; do
    b=$(basename "$f"); b=${b%.gz}; b=${b%.st}
    "$stress" trace stats "$f" --json "$out/$b.raw.json"
    "$stress" trace import "$f" --out "$out/$b.trace.gz"
    "$stress" trace stats "$out/$b.trace.gz" --json "$out/$b.trace.json" >/dev/null
    # The event figures (all but the source name and the raw log's import counts) must agree.
    if diff <(grep -v -e '"source"' -e '"import"' "$out/$b.raw.json" | sed 's/,$//') \
            <(grep -v -e '"source"' "$out/$b.trace.json" | sed 's/,$//') >/dev/null; then
        echo "raw log and trace agree: $b"
    else
        echo "MISMATCH between raw log and trace: $b" >&2
        status=1
    fi
    "$stress" trace bench "$f" --repeat 5
    echo
done
exit $status
