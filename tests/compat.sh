#!/usr/bin/env bash
# Runs the wire-contract tests against the reference servers in ../shared/peers: the tutorial
# itself on Deno (seed-deno) and Node + ws. Needs node and npm (the peers install from npm).
#   bash tests/compat.sh          (make compat)
set -euo pipefail
cd "$(dirname "$0")/.."
peers_src=${PEERS_SRC:-../shared/peers}
peers=${PEERS_DIR:-${TMPDIR:-/tmp}/chat-peers}
[ -d "$peers_src" ] || { echo "compat: no reference peers at $peers_src" >&2; exit 1; }
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

status=0
for peer in seed node; do
    port=$(( 20000 + $$ % 20000 ))
    [ "$peer" = node ] && port=$((port + 1))
    if [ "$peer" = seed ]; then
        PORT=$port "$peers/run-seed.sh" >/dev/null 2>&1 &
    else
        QUIET=1 PORT=$port "$peers/run-node.sh" >/dev/null 2>&1 &
    fi
    pid=$!
    pids="$pids $pid"
    wait_port "$port"
    echo "== contract tests against $peer (port $port)"
    ./tests/run_tests --external "127.0.0.1:$port" || status=1
    kill "$pid"
done
exit $status
