#!/usr/bin/env bash
# Render a `supernet report` HTML page in headless Chromium and save a screenshot.
#   scripts/check_report.sh RUN_DIR/report.html [out.png]
# Needs Debian's chromium (apt-get install -y chromium). Exit 0 when the screenshot was written.
set -euo pipefail
page=${1:?usage: $0 REPORT.html [out.png]}
out=${2:-report_screenshot.png}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "check_report: no chromium found (apt-get install -y chromium)" >&2
    exit 3
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
url="file://$(realpath "$page")"
rm -f "$out"
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot="$out" --window-size=1200,3000 "$url" >/dev/null 2>&1 || true
if [ ! -s "$out" ]; then
    echo "check_report: chromium wrote no screenshot for $url" >&2
    exit 1
fi
echo "screenshot of $url written to $out ($(stat -c %s "$out") bytes)"
