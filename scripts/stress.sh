#!/usr/bin/env bash
# Set up (liburcu) if needed, build the release `stress` and run it.
#   scripts/stress.sh                         # defaults: 4 threads, 10 s
#   scripts/stress.sh --threads 64 --duration 60
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
swift build -c release --product stress >&2
exec .build/release/stress "$@"
