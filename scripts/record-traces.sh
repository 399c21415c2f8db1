#!/usr/bin/env bash
# Record the traces of docs/traces/ with `stress trace record` (see
# docs/traces/README.md for what each one is and its figures).
#
#   scripts/record-traces.sh [readline|mp_pool|postgres|redis|shell|all]...
#
# The recorder traces process and memory calls and the fd calls that name a
# mapping's file (open, openat, openat2, creat, close, close_range, dup,
# dup2, dup3, fcntl), so that the same library is the same file id in every
# process (docs/trace-format.md). Traces recorded before it traced close and
# dup (all but shell_ls_cat) have openat only.
#
# Run from anywhere as root on Debian 12 (bookworm), after
#   apt-get install -y strace build-essential python3-pip postgresql redis-server redis-tools
# and with pip able to reach PyPI (for the GNU readline source). Writes
# docs/traces/NAME.trace.gz, NAME.stats.txt and NAME.stats.json; work files go
# to a fresh folder under ${TMPDIR:-/tmp}. Uses .build/release/stress, building
# it if missing (STRESS=... to use another binary).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/docs/traces
if [ -z "${STRESS:-}" ]; then
    [ -x .build/release/stress ] || swift build -c release --product stress
    STRESS=$root/.build/release/stress
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/rmap-traces.XXXXXX")
chmod 755 "$work"
echo "work folder: $work"

record() {  # record NAME COMMAND...
    local name=$1; shift
    "$STRESS" trace record --out "$out/$name.trace.gz" -- "$@"
}

stats() {  # stats NAME: keep stress trace stats' text and JSON
    local name=$1
    (cd "$out" && "$STRESS" trace stats "$name.trace.gz" --json "$name.stats.json" \
        | tee "$name.stats.txt")
}

# 1 and 2: GNU readline 8.3 (the tarball inside the gnureadline sdist on PyPI):
# its autoconf ./configure, then make -j2.
readline() {
    cd "$work"
    pip download --no-binary :all: --no-deps gnureadline==8.3.3 -d sdist
    tar xzf sdist/gnureadline-8.3.3.tar.gz
    cd gnureadline-8.3.3/rl
    tar xzf readline-8.3.tar.gz
    cd readline-8.3
    for p in ../readline83-00[123]; do patch -p0 < "$p"; done
    record readline_configure ./configure
    stats readline_configure
    record readline_make make -j2
    stats readline_make
    cd "$root"
}

# 3: Python multiprocessing fork pool, Pool(4) with maxtasksperchild.
mp_pool() {
    local py=${PYTHON:-/usr/bin/python3}   # the interpreter itself, not a wrapper script
    cp "$out/mp_pool.py" "$work/"
    cd "$work"
    record mp_pool "$py" mp_pool.py
    stats mp_pool
    cd "$root"
}

# 4: PostgreSQL postmaster in the foreground under the recorder; pgbench -C
# connects anew for every transaction, so the postmaster forks a backend each time.
postgres() {
    local bin pg=$work/pg port=5439
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    mkdir -p "$pg/sock"
    chown -R postgres:postgres "$pg"
    runuser -u postgres -- "$bin/initdb" -D "$pg/data" -A trust >"$work/initdb.log"
    cd "$pg"
    record postgres runuser -u postgres -- "$bin/postgres" -D "$pg/data" -k "$pg/sock" \
        -p $port -c listen_addresses= -c synchronous_commit=off >"$work/postgres.log" 2>&1 &
    local rec=$!
    until runuser -u postgres -- "$bin/pg_isready" -q -h "$pg/sock" -p $port; do sleep 0.5; done
    runuser -u postgres -- pgbench -h "$pg/sock" -p $port -i postgres
    runuser -u postgres -- pgbench -h "$pg/sock" -p $port -C -c 4 -T 10 postgres
    runuser -u postgres -- "$bin/pg_ctl" stop -D "$pg/data" -m fast
    wait $rec
    cat "$work/postgres.log" | grep -v '^[0-9-]* [0-9:.]* UTC \[' || true
    stats postgres
    cd "$root"
}

# 5: Redis in the foreground under the recorder; data loaded with
# redis-benchmark, then three BGSAVEs (each forks a child that writes the RDB).
redis() {
    local port=6390
    mkdir -p "$work/redis"
    cd "$work/redis"
    record redis_bgsave redis-server --port $port --save "" --dir "$work/redis" \
        >"$work/redis.log" 2>&1 &
    local rec=$!
    until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.5; done
    redis-benchmark -p $port -t set -n 200000 -r 100000 -d 256 -q | tr '\r' '\n' | tail -n 2
    redis-cli -p $port dbsize
    for i in 1 2 3; do
        redis-cli -p $port bgsave
        sleep 1
        until redis-cli -p $port info persistence | grep -q '^rdb_bgsave_in_progress:0'; do
            sleep 0.5
        done
        redis-cli -p $port set "after-save-$i" "$i" >/dev/null   # let the parent write between saves
        redis-benchmark -p $port -t set -n 20000 -r 100000 -d 256 -q | tr '\r' '\n' | tail -n 2
    done
    redis-cli -p $port info persistence | grep -E '^(rdb_last_bgsave_status|rdb_saves|rdb_last_cow_size)'
    redis-cli -p $port shutdown nosave || true
    wait $rec
    tail -n 3 "$work/redis.log"
    stats redis_bgsave
    cd "$root"
}

# 6: a shell running two small programs: the dynamic loader maps ld.so.cache
# and libc in every process, so each path recurs in all of them.
shell() {
    cd "$work"
    record shell_ls_cat sh -c 'ls / >/dev/null; cat /etc/hostname >/dev/null; ls -l /etc >/dev/null'
    stats shell_ls_cat
    cd "$root"
}

[ "$#" -gt 0 ] || set -- all
for w in "$@"; do
    case $w in
        readline|mp_pool|postgres|redis|shell) $w ;;
        all) readline; mp_pool; postgres; redis; shell ;;
        *) echo "usage: scripts/record-traces.sh [readline|mp_pool|postgres|redis|shell|all]..." >&2; exit 2 ;;
    esac
done
