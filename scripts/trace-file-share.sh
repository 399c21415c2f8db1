#!/usr/bin/env bash
# The share of anonymous pages born from private file mappings, per trace or
# raw strace log (docs/trace-replay.md, "Anonymous pages born from private
# file mappings"):
#   scripts/trace-file-share.sh [--OPTION VALUE]... [TRACE_OR_LOG...]
# (default: docs/traces/*.trace.gz). Replays each with `stress trace run`,
# all defaults but the options given (the share does not depend on
# --scheme), and prints one markdown row per file. Exit status 1 when a
# replay did not end SUCCESS. STRESS=... to use another binary.
set -euo pipefail
cd "$(dirname "$0")/.."
opts=()
while [ "$#" -gt 1 ] && [ "${1#--}" != "$1" ]; do opts+=("$1" "$2"); shift 2; done
[ "$#" -gt 0 ] || set -- docs/traces/*.trace.gz
if [ -z "${STRESS:-}" ]; then
    swift build -c release --product stress >/dev/null
    STRESS=.build/release/stress
fi
echo "| trace | paths | file mmaps: with an inode / unknown file / without | inodes used | anonymous pages born | of them copies of file pages | private file share | mappings given a first anonymous page: anonymous / private file (share) / fork copies |"
echo "|---|---|---|---|---|---|---|---|"
status=0
for f in "$@"; do
    name=$(basename "$f"); name=${name%.gz}; name=${name%.st}; name=${name%.trace}
    report=$("$STRESS" trace run "$f" ${opts[@]+"${opts[@]}"}) || { echo "| $name | replay failed: $(tail -n 1 <<<"$report") |" ; status=1; continue; }
    files=$(grep '^files ' <<<"$report")
    births=$(grep '^anon births ' <<<"$report")
    paths=$(sed -E 's/^files +([0-9]+) paths.*/\1/' <<<"$files")
    with=$(sed -E 's/.*mmaps: ([0-9]+) with an inode.*/\1/' <<<"$files")
    without=$(sed -E 's/.* ([0-9]+) without, .*/\1/' <<<"$files")
    unknown=$(sed -E 's/.* ([0-9]+) of an unknown file.*/\1/' <<<"$files")
    used=$(sed -E 's/.* ([0-9]+) inodes used.*/\1/' <<<"$files")
    total=$(sed -E 's/^anon births +([0-9]+):.*/\1/' <<<"$births")
    copies=$(sed -E 's/.* ([0-9]+) copies of file pages.*/\1/' <<<"$births")
    share=$(sed -E 's/.*private file share ([0-9.]+%).*/\1/' <<<"$births")
    vmas=$(grep '^anon_vmas ' <<<"$report" | sed -E 's/.*page: ([0-9]+) by a touch.*, ([0-9]+) by a write to a private file mapping \(([0-9.]+%)\); ([0-9]+) copied.*/\1 \/ \2 (\3) \/ \4/')
    echo "| $name | $paths | $with / $unknown / $without | $used | $total | $copies | $share | $vmas |"
done
exit $status
