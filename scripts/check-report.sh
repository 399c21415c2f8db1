#!/usr/bin/env bash
# Renders a `stress scale` report.html in headless Chromium, saves a PNG
# screenshot, and checks that the page really draws its SVG charts.
#
#   scripts/check-report.sh [REPORT_DIR_OR_HTML] [SCREENSHOT.png]
#   (defaults: docs/scale/report.html, screenshot.png beside it)
#
# Checks: the file has no <script> and no external resources; the DOM that
# Chromium builds holds at least 4 <svg> charts (as many as the file), with
# one data polyline per series; the screenshot is a non-trivial PNG.
# Installs the Debian package `chromium` when missing (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-docs/scale/report.html}
[ -d "$src" ] && src="$src/report.html"
[ -f "$src" ] || { echo "check-report: no report at $src" >&2; exit 2; }
png=${2:-$(dirname "$src")/screenshot.png}

chrome=""
for c in chromium chromium-browser google-chrome; do command -v "$c" >/dev/null && { chrome=$c; break; }; done
if [ -z "$chrome" ]; then
    echo "check-report: installing chromium" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    chrome=chromium
fi

fail() { echo "check-report: FAIL: $*" >&2; exit 1; }

# Static checks on the file itself.
grep -qi '<script' "$src" && fail "report contains a <script>"
grep -Eqi '(src|href)="(https?:)?//' "$src" && fail "report loads external resources"
file_svgs=$(grep -o '<svg' "$src" | wc -l)
[ "$file_svgs" -ge 4 ] || fail "only $file_svgs <svg> charts in the file (want >= 4: total, per-op, latency, efficiency)"
series=$(grep -o '<polyline class="series"' "$src" | wc -l)
ideal=$(grep -o '<polyline class="ideal"' "$src" | wc -l)
[ "$series" -ge 1 ] || fail "no data polylines"
[ "$ideal" -ge 1 ] || fail "no perfect-scaling line"

abs=$(cd "$(dirname "$src")" && pwd)/$(basename "$src")
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --disable-dev-shm-usage --no-first-run
       --user-data-dir="$(mktemp -d)")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The DOM as Chromium parsed it: the charts must survive parsing.
timeout 120 "$chrome" "${flags[@]}" --dump-dom "file://$abs" >"$tmp/dom.html" 2>"$tmp/dom.err" || {
    cat "$tmp/dom.err" >&2; fail "chromium --dump-dom failed"; }
dom_svgs=$(grep -o '<svg' "$tmp/dom.html" | wc -l)
[ "$dom_svgs" -eq "$file_svgs" ] || fail "chromium's DOM has $dom_svgs <svg> elements, the file $file_svgs"

# Screenshot of the whole report (tall window).
timeout 120 "$chrome" "${flags[@]}" --window-size=1280,${CHECK_REPORT_HEIGHT:-4200} \
    --screenshot="$tmp/shot.png" "file://$abs" >/dev/null 2>"$tmp/shot.err" || {
    cat "$tmp/shot.err" >&2; fail "chromium --screenshot failed"; }
[ -s "$tmp/shot.png" ] || fail "no screenshot written"
size=$(stat -c %s "$tmp/shot.png")
[ "$size" -gt 20000 ] || fail "screenshot is suspiciously small ($size bytes): blank page?"
cp "$tmp/shot.png" "$png"
echo "check-report: OK: $src: $file_svgs SVG charts ($series data lines, $ideal perfect-scaling lines) rendered by $($chrome --version 2>/dev/null | head -1); screenshot $png ($size bytes)"
