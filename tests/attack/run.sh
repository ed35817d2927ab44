#!/usr/bin/env bash
# tests/attack/run.sh - issue 10: bounded memory and fair service while every attack of the issue
# runs at once against one server (tests/attack/attack.c: the attacks, the probe, the figures).
#
#   bash tests/attack/run.sh                    both builds: ./chat and ./chat-small (make test-memory
#                                               builds them; the Makefile's SMALL_BOARD flags)
#   bash tests/attack/run.sh small              one build (default | small)
#   CHAT_BIN=/tmp/old-chat bash tests/attack/run.sh default -- -r 0
#                                               any binary with one build's profile (attack sizes and
#                                               thresholds); words after -- go to the server
#
# Each build: a fresh server on 127.0.0.1 (`CHAT_BIN -p PORT -b 127.0.0.1 SERVER_ARGS`), the
# probe joins, ATTACK_MS of attack, the attack clients close, DRAIN_MS at most for the server's
# socket memory to fall, a fresh join; about 16 s (bounded near 40 s) per build. One line per check,
# the last line "N passed, M failed"; exit 1 if any failed.
#
# Environment:
#   thresholds       MEM_<BUILD>_RSS_KB, MEM_<BUILD>_SOCK_KB, MEM_<BUILD>_AFTER_KB (BUILD = DEFAULT or
#                    SMALL; defaults in the profile blocks below)
#   CHAT_BIN         the server binary (default ./chat, ./chat-small); CHAT_MAX_MESSAGE its
#                    CHAT_MAX_MESSAGE (default 65536 and SMALL_MAX_MESSAGE, 4096), which sizes the
#                    talker's messages
#   ATTACK_MS        attack length (15000), DRAIN_MS (10000), TRICKLE_MS (A4's interval, 2000)
#   ATTACK_ARGS      more tests/attack/attack.c options (e.g. "--slow 50 --pipe-nope 200")
#   ATTACK_KEEP=1    keep the work directory (server logs, the attack's full output)
#   CC               compiler for attack.c (default cc)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

builds=()
server_args=()
while [ $# -gt 0 ]; do
    case $1 in
    default | small) builds+=("$1") ;;
    --) shift; server_args=("$@"); break ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "usage: $0 [default|small ...] [-- SERVER_ARGS...]" >&2; exit 2 ;;
    esac
    shift
done
[ ${#builds[@]} -gt 0 ] || builds=(default small)

# --- the profiles: attack sizes and thresholds, one block per build -----------------------------
# Thresholds, from README's worst-case formula ("Limits and failure behaviour"):
#   small board: heap <= S + C x P = 0.3 MB + 56 x 98.6 KB = 5.8 MB, on top of the ~1.8 MB the
#   process has at start: 8 MiB; the kernel: C x 2 x (SNDBUF + RCVBUF) = 56 x 64 KiB = 3.5 MiB.
#   default: the formula allows far more than any test should need (1,296 connections of 1.5 MB
#   each); this attack mix of ~375 connections gets a budget of 32 MiB RSS, and of its own
#   connections' kernel share (375 x 256 KiB = 94 MiB) 64 MiB -- the unfixed server reached 243 MB
#   and 935 MB.
profile() {
    case $1 in
    default)
        bin=${CHAT_BIN:-./chat}
        max_message=${CHAT_MAX_MESSAGE:-65536}
        rss_max_kb=${MEM_DEFAULT_RSS_KB:-32768}     # server VmHWM
        sock_max_kb=${MEM_DEFAULT_SOCK_KB:-65536}   # the server's sockets, r+w, peak
        after_max_kb=${MEM_DEFAULT_AFTER_KB:-1024}  # ... after the attack clients closed, and
                                                    # what FIN-WAIT-1 sockets may hold during it
        # about 375 connections from 45 addresses (A7: 35 + 35 from one address each)
        sizes=(--pipe-nope 128 --pipe-page 32 --ping-empty 4 --ping-full 4 --slow 60 --slow-waves 3
            --talk-rate 20 --trickle 70 --churn 3 --frag 1 --pong 1 --hoard-ws 35 --hoard-http 35)
        ;;
    small)
        bin=${CHAT_BIN:-./chat-small}
        max_message=${CHAT_MAX_MESSAGE:-${SMALL_MAX_MESSAGE:-4096}}
        rss_max_kb=${MEM_SMALL_RSS_KB:-8192}
        sock_max_kb=${MEM_SMALL_SOCK_KB:-3584}
        after_max_kb=${MEM_SMALL_AFTER_KB:-256}
        # about 110 connections; the joined ones other than A7 (and the probe) stay well under
        # CHAT_MAX_CLIENTS=32, so that a per-address limit leaves the probe room to join
        sizes=(--pipe-nope 12 --pipe-page 4 --ping-empty 1 --ping-full 1 --slow 6 --slow-waves 1
            --talk-rate 50 --trickle 16 --churn 2 --frag 1 --pong 1 --hoard-ws 33 --hoard-http 33)
        ;;
    esac
}

# --- work directory, cleanup --------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/chat-attack.XXXXXX") || exit 1
main_pid=$BASHPID # a subshell signalled before it has reset its traps runs ours: they check this
server_pid=""
drain_pid=""
stop_server() { # TERM, then wait for the exit, at most 5 s (then KILL); sets server_rc
    local timer done_pid="" rc
    server_rc=""
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null
    sleep 5 & # the deadline; it ends by itself
    timer=$!
    wait -n -p done_pid "$server_pid" "$timer" 2>/dev/null # bash 5.1+
    rc=$?
    if [ "$done_pid" = "$server_pid" ]; then
        server_rc=$rc
    else
        kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_rc="$? (killed: no exit within 5 s of SIGTERM)"
    fi
    server_pid=""
    if [ -n "$drain_pid" ]; then wait "$drain_pid" 2>/dev/null; drain_pid=""; fi
}
cleanup() {
    [ "$BASHPID" = "$main_pid" ] || return 0
    stop_server
    exec 3<&- 2>/dev/null
    if [ "${ATTACK_KEEP:-0}" = 1 ]; then echo "attack: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap '[ "$BASHPID" = "$main_pid" ] || exit 143; echo "attack: interrupted" >&2; exit 130' INT TERM HUP

ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 4096 2>/dev/null || true
CC=${CC:-cc}
if ! $CC -std=c99 -Wall -Wextra -pedantic -Werror -O2 -o "$work/attack" tests/attack/attack.c; then
    echo "attack: tests/attack/attack.c does not build"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! command -v ss >/dev/null; then echo "attack: ss (iproute2) is missing: socket memory is not measured" >&2; fi

passed=0 failed=0
check() { # LABEL OK(0/1) DETAIL
    if [ "$2" = 1 ]; then passed=$((passed + 1)); printf 'ok    %s (%s)\n' "$1" "$3"
    else failed=$((failed + 1)); printf 'FAIL  %s (%s)\n' "$1" "$3"; fi
}
le() { [ -n "$1" ] && [ "$1" -ge 0 ] && [ "$1" -le "$2" ] && echo 1 || echo 0; } # known and <= bound
eq() { [ -n "$1" ] && [ "$1" = "$2" ] && echo 1 || echo 0; }

# A fresh server on a free port below the ephemeral range (no client socket of the attack can
# have that local port, so `ss sport = :PORT` sees the server's sockets only). Ready when it
# prints its "Listening" line (read through a FIFO, bounded by read -t); sets server_pid, port.
eph_lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[ -n "$eph_lo" ] && [ "$eph_lo" -gt 12000 ] || eph_lo=32768
start_server() { # BUILD
    local attempt line fifo="$work/server-$1.fifo"
    for ((attempt = 0; attempt < 5; attempt++)); do
        port=$((10000 + RANDOM % (eph_lo - 10100)))
        rm -f "$fifo"
        mkfifo "$fifo" || return 1
        "$bin" -p "$port" -b 127.0.0.1 "${server_args[@]}" >"$fifo" 2>"$work/server-$1.err" &
        server_pid=$!
        exec 3<"$fifo"
        line=""
        while IFS= read -r -t 10 line <&3; do
            case $line in Listening*) break ;; esac
        done
        case $line in
        Listening*)
            cat <&3 >"$work/server-$1.out" & # keep draining stdout (a line per join)
            drain_pid=$!
            exec 3<&-
            return 0
            ;;
        esac
        exec 3<&-
        stop_server
    done
    return 1
}

run_build() { # BUILD
    local b=$1 out="$work/attack-$1.out" err="$work/attack-$1.err" alive attack_rc
    profile "$b"
    echo "== $b build: $bin ${server_args[*]} (CHAT_MAX_MESSAGE $max_message)"
    if [ ! -x "$bin" ]; then
        check "[$b] the server binary exists" 0 "$bin is not executable"
        return
    fi
    if ! start_server "$b"; then
        check "[$b] the server starts" 0 "no Listening line; $(tail -2 "$work/server-$b.err" | tr '\n' ' ')"
        return
    fi
    # shellcheck disable=SC2086 # ATTACK_ARGS is a list of words
    timeout 120 "$work/attack" -p "$port" -P "$server_pid" --max-message "$max_message" "${sizes[@]}" \
        --duration "${ATTACK_MS:-15000}" --drain-ms "${DRAIN_MS:-10000}" --trickle-ms "${TRICKLE_MS:-2000}" \
        --after-kb "$after_max_kb" ${ATTACK_ARGS:-} >"$out" 2>"$err"
    attack_rc=$?
    alive=0
    kill -0 "$server_pid" 2>/dev/null && alive=1
    stop_server
    grep -E '^(info|measure)' "$out" | sed 's/^/  /'
    if [ -s "$err" ]; then
        echo "  probe and attack messages ($(wc -l <"$err") lines; the first 12):"
        head -12 "$err" | sed 's/^/    /'
    fi
    m() { awk -v k="$1" '$1 == "measure" && $2 == k { v = $3 } END { print v }' "$out"; }
    local ok
    ok=0; [ "$attack_rc" = 0 ] && [ -n "$(m fresh_join)" ] && ok=1
    check "[$b] the attack client ran to the end" $ok "exit status $attack_rc, $(grep -c '^measure' "$out") measurements"
    [ $ok = 1 ] || tail -20 "$err" | sed 's/^/    /'
    check "[$b] the server is alive at the end" $alive "exit status after SIGTERM: ${server_rc:-?}"
    check "[$b] the probe joined before the attack" "$(eq "$(m probe_ready)" 1)" "probe_ready $(m probe_ready)"
    ok=$(eq "$(m probe_http_fail)" 0); [ "$(m probe_http_ok)" -gt 0 ] 2>/dev/null || ok=0
    check "[$b] the probe's GET / never failed or stalled" "$ok" \
        "$(m probe_http_ok) ok, $(m probe_http_fail) failed, slowest $(m probe_http_max_ms) ms"
    ok=$(eq "$(m probe_ws_fail)" 0); [ "$(m probe_ws_ok)" -gt 0 ] 2>/dev/null || ok=0
    check "[$b] the probe always heard its own message back in time" "$ok" \
        "$(m probe_ws_ok) ok, $(m probe_ws_fail) failed, slowest $(m probe_ws_max_ms) ms"
    ok=$(eq "$(m probe_join_fail)" 0); [ "$(m probe_join_ok)" -gt 0 ] 2>/dev/null || ok=0
    check "[$b] a new user could always join during the attack" "$ok" \
        "$(m probe_join_ok) ok, $(m probe_join_fail) failed, slowest $(m probe_join_max_ms) ms"
    ok=0
    [ "$(m slow_joined)" -gt 0 ] 2>/dev/null && [ $(($(m slow_closed) * 2)) -ge "$(m slow_joined)" ] && ok=1
    check "[$b] the server closed the slow readers (at least half)" $ok \
        "$(m slow_closed) of $(m slow_joined) joined seen leaving"
    check "[$b] peak RSS <= $rss_max_kb KiB" "$(le "$(m rss_peak_kb)" "$rss_max_kb")" \
        "VmHWM $(m rss_peak_kb) KiB, VmRSS before $(m rss_before_kb) KiB"
    check "[$b] peak socket memory <= $sock_max_kb KiB" "$(le "$(m sock_mem_peak_kb)" "$sock_max_kb")" \
        "r+w $(m sock_mem_peak_kb) KiB (r $(m sock_mem_peak_r_kb), w $(m sock_mem_peak_w_kb)); system-wide TCP $(m tcp_mem_before_kb) -> $(m tcp_mem_peak_kb) KiB"
    # The attack clients' close resets the server's orphans, so the two checks after it cannot see
    # orphans that hold memory while an attacker keeps its end open (and never reads): this one can.
    check "[$b] orphaned FIN-WAIT-1 sockets never held more than $after_max_kb KiB during the attack" \
        "$(le "$(m sock_finwait1_mem_peak_kb)" "$after_max_kb")" \
        "up to $(m sock_finwait1_peak) sockets, up to $(m sock_finwait1_mem_peak_kb) KiB"
    check "[$b] socket memory <= $after_max_kb KiB once the attack clients closed" \
        "$(le "$(m sock_mem_after_kb)" "$after_max_kb")" "$(m sock_mem_after_kb) KiB; drained in $(m drain_ms) ms"
    check "[$b] no FIN-WAIT-1 socket left after that" "$(eq "$(m sock_finwait1_after)" 0)" \
        "$(m sock_finwait1_after) left"
    check "[$b] a fresh user joins after the attack and hears itself" "$(eq "$(m fresh_join)" 1)" \
        "fresh_join $(m fresh_join)"
}

for b in "${builds[@]}"; do run_build "$b"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
