#!/usr/bin/env bash
# Runs the wire-contract tests against the reference peers in ../shared/peers: the maintainers'
# reference servers, the tutorial itself on Deno (seed-deno) and Node + ws. They are not part of
# this repository and not needed to use chat.h. Needs node and npm (the peers install from npm).
#   bash tests/compat.sh          (make compat)
# Without the peers (or without node/npm) it says "compat: skipped: ..." and exits 0, except
# under CI=true, where a skipped check is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
peers_src=${PEERS_SRC:-../shared/peers}
peers=${PEERS_DIR:-${TMPDIR:-/tmp}/chat-peers}

skip() { # WHY
    if [ "${CI:-}" = true ]; then
        echo "compat: FAILED: $1 (CI=true: the contract tests against the reference peers must run)" >&2
        exit 1
    fi
    echo "compat: skipped: $1 (the peers are the maintainers' reference servers, the Deno tutorial and Node + ws; chat.h does not need them; PEERS_SRC=DIR uses a copy)"
    exit 0
}
[ -d "$peers_src" ] || skip "no reference peers at $peers_src"
{ command -v node && command -v npm; } >/dev/null || skip "the reference peers need node and npm, which are not installed"
if [ ! -d "$peers" ]; then cp -r "$peers_src" "$peers"; fi # shared/ is read-only: work on a copy
"$peers/setup.sh" >/dev/null
[ -x tests/run_tests ] || make tests/run_tests >/dev/null

pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done' EXIT INT TERM

# Waits until the server accepts connections (bounded), using the test client itself.
wait_port() {
    i=0
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "compat: nothing listens on port $1" >&2; return 1; }
        sleep 0.1
    done
}

# Ports below the kernel's ephemeral range, so that no client socket of an earlier test holds
# one (a port picked inside it was once taken that way, and the peer could not listen), and none
# that something already listens on.
eph_lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$eph_lo" -gt 12000 ] 2>/dev/null || eph_lo=32768
port=$(( 10000 + $$ % (eph_lo - 10100) ))
free_port() {
    i=0
    while port=$((port + 1)); (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 50 ] || { echo "compat: no free port found" >&2; exit 1; }
    done
}

status=0
for peer in seed node; do
    free_port
    log="${TMPDIR:-/tmp}/compat-$peer-$$.log"
    if [ "$peer" = seed ]; then
        PORT=$port "$peers/run-seed.sh" >"$log" 2>&1 &
    else
        QUIET=1 PORT=$port "$peers/run-node.sh" >"$log" 2>&1 &
    fi
    pid=$!
    pids="$pids $pid"
    wait_port "$port" || { tail -5 "$log" >&2; exit 1; }
    rm -f "$log"
    echo "== contract tests against $peer (port $port)"
    ./tests/run_tests --external "127.0.0.1:$port" || status=1
    kill "$pid"
done
exit $status
