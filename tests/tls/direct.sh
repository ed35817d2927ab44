#!/usr/bin/env bash
# TLS in chat.h itself (issue 16): the mbedTLS adapter, with no proxy in front.
#   ./chat-tls --cert --key    bad certificates and keys: one line and exit 1; then against
#                              openssl s_client (TLS 1.2 with ECDHE + AEAD; TLS 1.0, 1.1 and a
#                              suite without forward secrecy refused), Python's websockets, and
#                              Debian's Chromium (tests/tls/e2e.mjs: the page over https + wss)
#   tests/run_tests-wss        the conformance cases over wss, and TLS's own tests
#   the same under ASan + UBSan, and (most of it) under valgrind
# Last line: "N passed, M failed".     bash tests/tls/direct.sh    (make tls, after the nginx test)
set -uo pipefail
cd "$(dirname "$0")/../.."
CC=${CC:-cc}
for tool in openssl /usr/bin/python3 valgrind; do
    command -v "$tool" >/dev/null || { echo "tls: $tool is missing (apt-get install -y openssl python3-websockets valgrind)" >&2; exit 1; }
done
[ -x ./chat-tls ] && [ -x ./tests/run_tests-wss ] || make chat-tls tests/run_tests-wss >/dev/null || exit 1

work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
passed=0 failed=0
check() { # NAME OK(0/1) [DETAIL]
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok   $1"
    else failed=$((failed + 1)); echo "FAIL $1${3:+: $3}"; fi
}

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" -keyout "$work/rsa.key" -out "$work/rsa.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=localhost" \
    -keyout "$work/ec.key" -out "$work/ec.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/other.key" 2>/dev/null
printf 'not a certificate\n' >"$work/garbage.pem"

# --- certificate and key errors at start: one clear line, exit 1, nothing else -------------------
bad_start() { # NAME WANT(in the line) ARGS...
    local name=$1 want=$2 status lines
    shift 2
    timeout 10 ./chat-tls -p 0 -b 127.0.0.1 "$@" >"$work/out" 2>"$work/err"
    status=$?
    lines=$(wc -l <"$work/err")
    if [ $status = 1 ] && [ "$lines" = 1 ] && grep -q -- "$want" "$work/err" && [ ! -s "$work/out" ]; then
        check "$name: $(cat "$work/err")" 0
    else
        check "$name" 1 "exit $status, $lines lines: $(head -c 300 "$work/err")"
    fi
}
bad_start "a missing certificate" "nowhere.pem: cannot load the certificate" --cert "$work/nowhere.pem" --key "$work/rsa.key"
bad_start "a certificate that is not one" "garbage.pem: cannot load the certificate" --cert "$work/garbage.pem" --key "$work/rsa.key"
bad_start "a missing key" "nowhere.key: cannot load the private key" --cert "$work/rsa.pem" --key "$work/nowhere.key"
bad_start "a certificate as the key" "rsa.pem: cannot load the private key" --cert "$work/rsa.pem" --key "$work/rsa.pem"
bad_start "a key of another certificate" "other.key: the key does not belong to the certificate" --cert "$work/rsa.pem" --key "$work/other.key"
timeout 10 ./chat-tls --cert "$work/rsa.pem" >/dev/null 2>"$work/err"
status=$?
check "--cert without --key: exit 2, one line" "$([ $status = 2 ] && [ "$(wc -l <"$work/err")" = 1 ]; echo $?)" "exit $status"

# --- the server with the RSA certificate ---------------------------------------------------------
./chat-tls -p 0 -b 127.0.0.1 -v --cert "$work/rsa.pem" --key "$work/rsa.key" >"$work/chat.out" 2>"$work/chat.err" &
pid=$!
for _ in $(seq 100); do grep -q '^Listening at' "$work/chat.out" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/^Listening at https:\/\/.*:\([0-9]*\)$/\1/p' "$work/chat.out" | head -1)
check "the banner says https://" "$([ -n "$port" ]; echo $?)" "$(head -1 "$work/chat.out")"
[ -n "$port" ] || { echo "$passed passed, $failed failed"; exit 1; }

s_client() { # ARGS...: the handshake's summary (or error) in $work/s_client
    echo | timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost "$@" >"$work/s_client" 2>&1
}
s_client -tls1_2
check "openssl s_client -tls1_2: TLS 1.2, ECDHE with AES-GCM" \
    "$(grep -q 'Protocol  *: TLSv1.2' "$work/s_client" && grep -Eq 'Cipher  *: ECDHE-RSA-AES(128|256)-GCM' "$work/s_client"; echo $?)" \
    "$(grep -E 'Protocol|Cipher|error' "$work/s_client" | head -3)"
s_client -sess_out "$work/session"
s_client -sess_in "$work/session"
check "openssl s_client: a session ticket resumes the session (no new key exchange)" \
    "$(grep -q '^Reused, TLSv1.2' "$work/s_client"; echo $?)" "$(grep -E '^(New|Reused)' "$work/s_client")"
check "openssl s_client, any version: TLS 1.2 (mbedTLS 2.28 has no TLS 1.3 server)" \
    "$(grep -q 'Protocol  *: TLSv1.2' "$work/s_client"; echo $?)" "$(grep -E 'Protocol|error' "$work/s_client" | head -2)"
for v in tls1 tls1_1; do # security level 0: the client really offers the old version
    s_client "-$v" -cipher 'DEFAULT:@SECLEVEL=0'
    check "openssl s_client -$v: refused by the server (alert protocol version)" \
        "$(grep -q 'alert protocol version' "$work/s_client"; echo $?)" "$(grep -iE 'alert|error|Protocol' "$work/s_client" | head -2)"
done
s_client -tls1_2 -cipher 'AES128-SHA:AES256-SHA256:ECDHE-RSA-AES128-SHA:@SECLEVEL=0'
check "openssl s_client with only suites without forward secrecy or AEAD: refused (alert handshake failure)" \
    "$(grep -q 'alert handshake failure' "$work/s_client"; echo $?)" "$(grep -iE 'alert|Cipher' "$work/s_client" | head -2)"
timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3; cat <&3" >"$work/plain" 2>/dev/null
status=$? # 0 (EOF) or 1 (reset); 124: still open after 5 s
check "a plain http:// request on the TLS port is dropped at once, unanswered" \
    "$([ $status != 124 ] && [ ! -s "$work/plain" ]; echo $?)" "status $status, $(head -c 100 "$work/plain")"
/usr/bin/python3 tests/tls/client.py "$port" "$work/chat.err" direct >"$work/py" 2>&1
check "Python websockets over wss directly: $(tail -1 "$work/py")" "$?" "$(grep FAIL "$work/py")"
kill "$pid" && wait "$pid"
check "SIGTERM: the TLS server exits 0" "$?"
pid=""

# --- Chromium: the page over https, its socket over wss (a self-signed certificate) --------------
if sh tests/e2e/setup.sh >"$work/e2e-setup" 2>&1; then
    (cd tests/e2e && CHAT_BIN=../../chat-tls timeout 120 node ../tls/e2e.mjs "$work/rsa.pem" "$work/rsa.key") >"$work/e2e" 2>&1
    check "Chromium: $(grep -E '^(ok|FAIL)' "$work/e2e" | head -1)" "$?" "$(tail -3 "$work/e2e")"
else
    check "Chromium over https and wss: the e2e setup failed" 1 "$(tail -3 "$work/e2e-setup")"
fi

# --- the suite over wss, and TLS's own tests ------------------------------------------------------
export CHAT_TEST_CERT="$work/ec.pem" CHAT_TEST_KEY="$work/ec.key"
run_suite() { # NAME "FILTER..." COMMAND...
    local name=$1 filters=$2 tail f status=0
    shift 2
    : >"$work/suite"
    for f in $filters; do "$@" "$f" >>"$work/suite" 2>&1 || status=1; done
    tail=$(grep -E 'passed, [0-9]+ failed' "$work/suite" | awk '{p += $1; f += $3} END {print p " passed, " f " failed"}')
    grep '^  wss:' "$work/suite"
    check "$name: conformance over wss and TLS's own tests ($tail)" "$status" "$(grep -A3 FAIL "$work/suite" | head -20)"
}
run_suite "run_tests-wss" "test_conf test_wss" ./tests/run_tests-wss

SAN="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
if $CC $SAN -Wall -Wextra -std=c99 -DCHAT_TLS_MBEDTLS -DCHAT_READ_CHUNK=4096 -pthread -o "$work/run_tests-wss-asan" \
    tests/main.c tests/api_only.c -lmbedtls -lmbedx509 -lmbedcrypto; then
    ASAN_OPTIONS=detect_leaks=1 run_suite "ASan + UBSan" "test_conf test_wss" "$work/run_tests-wss-asan"
else
    check "ASan + UBSan build" 1
fi
VALGRIND="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect"
# Not the whole conformance run: valgrind runs one thread at a time, and 100 relayed handshakes at
# once (the slowloris case) outlast the wait for the client behind them. Framing, fragmentation
# (records read in 4 KiB pieces: input pending in mbedTLS), close handshakes and TLS's own tests.
# shellcheck disable=SC2086 # a word list
CHAT_TEST_SLOW=4 run_suite "valgrind" "test_conf_1_ test_conf_5 test_conf_7 test_wss" $VALGRIND ./tests/run_tests-wss

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
