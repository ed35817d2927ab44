#!/usr/bin/env bash
# tests/bench/run.sh - chat.h against its peers (Node + ws, the Deno tutorial; uWebSockets and
# mongoose where their sources are present), one table.
#
#   bash tests/bench/run.sh            the full run (about 1.5-2 minutes on 2 cores; bounded well under 5)
#   bash tests/bench/run.sh --smoke    a tiny run for CI: exits non-zero if a chat.h row failed
#                                      or lost a message
#
# Each scenario runs against each server in turn, every server started fresh on its own port,
# pinned to core 0; the load client (tests/bench/load.c) runs on core 1. See README.md here.
#
# Environment:
#   BENCH_SERVERS   which servers, default "chat.h wss node deno" (+ "uws mongoose" with PEERS_LOCAL);
#                   wss is chat.h over its own TLS (mbedTLS)
#                   "chat.h+H" is chat.h keeping a history file (-H, no sync)
#   BENCH_ALT       other chat.h builds to run as servers beside it, "NAME=BINARY[,HEAP_BINARY] ...",
#                   each NAME also in BENCH_SERVERS (e.g. an older tree: BENCH_ALT="old=/tmp/chat-old");
#                   HEAP_BINARY: its tests/bench/heap_server.c, for heap/conn in the idle rows
#   PEERS_LOCAL     where the uWebSockets and mongoose sources were extracted (their run.sh builds
#                   them there); see ../shared/peers/README.md. Unset: those two are skipped
#   BENCH_REPEAT    run every scenario this many times, the servers interleaved (default 1; the
#                   table shows medians and each run's key number)
#   BENCH_PEERS     writable copy of the reference peers (default ${TMPDIR:-/tmp}/chat-bench-peers)
#   PEERS_SRC       where the peers come from (default ../shared/peers next to the repo; read-only)
#   BENCH_RESULTS   file for the raw RESULT lines (default ${TMPDIR:-/tmp}/chat-bench-results.txt)
#   BENCH_ONLY      run only these scenarios, e.g. "fanout latency"
#   CC              compiler (default cc)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
smoke=0
case "${1:-}" in
    --smoke) smoke=1 ;;
    "") ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

started=$(date +%s.%N)
tmp_root=${TMPDIR:-/tmp}
work=$(mktemp -d "$tmp_root/chat-bench.XXXXXX") || exit 1
peers=${BENCH_PEERS:-$tmp_root/chat-bench-peers}
peers_src=${PEERS_SRC:-$root/../shared/peers}
default_servers="chat.h wss node deno"
[ -n "${PEERS_LOCAL:-}" ] && default_servers="$default_servers uws mongoose"
servers=${BENCH_SERVERS:-$default_servers}
repeat=${BENCH_REPEAT:-1}
[[ $repeat =~ ^[1-9][0-9]?$ ]] || { echo "bench: BENCH_REPEAT must be 1 to 99" >&2; exit 2; }
results=${BENCH_RESULTS:-$tmp_root/chat-bench-results.txt}
CC=${CC:-cc}

# --- every server this script starts is killed on every way out -------------------------------
server_pid=""
load_pid=""
broker_pid=""  # mosquitto, for the MQTT bridge rows
board_b_pid="" # the second board of the cross-board row
stop_pid() { # PID: TERM, then KILL if it is still there after 3 s (bounded)
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317 # called from the trap
cleanup() {
    stop_pid "$load_pid" # timeout(1) passes the TERM on to the load client
    stop_pid "$server_pid"
    stop_pid "$board_b_pid"
    stop_pid "$broker_pid"
    server_pid="" load_pid="" board_b_pid="" broker_pid=""
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM HUP

say() { printf '%s\n' "$*" >&2; }

# --- build -------------------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # idle10k needs >10k descriptors, for every server alike
say "bench: building into $work"
if ! $CC -std=c99 -Wall -Wextra -pedantic -Werror -O2 -o "$work/load" tests/bench/load.c; then
    say "bench: tests/bench/load.c does not build"
    exit 1
fi
if ! "$work/load" selftest >"$work/selftest.txt" 2>&1; then
    cat "$work/selftest.txt" >&2
    say "bench: the load client's selftest failed"
    exit 1
fi
chat_ok=1
if ! $CC -O2 -o "$work/chat" example_main.c 2>"$work/build-chat.txt"; then
    chat_ok=0
    say "bench: example_main.c does not build (chat.h rows will say so):"
    head -5 "$work/build-chat.txt" >&2
fi
heap_ok=1
if [ $chat_ok = 1 ] && ! $CC -O2 -o "$work/heap_server" tests/bench/heap_server.c 2>"$work/build-heap.txt"; then
    heap_ok=0
    say "bench: tests/bench/heap_server.c does not build; idle rows use the plain binary:"
    head -5 "$work/build-heap.txt" >&2
fi
# wss: the same example built with the mbedTLS adapter (-DCHAT_TLS_MBEDTLS), serving a self-signed
# P-256 certificate; the load client speaks TLS (-T). Skipped with a line when mbedTLS is missing.
wss_why=""
if [[ " $servers " == *" wss "* ]]; then
    tls_libs="-lmbedtls -lmbedx509 -lmbedcrypto"
    # shellcheck disable=SC2086 # a word list
    if ! $CC -O2 -DCHAT_TLS_MBEDTLS -o "$work/chat-tls" example_main.c $tls_libs 2>"$work/build-tls.txt" ||
        ! $CC -std=c99 -Wall -Wextra -pedantic -Werror -O2 -DLOAD_TLS -o "$work/load-tls" tests/bench/load.c $tls_libs \
            2>>"$work/build-tls.txt"; then
        wss_why="no mbedTLS to build with (apt-get install -y libmbedtls-dev): $(head -1 "$work/build-tls.txt")"
    elif ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=localhost" \
        -keyout "$work/tls.key" -out "$work/tls.pem" >/dev/null 2>&1; then
        wss_why="openssl could not make a certificate"
    fi
fi
chat_extra=()
# chat.h limits messages per client and second by default (closing a faster client); the peers
# have no limit, so it is switched off for a like-for-like run when the binary has the option.
# The load comes from one address at rates no real client has: chat.h's per-client limits are
# lifted (each option only where `chat -h` lists it, so an older chat.h still runs).
if [ $chat_ok = 1 ]; then
    help=$("$work/chat" -h 2>&1)
    for opt in r R a j; do
        if grep -q -- "-$opt " <<<"$help"; then chat_extra+=("-$opt" 0); fi
    done
fi

# --- the reference peers (npm only; shared/ is read-only: work on a copy) ----------------------
# The maintainers' reference servers, not part of this repository and not needed to use chat.h.
# A peer that cannot run is skipped with a line that names it and says why (here and after the
# table); chat.h still runs.
declare -A alt_bin=()
declare -A alt_heap=()
for kv in ${BENCH_ALT:-}; do
    v=${kv#*=}
    alt_bin[${kv%%=*}]=${v%%,*}
    [[ $v == *,* ]] && alt_heap[${kv%%=*}]=${v#*,}
done
declare -A peer_title=([chat.h+H]="chat.h with a history file (-H)" [node]="Node + ws" [deno]="the Deno tutorial" [uws]="uWebSockets" [mongoose]="mongoose" [wss]="chat.h over wss")
declare -A skipped=() # peer -> why
peers_why=""
case " $servers " in
*" node "* | *" deno "* | *" uws "* | *" mongoose "*)
    if [ ! -d "$peers" ] && [ ! -d "$peers_src" ]; then
        peers_why="no reference peers at $peers_src (the maintainers' reference servers; chat.h does not need them; PEERS_SRC=DIR uses a copy)"
    elif ! { command -v node && command -v npm; } >/dev/null; then
        peers_why="node and npm are not installed (the peers install from npm)"
    else
        if [ ! -d "$peers" ]; then
            cp -r "$peers_src" "$peers" && chmod -R u+w "$peers"
        fi
        if ! { [ -x "$peers/setup.sh" ] && "$peers/setup.sh" >"$work/setup.txt" 2>&1; }; then
            peers_why="their setup failed ($peers/setup.sh: $(tail -1 "$work/setup.txt" 2>/dev/null))"
        fi
    fi
    ;;
esac
skip_peer() { # PEER WHY
    skipped[$1]=$2
    say "bench: skipped $1 (${peer_title[$1]}): $2"
}
[ -n "$wss_why" ] && skip_peer wss "$wss_why"
for srv in $servers; do
    case $srv in
    node | deno | uws | mongoose) ;;
    *) continue ;;
    esac
    if [ -n "$peers_why" ] && { [ "$srv" = node ] || [ "$srv" = deno ] || [ ! -d "$peers" ]; }; then
        skip_peer "$srv" "$peers_why"
    elif [ "$srv" = uws ] || [ "$srv" = mongoose ]; then
        # C/C++ peers: their sources are fetched by a maintainer, never part of this repository
        if [ -z "${PEERS_LOCAL:-}" ]; then
            skip_peer "$srv" "PEERS_LOCAL is not set (extract its sources as ../shared/peers/README.md says)"
        elif ! PEERS_LOCAL=$PEERS_LOCAL "$peers/$srv/build.sh" >"$work/build-$srv.txt" 2>&1; then
            skip_peer "$srv" "it does not build from \$PEERS_LOCAL=$PEERS_LOCAL ($(tail -1 "$work/build-$srv.txt"))"
        fi
    elif [ "$srv" = node ]; then
        [ -f "$peers/node-ws/node_modules/ws/package.json" ] ||
            skip_peer node "ws is not installed in $peers/node-ws (setup.sh did not install it)"
    else
        deno_bin=$("$peers/run-seed.sh" --which-deno 2>/dev/null) || deno_bin=""
        { [ -n "$deno_bin" ] && [ -x "$peers/$deno_bin" ]; } ||
            skip_peer deno "no Deno binary for this machine in $peers/seed-deno (its npm package brings one for linux-x64)"
    fi
done

# --- servers ----------------------------------------------------------------------------------
# Ports below the ephemeral range, so that no client socket of an earlier run holds one.
eph_lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[ -n "$eph_lo" ] && [ "$eph_lo" -gt 12000 ] || eph_lo=32768
port_lo=10000 port_hi=$((eph_lo - 1))
port=$((port_lo + RANDOM % (port_hi - port_lo - 100)))
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port() {
    local i
    for ((i = 0; i < 50; i++)); do
        port=$((port + 1))
        [ $port -lt $port_hi ] || port=$port_lo
        port_busy $port || return 0
    done
    return 1
}

# start_server NAME HEAP(0/1): sets server_pid, srv_err; returns non-zero if it did not come up
start_server() {
    local name=$1 heap=$2 i bin
    next_port || return 1
    srv_err="$work/server-$name-$port.err"
    case $name in
    chat.h | chat.h+H)
        bin="$work/chat"
        [ "$heap" = 1 ] && [ $heap_ok = 1 ] && bin="$work/heap_server"
        local hfile=()
        [ $name = chat.h+H ] && hfile=(-H "$work/history-$port")
        taskset -c 0 "$bin" -p "$port" -b 127.0.0.1 -q -c 20000 "${chat_extra[@]}" "${hfile[@]}" >/dev/null 2>"$srv_err" &
        ;;
    wss) # no heap counter here: most of a TLS client's memory is mbedTLS's own; RSS says it
        taskset -c 0 "$work/chat-tls" -p "$port" -b 127.0.0.1 -q -c 20000 "${chat_extra[@]}" \
            --cert "$work/tls.pem" --key "$work/tls.key" >/dev/null 2>"$srv_err" &
        ;;
    node) QUIET=1 PORT=$port taskset -c 0 "$peers/run-node.sh" >/dev/null 2>"$srv_err" & ;;
    deno) PORT=$port taskset -c 0 "$peers/run-seed.sh" >/dev/null 2>"$srv_err" & ;; # logs every join
    bridge) # chat.h with the MQTT bridge on, as board bench-a of a room of its own
        taskset -c 0 "$work/chat" -p "$port" -b 127.0.0.1 -q -c 20000 "${chat_extra[@]}" -m "$mqtt_url$bench_room" \
            -n bench-a >/dev/null 2>"$srv_err" &
        ;;
    uws | mongoose) PEERS_LOCAL=$PEERS_LOCAL PORT=$port taskset -c 0 "$peers/$name/run.sh" >/dev/null 2>"$srv_err" & ;;
    *)
        [ -n "${alt_bin[$name]:-}" ] || { srv_err=/dev/null; return 1; }
        bin=${alt_bin[$name]}
        [ "$heap" = 1 ] && [ -n "${alt_heap[$name]:-}" ] && bin=${alt_heap[$name]}
        taskset -c 0 "$bin" -p "$port" -b 127.0.0.1 -q -c 20000 "${chat_extra[@]}" >/dev/null 2>"$srv_err" &
        ;;
    esac
    server_pid=$! # taskset and the run scripts exec: this is the server's own PID
    # Ready when it accepts a connection (polled, bounded to 20 s); a server that exits fails.
    for ((i = 0; i < 400; i++)); do
        kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid" 2>/dev/null; server_pid=""; return 1; }
        port_busy "$port" && return 0
        sleep 0.05
    done
    return 1
}

# --- scenarios ---------------------------------------------------------------------------------
# name | load arguments | seconds the whole client run may take at most (a backstop: the client
# bounds every wait itself)
if [ $smoke = 1 ]; then
    scenarios=(
        "fanout|fanout -n 20 -s 3 -w 8 -m 64 -d 1000 -t 5000 -D 3000|20"
        "large|large -n 10 -s 2 -w 4 -m 16384 -d 1000 -t 5000 -D 3000|20"
        "latency|latency -n 5 -r 500 -m 64 -d 1000 -t 5000 -D 3000|20"
        "idle100|idle -n 100 -c 64 -t 5000|20"
        "storm100|storm -n 100 -t 5000|20"
    )
else
    scenarios=(
        "fanout|fanout -n 100 -s 10 -w 8 -m 64 -d 5000 -t 10000 -D 5000|40"
        "large|large -n 100 -s 4 -w 4 -m 16384 -d 5000 -t 10000 -D 5000|40"
        "latency|latency -n 10 -r 2000 -m 64 -d 5000 -t 10000 -D 5000|40"
        "steady|latency -n 100 -r 2000 -m 64 -d 5000 -t 10000 -D 5000|40"
        "fanout1k|fanout -n 1000 -s 10 -w 8 -m 64 -d 5000 -t 20000 -D 5000 -c 256|60"
        "idle1k|idle -n 1000 -c 256 -t 20000|45"
        "idle10k|idle -n 10000 -c 256 -t 20000|60"
        "bigroom|latency -n 10000 -r 20 -m 64 -d 5000 -t 30000 -D 5000 -c 256|75"
        "storm|storm -n 1000 -t 20000|45"
    )
fi

: >"$results"
declare -A R      # R[scenario/server/key] = value
rows=()           # "scenario/server" in order
failures=0        # chat.h rows that failed or lost messages

field() { # LINE KEY
    local kv
    for kv in $1; do
        [ "${kv%%=*}" = "$2" ] && { printf '%s' "${kv#*=}"; return; }
    done
}

run_one() { # SCENARIO SERVER ARGS TIMEOUT REPEAT: fills R[SCENARIO/SERVER/REPEAT/...]
    local sc=$1 srv=$2 args=$3 limit=$4 heap=0 line="" hwm="" extra=() alive=1 key="$1/$2/$5"
    case $sc in idle* | storm*) heap=1 ;; esac
    if { [[ $srv == chat.h* ]] || [ "$srv" = wss ]; } && [ $chat_ok = 0 ]; then
        R[$key/status]="FAIL" R[$key/flags]="build-failed"
        return
    fi
    if [ -n "${skipped[$srv]:-}" ]; then
        R[$key/status]="skipped" R[$key/flags]="see-below"
        return
    fi
    if [ "$srv" = wss ] && [ "$sc" = idle10k ]; then # ~37 KB of mbedTLS buffers each: 370 MB says nothing new
        R[$key/status]="skipped" R[$key/flags]="idle1k-says-it"
        return
    fi
    if ! start_server "$srv" $heap; then
        R[$key/status]="FAIL" R[$key/flags]="did-not-start"
        say "bench: $srv did not start on port $port for $sc:"
        [ -f "$srv_err" ] && tail -5 "$srv_err" >&2
        stop_pid "$server_pid"
        server_pid=""
        return
    fi
    [[ $srv == chat.h* ]] && [ $heap = 1 ] && [ $heap_ok = 1 ] && extra=(-H "$srv_err")
    [ $heap = 1 ] && [ -n "${alt_heap[$srv]:-}" ] && extra=(-H "$srv_err")
    if [ "$srv" = bridge ] && [[ $sc == cross* ]]; then # the receivers on a second board
        local a_port=$port
        next_port
        taskset -c 0 "$work/chat" -p "$port" -b 127.0.0.1 -q -c 20000 "${chat_extra[@]}" -m "$mqtt_url$bench_room" \
            -n bench-b >/dev/null 2>>"$srv_err" &
        board_b_pid=$!
        extra+=(-q "$port")
        for ((i = 0; i < 400; i++)); do port_busy "$port" && break; sleep 0.05; done
        port=$a_port
    fi
    local load="$work/load"
    [ "$srv" = wss ] && load="$work/load-tls" extra+=(-T)
    # shellcheck disable=SC2086 # args is a word list on purpose
    timeout -k 2 "$limit" taskset -c 1 "$load" $args -p "$port" -P "$server_pid" -S "$srv" -L "$sc" \
        "${extra[@]}" >"$work/result.txt" 2>"$work/load.err" &
    load_pid=$!
    wait $load_pid
    load_pid=""
    line=$(grep '^RESULT ' "$work/result.txt" | tail -1)
    if kill -0 "$server_pid" 2>/dev/null; then
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null)
    else
        alive=0
    fi
    stop_pid "$server_pid"
    stop_pid "$board_b_pid"
    server_pid="" board_b_pid=""
    if [ -z "$line" ]; then
        line="RESULT scenario=$sc server=$srv status=FAIL reason=no_result_from_the_load_client"
        tail -3 "$work/load.err" >&2
    fi
    printf '%s peak_rss_kb=%s server_alive=%s\n' "$line" "${hwm:--}" "$alive" >>"$results"
    local k
    for k in status dps p50_us p99_us srv_cpu_s delivered lost join_ms bytes rss_per_conn_b heap_per_conn_b \
        client_cpu other_cpu late_ticks sent probe closed failed reason open joined clients; do
        R[$key/$k]=$(field "$line" $k)
    done
    R[$key/hwm]=$hwm
    local flags=()
    [ $alive = 0 ] && flags+=("server-died")
    awk -v c="${R[$key/client_cpu]:-0}" 'BEGIN { exit !(c > 0.9) }' && flags+=("client-bound")
    # /proc/stat counts in clock ticks (10 ms): judge only phases long enough for that
    awk -v c="${R[$key/other_cpu]:-0}" -v w="$(field "$line" wall_s)" 'BEGIN { exit !(c > 0.3 && w >= 0.5) }' &&
        flags+=("noisy")
    [ -n "${R[$key/lost]}" ] && [ "${R[$key/lost]}" != 0 ] && flags+=("LOST")
    [ "${R[$key/probe]:-}" = FAIL ] && flags+=("64k-probe-failed")
    [ "${R[$key/closed]:-0}" != 0 ] && flags+=("closed:${R[$key/closed]}")
    awk -v l="${R[$key/late_ticks]:-0}" -v s="${R[$key/sent]:-0}" 'BEGIN { exit !(s > 0 && l > s / 100) }' &&
        flags+=("late-pacing")
    [ "${R[$key/status]}" = DNF ] && flags+=("DNF:${R[$key/open]}-open,${R[$key/joined]}-complete-of-${R[$key/clients]}")
    [ "${R[$key/status]}" = FAIL ] && [ -n "${R[$key/reason]}" ] && flags+=("${R[$key/reason]}")
    R[$key/flags]=$(IFS=,; printf '%s' "${flags[*]:-}")
    say "bench: $sc $srv: ${R[$key/status]}${R[$key/flags]:+ (${R[$key/flags]})}"
}

# The servers take turns within each repeat, so a slow spell of the machine hits them alike.
for entry in "${scenarios[@]}"; do
    IFS='|' read -r sc args limit <<<"$entry"
    if [ -n "${BENCH_ONLY:-}" ] && [[ " $BENCH_ONLY " != *" $sc "* ]]; then continue; fi
    for srv in $servers; do rows+=("$sc/$srv"); done
    for ((rep = 1; rep <= repeat; rep++)); do
        for srv in $servers; do
            run_one "$sc" "$srv" "$args" "$limit" "$rep"
        done
    done
done

# --- the MQTT bridge (README "More than one board"): fanout on one board with the bridge on (its
# cost beside the chat.h row above), and the latency load with the sender on one board and the
# receivers on another (cross); one mosquitto for both, on core 0 with the board (as on a board
# that runs its own broker): on core 1 it would take CPU from the load client, which then sends
# fewer messages per turn, and the server's CPU per delivery would rise for that reason alone.
bridge_rows=()
bridge_why=""
if [[ " $servers " != *" chat.h "* ]]; then
    bridge_why="chat.h is not among BENCH_SERVERS"
elif [ $chat_ok = 0 ]; then
    bridge_why="example_main.c does not build"
elif ! command -v mosquitto >/dev/null; then
    bridge_why="mosquitto is not installed (apt-get install mosquitto)"
elif ! grep -q -- "-m URL" <<<"$help"; then
    bridge_why="this chat has no -m"
elif next_port; then
    # as root mosquitto would become user mosquitto, who cannot read this directory
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n%s' "$port" \
        "$([ "$(id -u)" = 0 ] && echo 'user root')" >"$work/mosquitto.conf"
    taskset -c 0 mosquitto -c "$work/mosquitto.conf" >/dev/null 2>"$work/mosquitto.err" &
    broker_pid=$!
    mqtt_url="mqtt://127.0.0.1:$port/"
    for ((i = 0; i < 400; i++)); do port_busy "$port" && break; sleep 0.05; done
    port_busy "$port" || bridge_why="mosquitto did not start: $(tail -1 "$work/mosquitto.err")"
else
    bridge_why="no free port for mosquitto"
fi
if [ -n "$bridge_why" ]; then
    say "bench: skipped the MQTT bridge rows: $bridge_why"
else
    room_n=0
    for entry in "${scenarios[@]}"; do
        IFS='|' read -r sc args limit <<<"$entry"
        case $sc in
        fanout) rows_of=(fanout) ;;
        latency) rows_of=(latency cross) ;;
        steady) rows_of=(steady) ;;
        *) continue ;;
        esac
        for row in "${rows_of[@]}"; do
            if [ -n "${BENCH_ONLY:-}" ] && [[ " $BENCH_ONLY " != *" $row "* ]]; then continue; fi
            rows+=("$row/bridge")
            bridge_rows+=("$row")
            for ((rep = 1; rep <= repeat; rep++)); do
                room_n=$((room_n + 1))
                bench_room="bench$room_n"
                run_one "$row" bridge "$args" "$limit" "$rep"
            done
        done
    done
fi

# --- one row per scenario and server: the median of the repeats -------------------------------
num() { [ -n "${1:-}" ] && [ "$1" != "-" ] && [ "$1" != "-1" ] && [ "$1" != "-1.0" ] && [ "$1" != "-1.00" ]; }
fmt() { # AWK-FORMAT VALUE (or "-")
    if num "${2:-}"; then awk -v v="$2" "BEGIN { printf \"$1\", v }"; else printf -- '-'; fi
}
median() { # VALUES...: the median of the numeric ones ("-" if none)
    printf '%s\n' "$@" | awk '$1 ~ /^-?[0-9.]+$/ && $1 != "-1" { v[n++] = $1 } END {
        if (!n) { print "-"; exit }
        for (i = 1; i < n; i++) for (j = i; j > 0 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
        print (n % 2) ? v[int(n/2)] : (v[n/2-1] + v[n/2]) / 2 }'
}
per_million() { # CPU_S DELIVERED: CPU seconds per million deliveries, or "-"
    awk -v c="${1:-}" -v d="${2:-}" 'BEGIN { if (c ~ /^[0-9.]+$/ && d + 0 > 0) printf "%.3f", c / (d / 1e6); else print "-" }'
}
for row in "${rows[@]}"; do
    vals=() runs="" worst=ok flags=() lost_sum=0 lost_any=0
    for k in dps p50_us p99_us delivered join_ms bytes rss_per_conn_b heap_per_conn_b hwm cpm; do
        vals=()
        for ((rep = 1; rep <= repeat; rep++)); do
            if [ $k = cpm ]; then
                R[$row/$rep/cpm]=$(per_million "${R[$row/$rep/srv_cpu_s]:-}" "${R[$row/$rep/delivered]:-}")
            fi
            vals+=("${R[$row/$rep/$k]:-}")
        done
        R[$row/$k]=$(median "${vals[@]}")
    done
    for ((rep = 1; rep <= repeat; rep++)); do
        st=${R[$row/$rep/status]:-FAIL}
        case $st in FAIL) worst=FAIL ;; skipped) [ $worst = ok ] && worst=skipped ;; DNF) [ $worst != FAIL ] && worst=DNF ;; esac
        [ -n "${R[$row/$rep/flags]:-}" ] && flags+=("${R[$row/$rep/flags]}$([ "$repeat" -gt 1 ] && printf '@%d' $rep)")
        l=${R[$row/$rep/lost]:-}
        [ -n "$l" ] && [ "$l" != - ] && { lost_any=1; lost_sum=$((lost_sum + l)); }
        case ${row%%/*} in
        fanout* | large* | latency* | steady* | bigroom* | cross*) runs+="${runs:+ }${R[$row/$rep/cpm]:--}/$(fmt '%.0f' "${R[$row/$rep/p99_us]:-}")" ;;
        *) runs+="${runs:+ }${R[$row/$rep/join_ms]:--}" ;;
        esac
    done
    R[$row/status]=$worst
    R[$row/flags]=$(IFS=,; printf '%s' "${flags[*]:-}")
    R[$row/lost]=$([ $lost_any = 1 ] && echo $lost_sum || echo -)
    R[$row/runs]=$runs
done

# --- the table ---------------------------------------------------------------------------------
printf '\n'
hdr='%-9s %-8s %-6s %10s %9s %9s %9s %8s %9s %9s %7s %9s %12s  %-s\n'
# shellcheck disable=SC2059
printf "$hdr" scenario server status deliv/s p50_us p99_us cpu_s/M peak_MB rss/conn heap/conn lost join_ms bytes \
    "$([ "$repeat" -gt 1 ] && printf 'runs (cpu_s/M/p99_us or join_ms)  ')flags"
for key in "${rows[@]}"; do
    sc=${key%%/*} srv=${key#*/}
    st=${R[$key/status]:-FAIL}
    dps="-" cpm="-" p50="-" p99="-" rsspc="-" heappc="-" lost="-" jm="-" bytes="-" mb="-"
    case $sc in
    fanout* | large* | latency* | steady* | bigroom* | cross*)
        dps=$(fmt '%.0f' "${R[$key/dps]:-}")
        p50=$(fmt '%.0f' "${R[$key/p50_us]:-}")
        p99=$(fmt '%.0f' "${R[$key/p99_us]:-}")
        cpm=$(fmt '%.3f' "${R[$key/cpm]:-}")
        lost=${R[$key/lost]:--}
        ;;
    *)
        rsspc=$(fmt '%.0f' "${R[$key/rss_per_conn_b]:-}")
        heappc=$(fmt '%.0f' "${R[$key/heap_per_conn_b]:-}")
        bytes=${R[$key/bytes]:--}
        ;;
    esac
    jm=${R[$key/join_ms]:--}
    num "${R[$key/hwm]:-}" && mb=$(awk -v k="${R[$key/hwm]}" 'BEGIN { printf "%.1f", k / 1024 }')
    tail_col="${R[$key/flags]:-}"
    [ "$repeat" -gt 1 ] && tail_col="[${R[$key/runs]}]  $tail_col"
    # shellcheck disable=SC2059
    printf "$hdr" "$sc" "$srv" "$st" "$dps" "$p50" "$p99" "$cpm" "$mb" "$rsspc" "$heappc" "$lost" "$jm" "$bytes" "$tail_col"
    if { [[ $srv == chat.h* ]] || [ "$srv" = bridge ] || [ "$srv" = wss ]; } && [ "$st" != skipped ] &&
        { [ "$st" != ok ] || { [ "$lost" != - ] && [ "$lost" != 0 ]; }; }; then
        failures=$((failures + 1))
    fi
done

# --- chat.h against each peer, the key numbers of each scenario --------------------------------
ratio() { # PEER SCENARIO KEY HOW(higher|lower) TEXT
    local c n p=$1 sc=$2 k=$3
    c=${R[$sc/chat.h/$k]:-} n=${R[$sc/$p/$k]:-}
    if [ -z "${R[$sc/chat.h/status]:-}" ] || [ -z "${R[$sc/$p/status]:-}" ] || [ "${R[$sc/$p/status]}" = skipped ]; then return; fi
    if [ "${R[$sc/chat.h/status]}" != ok ]; then
        printf '  %-9s %-28s chat.h %s\n' "$sc" "$5" "${R[$sc/chat.h/status]}"
    elif [ "${R[$sc/$p/status]}" != ok ]; then
        local why="did not finish within the bound"
        [ "${R[$sc/$p/status]}" = DNF ] || why="${R[$sc/$p/flags]}"
        printf '  %-9s %-28s chat.h %s, %s %s (%s)\n' "$sc" "$5" "$c" "$p" "${R[$sc/$p/status]}" "$why"
    elif num "$c" && num "$n" && awk -v n="$n" 'BEGIN { exit !(n != 0) }'; then
        awk -v c="$c" -v n="$n" -v t="$5" -v sc="$sc" -v how="$4" -v p="$p" \
            'BEGIN { printf "  %-9s %-28s chat.h / %s = %.3g  (%s is better; chat.h %s, %s %s)\n", sc, t, p, c / n, how, c, p, n }'
    fi
}
for peer in chat.h+H "${!alt_bin[@]}" node uws mongoose; do
    [[ " $servers " == *" $peer "* ]] && [ -z "${skipped[$peer]:-}" ] || continue
    printf '\nchat.h relative to %s:\n' "${peer_title[$peer]:-$peer}"
    for entry in "${scenarios[@]}"; do
        IFS='|' read -r sc _ _ <<<"$entry"
        case $sc in
        fanout* | large*)
            ratio $peer "$sc" dps higher "deliveries/s"
            ratio $peer "$sc" cpm lower "CPU-s per 1M deliveries"
            ;;
        latency* | steady* | bigroom*)
            ratio $peer "$sc" p99_us lower "p99 latency (us)"
            ratio $peer "$sc" cpm lower "CPU-s per 1M deliveries"
            ;;
        idle*)
            ratio $peer "$sc" rss_per_conn_b lower "RSS per idle connection (B)"
            ratio $peer "$sc" join_ms lower "time to converge (ms)"
            ;;
        storm*)
            ratio $peer "$sc" join_ms lower "time to converge (ms)"
            ratio $peer "$sc" bytes lower "bytes to converge"
            ;;
        esac
    done
done

if [ ${#bridge_rows[@]} -gt 0 ]; then
    printf '\nthe MQTT bridge (server "bridge": chat.h with -m, mosquitto on core 0):\n'
    on=${R[fanout/bridge/cpm]:-} off=${R[fanout/chat.h/cpm]:-}
    if num "$on" && num "$off"; then
        awk -v a="$on" -v b="$off" 'BEGIN { printf "  fanout    server CPU-s per 10^6 deliveries, bridge on / off = %.2f (target <= 1.25; on %s, off %s)\n", a / b, a, b }'
    fi
    on=${R[steady/bridge/cpm]:-} off=${R[steady/chat.h/cpm]:-}
    if num "$on" && num "$off"; then
        awk -v a="$on" -v b="$off" 'BEGIN { printf "  steady    the same offered load (100 clients, 2,000 msg/s), server CPU-s per 10^6 deliveries, bridge on / off = %.2f (on %s, off %s)\n", a / b, a, b }'
    fi
    if num "${R[cross/bridge/p99_us]:-}"; then
        printf '  cross     one sender at the latency row'"'"'s rate on one board, the receivers on another: p50 %s us, p99 %s us (target: p99 <= 2000 us)\n' \
            "$(fmt '%.0f' "${R[cross/bridge/p50_us]}")" "$(fmt '%.0f' "${R[cross/bridge/p99_us]}")"
    fi
fi

# --- what TLS costs: chat.h over wss beside chat.h over ws, in this run ----------------------------
if [[ " $servers " == *" wss "* ]] && [ -z "$wss_why" ]; then
    printf '\nchat.h over wss relative to over ws (TLS: AES-GCM per recipient, a record per flush):\n'
    for entry in "${scenarios[@]}"; do
        IFS='|' read -r sc _ _ <<<"$entry"
        w=$sc/wss p=$sc/chat.h
        [ "${R[$w/status]:-}" = ok ] && [ "${R[$p/status]:-}" = ok ] || continue
        case $sc in
        fanout* | large*)
            awk -v w="${R[$w/cpm]}" -v p="${R[$p/cpm]}" -v sc="$sc" 'BEGIN { if (w > 0 && p > 0)
                printf "  %-9s server CPU-s per 10^6 deliveries: ws %.3f, wss %.3f (x%.1f; +%.2f us per delivery)\n", sc, p, w, w / p, w - p }' ;;
        latency*)
            printf '  %-9s p50 / p99 us: ws %s / %s, wss %s / %s\n' "$sc" "${R[$p/p50_us]}" "${R[$p/p99_us]}" \
                "${R[$w/p50_us]}" "${R[$w/p99_us]}" ;;
        idle*)
            printf '  %-9s RSS per idle connection (B): ws %s, wss %s\n' "$sc" "${R[$p/rss_per_conn_b]}" "${R[$w/rss_per_conn_b]}" ;;
        esac
    done
fi

gap=$'\n'
for srv in $servers; do
    [ -n "${skipped[$srv]:-}" ] || continue
    printf '%sskipped %s (%s): %s\n' "$gap" "$srv" "${peer_title[$srv]}" "${skipped[$srv]}"
    gap=""
done

elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }')
printf '\nservers on core 0, load client on core 1 (taskset); %s; %s s in all; raw results: %s\n' \
    "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" "$elapsed" "$results"
printf 'flags: client-bound = the load client used >90%% of its core; noisy = other processes used >30%% of a core during the measurement; DNF = not every client saw the full user list in time\n'
if [ $failures -gt 0 ]; then
    say "bench: $failures chat.h row(s) failed or lost messages"
    [ $smoke = 1 ] && exit 1
    exit 1
fi
exit 0
