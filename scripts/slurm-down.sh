#!/usr/bin/env bash
# Stops the single-node Slurm that scripts/slurm-up.sh started: slurmd,
# slurmctld, then munged, each by the process id recorded in the state folder
# (and only if that pid still runs the same program). Idempotent. Leaves the
# packages, /etc/slurm/slurm.conf and the logs in the state folder.
set -euo pipefail
state="${CRMAP_SLURM_STATE:-/var/tmp/crmap-slurm}"

stop() {
    local name="$1" pidfile="$state/$1.pid" pid
    [ -s "$pidfile" ] || { echo "slurm-down: $name: not started by slurm-up"; return 0; }
    pid="$(cat "$pidfile")"
    if [ ! -r "/proc/$pid/comm" ] || [ "$(cat "/proc/$pid/comm")" != "$name" ]; then
        echo "slurm-down: $name (pid $pid) already gone"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then
        echo "slurm-down: $name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "slurm-down: $name (pid $pid) stopped"
}
stop slurmd
stop slurmctld
stop munged
