#!/usr/bin/env bash
# Memory footprint: the example server's RSS at start and with 100 and 1,000 idle clients, and
# the heap it holds (counted through the CHAT_MALLOC hook, tests/bench/heap_server.c), natively
# on x86-64 and on armhf under qemu-user. Prints a Markdown table.
#   bash tests/footprint.sh      (make footprint)
# Under qemu the RSS is qemu's (the emulator adds megabytes); the heap column is the board's own.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${FOOTPRINT_DIR:-build/footprint}
mkdir -p "$out"
cc -std=c99 -O2 -o "$out/load" tests/bench/load.c
cc -std=c99 -O2 -o "$out/server-x86-64" tests/bench/heap_server.c
have_arm=0
if command -v arm-linux-gnueabihf-gcc >/dev/null && command -v qemu-arm >/dev/null; then
    arm-linux-gnueabihf-gcc -std=c99 -O2 -static -o "$out/server-armhf" tests/bench/heap_server.c 2>/dev/null
    have_arm=1
fi
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT

free_port() { /usr/bin/env python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# measure ARCH N: one fresh server, N idle clients; prints "rss_start rss_n heap_start heap_n"
measure() {
    local arch=$1 n=$2 port run line
    port=$(free_port)
    run="$out/server-$arch"
    [ "$arch" = armhf ] && run="qemu-arm $run"
    # one address, 1,000 clients: the per-address limits are lifted
    $run -p "$port" -b 127.0.0.1 -q -c 5000 -r 0 -a 0 -j 0 >"$out/srv.out" 2>"$out/srv.err" &
    pid=$!
    for _ in $(seq 200); do grep -q '^Listening' "$out/srv.out" 2>/dev/null && break; sleep 0.05; done
    line=$("$out/load" idle -p "$port" -P "$pid" -H "$out/srv.err" -n "$n" -t 60000)
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    field() { printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    echo "$(field rss_before_kb) $(field rss_after_kb) $(field heap_before) $(field heap_after)"
}

printf '| target | RSS at start | RSS, 100 idle | RSS, 1,000 idle | heap at start | heap per idle client (1,000) |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
for arch in x86-64 armhf; do
    [ "$arch" = armhf ] && [ $have_arm = 0 ] && continue
    read -r r0 r100 h0 h100 <<<"$(measure "$arch" 100)"
    read -r _ r1000 _ h1000 <<<"$(measure "$arch" 1000)"
    label=$arch
    [ "$arch" = armhf ] && label="armhf (qemu-user; RSS includes qemu)"
    printf '| %s | %d KiB | %d KiB | %d KiB | %d B | %d B |\n' "$label" "$r0" "$r100" "$r1000" "$h0" $(( (h1000 - h0) / 1000 ))
done
