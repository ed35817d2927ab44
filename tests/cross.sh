#!/usr/bin/env bash
# The boards: builds the example and the core suite for armhf, aarch64, mips (big-endian) and
# riscv64 with Debian's cross compilers, and runs the whole suite under qemu-user; then a static
# musl build of the example against the (native) integration tests. armhf takes chat.h's portable
# poll() path (CHAT_NO_EPOLL), the other Linux targets epoll.
#   bash tests/cross.sh [ARCH...]      (make cross)
# Needs: qemu-user gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu gcc-mips-linux-gnu
#        gcc-riscv64-linux-gnu musl-tools
# Prints one line per target with its result; the build and test logs (in build/cross) are
# printed only for a target that failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${CROSS_DIR:-build/cross}
mkdir -p "$out"
declare -A triple=([armhf]=arm-linux-gnueabihf [aarch64]=aarch64-linux-gnu [mips]=mips-linux-gnu [riscv64]=riscv64-linux-gnu)
declare -A extra=([armhf]=-DCHAT_NO_EPOLL)
declare -A qemu=([armhf]=qemu-arm [aarch64]=qemu-aarch64 [mips]=qemu-mips [riscv64]=qemu-riscv64)
declare -A package=([armhf]=gcc-arm-linux-gnueabihf [aarch64]=gcc-aarch64-linux-gnu [mips]=gcc-mips-linux-gnu [riscv64]=gcc-riscv64-linux-gnu)
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(armhf aarch64 mips riscv64 musl)
flags="-std=c99 -O2 -g -Wall -Wextra -pedantic -Werror -static"
failed=0

# result TARGET WHAT [LOG...]: the target's one line; on failure also its logs
result() {
    local target=$1 what=$2 log
    shift 2
    case $what in
    *FAILED*)
        failed=$((failed + 1))
        printf '%-9s %s\n' "$target" "$what"
        for log in "$@"; do
            [ -s "$log" ] || continue
            printf -- '----- %s\n' "$log"
            cat "$log"
        done
        [ $# -gt 0 ] && printf -- '-----\n'
        ;;
    *) printf '%-9s %s\n' "$target" "$what" ;;
    esac
}

# suite LOG: "N passed, M failed  ok" or "... FAILED" from the runner's last line and status
suite() {
    local log=$1 status=$2 last
    last=$(tail -1 "$log" 2>/dev/null | tr -d '\r')
    if [ "$status" = 0 ]; then printf '%s  ok' "$last"; else printf '%s  FAILED (exit %s)' "${last:-no output}" "$status"; fi
}

for arch in "${archs[@]}"; do
    build="$out/$arch-build.log" log="$out/$arch.log"
    : >"$build"
    if [ "$arch" = musl ]; then
        if ! command -v musl-gcc >/dev/null; then
            result "musl" "FAILED: musl-gcc is missing (apt-get install musl-tools)"
            continue
        fi
        if ! musl-gcc -std=c99 -Os -Wall -Wextra -pedantic -Werror -static -o "$out/chat-musl" example_main.c >"$build" 2>&1; then
            result "musl" "FAILED: the static musl build of the example" "$build"
            continue
        fi
        if ! file "$out/chat-musl" | grep -q "statically linked"; then
            result "musl" "FAILED: $out/chat-musl is not statically linked" "$build"
            continue
        fi
        if [ ! -x tests/run_tests ] && ! make tests/run_tests >>"$build" 2>&1; then
            result "musl" "FAILED: the native tests/run_tests does not build" "$build"
            continue
        fi
        CHAT_TEST_BIN="$out/chat-musl" ./tests/run_tests >"$log" 2>&1
        r=$(suite "$log" $?)
        result "musl" "static, native suite against it: $r" "$log"
        continue
    fi
    if [ -z "${triple[$arch]:-}" ]; then
        result "$arch" "FAILED: unknown target (armhf, aarch64, mips, riscv64 or musl)"
        continue
    fi
    cc=${triple[$arch]}-gcc
    if ! command -v "$cc" >/dev/null; then
        result "$arch" "FAILED: $cc is missing (apt-get install ${package[$arch]})"
        continue
    fi
    if ! command -v "${qemu[$arch]}" >/dev/null; then
        result "$arch" "FAILED: ${qemu[$arch]} is missing (apt-get install qemu-user)"
        continue
    fi
    # Static glibc warns at link time about getaddrinfo and friends (NSS at run time); the tests
    # use numeric addresses only, so the warning goes to the build log, shown only on failure.
    # 64-bit file offsets: readdir() of the JSON corpus fails with EOVERFLOW on 32-bit targets.
    if ! $cc $flags ${extra[$arch]:-} -o "$out/chat-$arch" example_main.c >"$build" 2>&1 ||
        ! $cc $flags ${extra[$arch]:-} -D_FILE_OFFSET_BITS=64 -pthread -o "$out/run_tests-$arch" tests/main.c tests/api_only.c >>"$build" 2>&1; then
        result "$arch" "FAILED: the build with $cc" "$build"
        continue
    fi
    # qemu is slow: every wait is 4x longer and the churn test does 2,000 cycles, not 10,000
    CHAT_TEST_SLOW=4 CHAT_TEST_CHURN=2000 CHAT_TEST_BIN="$out/chat-$arch" CHAT_TEST_WRAPPER="${qemu[$arch]}" \
        "${qemu[$arch]}" "$out/run_tests-$arch" >"$log" 2>&1
    r=$(suite "$log" $?)
    result "$arch" "suite under ${qemu[$arch]}${extra[$arch]:+ (${extra[$arch]#-D})}: $r" "$log"
done
if [ $failed -gt 0 ]; then
    echo "cross: $failed of ${#archs[@]} targets FAILED (logs in $out)"
    exit 1
fi
echo "cross: ${#archs[@]} targets passed (logs in $out)"
