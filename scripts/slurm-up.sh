#!/usr/bin/env bash
# Starts a single-node Slurm on this machine, for `stress campaign slurm` and
# scripts/campaign-slurm-test.sh: munged as user munge, slurmctld and slurmd as
# root, all on localhost (see shared/BRIEF.md section 9). Installs Debian's
# slurm-wlm and munge when missing. Needs root.
#
# Idempotent: daemons it started earlier and that are still alive are kept.
# Their process ids go to the state folder, from which scripts/slurm-down.sh
# stops exactly those processes.
#
#   scripts/slurm-up.sh            CRMAP_SLURM_STATE=DIR overrides the state folder
set -euo pipefail
state="${CRMAP_SLURM_STATE:-/var/tmp/crmap-slurm}"
conf=/etc/slurm/slurm.conf
marker="# written by ConcurrentRmap scripts/slurm-up.sh"
host="$(hostname -s)"
cpus="$(nproc)"

die() { echo "slurm-up: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (it starts slurmctld and slurmd as root)"

# --- packages -----------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    echo "slurm-up: installing slurm-wlm and munge" >&2
    # The packages' maintainer scripts would start the daemons through init;
    # this script starts and tracks them itself, so keep init out of it.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
    [ "$own_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
fi

mkdir -p "$state"

# alive NAME PIDFILE: the process recorded in PIDFILE is alive and is NAME
# (a recycled pid belongs to someone else).
alive() {
    local pid
    [ -s "$2" ] || return 1
    pid="$(cat "$2")"
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ]
}

# --- munge ----------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if alive munged "$state/munged.pid"; then
    echo "slurm-up: munged already running (pid $(cat "$state/munged.pid"))"
else
    # setpriv execs munged in place, so $! is munged's own pid; --foreground
    # keeps it from forking away from that pid.
    setsid setpriv --reuid=munge --regid=munge --init-groups -- \
        "$(command -v munged)" --foreground >"$state/munged.out" 2>&1 </dev/null &
    echo $! > "$state/munged.pid"
    for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
    alive munged "$state/munged.pid" || die "munged did not start; see $state/munged.out"
    echo "slurm-up: munged started (pid $(cat "$state/munged.pid"))"
fi
munge -n </dev/null | unmunge >/dev/null || die "munge credential round trip failed"

# --- slurm.conf ---------------------------------------------------------------------
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
    die "$conf exists and was not written by this script; refusing to replace it"
fi
mkdir -p /etc/slurm "$state/ctld" "$state/spool"
new="$(mktemp "$conf.XXXXXX")"
cat > "$new" <<EOF
$marker
ClusterName=crmap
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.daemon.pid
SlurmdPidFile=$state/slurmd.daemon.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=10
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
chmod 644 "$new"
mv "$new" "$conf"

# --- slurmctld, slurmd ---------------------------------------------------------------
# -D keeps each daemon in the foreground, so the pid recorded is the daemon's.
start() {
    local name="$1"; shift
    if alive "$name" "$state/$name.pid"; then
        echo "slurm-up: $name already running (pid $(cat "$state/$name.pid"))"
        return
    fi
    setsid "$(command -v "$name")" -D -f "$conf" "$@" >"$state/$name.out" 2>&1 </dev/null &
    echo $! > "$state/$name.pid"
    sleep 0.5
    alive "$name" "$state/$name.pid" || die "$name did not start; see $state/$name.out and $state/$name.log"
    echo "slurm-up: $name started (pid $(cat "$state/$name.pid"))"
}
start slurmctld -i
start slurmd

# --- wait for the node ----------------------------------------------------------------
for i in $(seq 120); do
    node_state="$(sinfo -h -N -n "$host" -o %T 2>/dev/null || true)"
    case "$node_state" in
        idle|mixed|allocated) break ;;
        down*|drain*) [ "$i" -eq 20 ] && scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
sinfo
case "$node_state" in
    idle|mixed|allocated) echo "slurm-up: node $host is $node_state ($cpus CPUs, partition debug)" ;;
    *) die "node $host is '${node_state:-unknown}' after 60 s; see $state/slurmctld.log and $state/slurmd.log" ;;
esac
