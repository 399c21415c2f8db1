#!/usr/bin/env bash
# Installs what the project needs on a Debian machine with Swift 6.3:
# liburcu-dev (headers and libraries of liburcu 0.13), zlib1g-dev (gzip trace
# files) and strace (stress trace record). Idempotent and quiet when
# everything is already there.
set -euo pipefail
need=()
for pkg in liburcu-dev zlib1g-dev strace; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || {
            echo "missing packages: ${need[*]}; as root, run: apt-get install -y ${need[*]}" >&2
            exit 1
        }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift not found: install Swift 6.3 first" >&2; exit 1; }
