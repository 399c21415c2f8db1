#!/usr/bin/env bash
# Builds a fully static `stress` (no dynamic dependencies at all: Swift
# runtime, Foundation, liburcu and glibc linked in) for machines that have no
# Swift, and checks that it really is static.
#
#   scripts/build-static.sh [OUTPUT]      (default: out/stress-static)
#
# Uses its own scratch path (.build-static) so it never disturbs .build.
# liburcu's static archives (liburcu-*.a from liburcu-dev) are picked up by
# the linker's -l flags of the URCUShim target because -static-executable
# links with -static.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/stress-static}
scripts/ensure-deps.sh
for a in urcu-memb urcu-qsbr urcu-mb urcu-bp urcu-common; do
    found=""
    for f in /usr/lib/*/lib$a.a /usr/lib/lib$a.a /usr/local/lib/lib$a.a; do [ -f "$f" ] && found=$f; done
    [ -n "$found" ] || { echo "build-static: lib$a.a not found (install liburcu-dev)" >&2; exit 1; }
done
swift build -c release --product stress --scratch-path .build-static \
    --static-swift-stdlib -Xswiftc -static-executable
bin=$(swift build -c release --product stress --scratch-path .build-static \
    --static-swift-stdlib -Xswiftc -static-executable --show-bin-path)/stress
mkdir -p "$(dirname "$out")"
cp "$bin" "$out"

# Verify: `file` must say statically linked, `ldd` must find nothing to load.
info=$(file -L "$out")
echo "$info"
case "$info" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) echo "build-static: FAIL: $out is not statically linked" >&2; exit 1 ;;
esac
if command -v readelf >/dev/null && readelf -d "$out" 2>/dev/null | grep -q NEEDED; then
    echo "build-static: FAIL: $out has NEEDED entries:" >&2
    readelf -d "$out" | grep NEEDED >&2
    exit 1
fi
if ldd_out=$(ldd "$out" 2>&1); then
    case "$ldd_out" in
        *"not a dynamic executable"*|*"statically linked"*) ;;
        *) echo "build-static: FAIL: ldd lists dependencies:" >&2; echo "$ldd_out" >&2; exit 1 ;;
    esac
fi
# It must run: a short stress run with the static binary.
"$out" --version >/dev/null
"$out" run --threads 2 --duration 1 --quiet --frames 2048 --processes 32 >/dev/null || {
    echo "build-static: FAIL: the static binary's smoke run failed" >&2; exit 1; }
echo "build-static: OK: $out ($(du -h "$out" | cut -f1), no dynamic dependencies)"
