#!/usr/bin/env bash
# Builds commit REF (release) in a git worktree under .build-base/ (ignored
# by git) and prints the path of its `stress` binary. The scripts that
# compare the working tree with a base commit in one run share it.
#
#   base_bin=$(scripts/build-base.sh REF)
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:?usage: scripts/build-base.sh REF}
sha=$(git rev-parse --verify --quiet "$ref^{commit}") || { echo "build-base: unknown ref '$ref'" >&2; exit 2; }
src=.build-base/src
if [ -d "$src" ]; then
    git -C "$src" checkout -q --detach "$sha"
else
    mkdir -p .build-base
    git worktree add -q --detach "$src" "$sha"
fi
echo "building base $(git rev-parse --short "$sha") (release)..." >&2
(cd "$src" && swift build -c release --scratch-path ../build >/dev/null)
echo .build-base/build/release/stress
