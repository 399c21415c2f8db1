#!/usr/bin/env bash
# Renders a `stress scale` report.html in headless Chromium, saves a PNG
# screenshot, and checks that the page really draws its SVG charts.
#
#   scripts/check-report.sh [REPORT_DIR_OR_HTML] [SCREENSHOT.png]
#   (defaults: docs/scale/report.html, screenshot.png beside it)
#
# Checks: the file has no <script> and no external resources; the DOM that
# Chromium builds holds at least 4 <svg> charts (as many as the file), with
# one data polyline per series; laid out in the browser, no chart cuts off a
# text or a legend entry, lets a measured line leave its plot, bends a
# perfect-scaling line or draws two error bars on top of each other; the
# screenshot is a non-trivial PNG.
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

# Layout as a user sees it: a copy of the report with a checking script
# added (the report itself has none), run in the browser, which measures
# every chart: no text (legend entries, labels) outside its chart; measured
# lines inside the plot; perfect-scaling lines straight (true or log
# spacing of the thread axis); no two error bars of one chart on top of
# each other. The verdict is written into the DOM and read back.
cat "$src" >"$tmp/layout.html"
cat >>"$tmp/layout.html" <<'JS'
<script>
(function () {
  var problems = [], charts = document.querySelectorAll('svg.chart');
  charts.forEach(function (svg, n) {
    var vb = svg.viewBox.baseVal, title = (svg.querySelector('text') || {}).textContent || ('chart ' + n);
    svg.querySelectorAll('text').forEach(function (t) {
      var b = t.getBBox();
      var m = t.transform.baseVal.consolidate();
      if (m) return; // the rotated y label: positioned by its transform
      if (b.x < -0.5 || b.y < -0.5 || b.x + b.width > vb.width + 0.5 || b.y + b.height > vb.height + 0.5)
        problems.push(title + ': text cut off: "' + t.textContent + '"');
    });
    var clip = svg.querySelector('clipPath rect');
    if (clip) {
      var px = clip.x.baseVal.value, py = clip.y.baseVal.value, pw = clip.width.baseVal.value, ph = clip.height.baseVal.value;
      svg.querySelectorAll('polyline.series').forEach(function (l) {
        var b = l.getBBox();
        if (b.y < py - 1 || b.y + b.height > py + ph + 1) problems.push(title + ': a measured line leaves the plot');
      });
    }
    svg.querySelectorAll('polyline.ideal').forEach(function (l) {
      var p = l.points, logY = /log scale/.test(svg.textContent), logX = /log 2 scale/.test(svg.textContent);
      if (p.length < 3 || logY !== logX) return;
      for (var i = 2; i < p.length; i++) {
        var cross = (p[1].x - p[0].x) * (p[i].y - p[0].y) - (p[1].y - p[0].y) * (p[i].x - p[0].x);
        var len = Math.hypot(p[1].x - p[0].x, p[1].y - p[0].y) * Math.hypot(p[i].x - p[0].x, p[i].y - p[0].y);
        if (len > 0 && Math.abs(cross) / len > 0.01) { problems.push(title + ': perfect scaling is not a straight line'); break; }
      }
    });
    var bars = [];
    svg.querySelectorAll('path.errbar').forEach(function (e) { bars.push(e.getBBox()); });
    for (var i = 0; i < bars.length; i++) for (var j = i + 1; j < bars.length; j++) {
      var a = bars[i], b = bars[j];
      if (Math.abs(a.x - b.x) < 0.5 && a.y < b.y + b.height && b.y < a.y + a.height) {
        problems.push(title + ': two error bars drawn on top of each other'); i = bars.length; break;
      }
    }
  });
  var out = document.createElement('pre');
  out.id = 'layout-check';
  out.textContent = 'LAYOUT ' + charts.length + ' charts; ' + (problems.length ? problems.join(' | ') : 'OK');
  document.body.appendChild(out);
})();
</script>
JS
timeout 120 "$chrome" "${flags[@]}" --virtual-time-budget=5000 --dump-dom "file://$tmp/layout.html" >"$tmp/layout.dom" 2>"$tmp/layout.err" || {
    cat "$tmp/layout.err" >&2; fail "chromium could not lay out the report"; }
layout=$(grep -o 'LAYOUT [0-9][^<]*' "$tmp/layout.dom" | head -1)
[ -n "$layout" ] || fail "the layout check did not run in chromium"
case "$layout" in
    *"; OK") ;;
    *) fail "$(echo "$layout" | sed 's/&quot;/"/g; s/&gt;/>/g; s/&lt;/</g; s/&amp;/\&/g')" ;;
esac

# Screenshot of the whole report (tall window).
timeout 120 "$chrome" "${flags[@]}" --window-size=1280,${CHECK_REPORT_HEIGHT:-4200} \
    --screenshot="$tmp/shot.png" "file://$abs" >/dev/null 2>"$tmp/shot.err" || {
    cat "$tmp/shot.err" >&2; fail "chromium --screenshot failed"; }
[ -s "$tmp/shot.png" ] || fail "no screenshot written"
size=$(stat -c %s "$tmp/shot.png")
[ "$size" -gt 20000 ] || fail "screenshot is suspiciously small ($size bytes): blank page?"
cp "$tmp/shot.png" "$png"
echo "check-report: OK: $src: $file_svgs SVG charts ($series data lines, $ideal perfect-scaling lines; ${layout#LAYOUT }) rendered by $($chrome --version 2>/dev/null | head -1); screenshot $png ($size bytes)"
