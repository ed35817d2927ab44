#!/usr/bin/env bash
# The boards: builds the example and the core suite for armhf, aarch64, mips (big-endian) and
# riscv64 with Debian's cross compilers, and runs the whole suite under qemu-user; then a static
# musl build of the example against the (native) integration tests.
#   bash tests/cross.sh [ARCH...]      (make cross)
# Needs: qemu-user gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu gcc-mips-linux-gnu
#        gcc-riscv64-linux-gnu musl-tools
set -euo pipefail
cd "$(dirname "$0")/.."
out=${CROSS_DIR:-build/cross}
mkdir -p "$out"
declare -A triple=([armhf]=arm-linux-gnueabihf [aarch64]=aarch64-linux-gnu [mips]=mips-linux-gnu [riscv64]=riscv64-linux-gnu)
declare -A qemu=([armhf]=qemu-arm [aarch64]=qemu-aarch64 [mips]=qemu-mips [riscv64]=qemu-riscv64)
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(armhf aarch64 mips riscv64 musl)
flags="-std=c99 -O2 -g -Wall -Wextra -pedantic -Werror -static"
status=0
summary=""
for arch in "${archs[@]}"; do
    if [ "$arch" = musl ]; then
        echo "== musl: static build of the example, native integration tests against it"
        musl-gcc -std=c99 -Os -Wall -Wextra -pedantic -Werror -static -o "$out/chat-musl" example_main.c
        file "$out/chat-musl" | grep -q "statically linked" || { echo "not static"; status=1; }
        [ -x tests/run_tests ] || make tests/run_tests >/dev/null
        if CHAT_TEST_BIN="$out/chat-musl" ./tests/run_tests > "$out/musl.log" 2>&1; then r=ok; else r=FAILED; status=1; fi
        tail -1 "$out/musl.log"
        summary+="musl (static)    $(tail -1 "$out/musl.log")  $r"$'\n'
        continue
    fi
    cc=${triple[$arch]}-gcc
    command -v "$cc" >/dev/null || { echo "cross: $cc is missing" >&2; exit 1; }
    echo "== $arch ($cc, ${qemu[$arch]})"
    $cc $flags -o "$out/chat-$arch" example_main.c 2> >(grep -v "statically linked applications requires" >&2)
    # 64-bit file offsets: readdir() of the JSON corpus fails with EOVERFLOW on 32-bit targets
    $cc $flags -D_FILE_OFFSET_BITS=64 -pthread -o "$out/run_tests-$arch" tests/main.c tests/api_only.c \
        2> >(grep -v "statically linked applications requires" >&2)
    # qemu is slow: every wait is 4x longer and the churn test does 2,000 cycles, not 10,000
    if CHAT_TEST_SLOW=4 CHAT_TEST_CHURN=2000 CHAT_TEST_BIN="$out/chat-$arch" CHAT_TEST_WRAPPER="${qemu[$arch]}" \
        "${qemu[$arch]}" "$out/run_tests-$arch" > "$out/$arch.log" 2>&1; then r=ok; else r=FAILED; status=1; fi
    grep -a '^FAIL\|^  ' "$out/$arch.log" | head -20 || true
    tail -1 "$out/$arch.log"
    summary+="$(printf '%-16s' "$arch") $(tail -1 "$out/$arch.log")  $r"$'\n'
done
echo
echo "== cross summary"
printf '%s' "$summary"
exit $status
