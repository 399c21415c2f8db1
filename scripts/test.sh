#!/usr/bin/env bash
# Set up (liburcu) if needed and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
swift test "$@"
