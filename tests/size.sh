#!/usr/bin/env bash
# Stripped sizes of the example (page included) at -Os for each target, and of chat.h's code
# alone (an object file with the implementation and no page). Prints a Markdown table.
#   bash tests/size.sh         (make size)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${SIZE_DIR:-build/size}
mkdir -p "$out"
# Size flags a board build would use: no unwind tables (C, no exceptions), unused sections
# dropped, and code and data in one segment so the file is not padded to a page between them.
flags="-std=c99 -Os -fno-asynchronous-unwind-tables -ffunction-sections -fdata-sections"
ldflags="-Wl,--gc-sections -Wl,-z,noseparate-code -Wl,-z,max-page-size=4096 -s"
targets="x86-64:gcc armhf:arm-linux-gnueabihf-gcc aarch64:aarch64-linux-gnu-gcc mips:mips-linux-gnu-gcc riscv64:riscv64-linux-gnu-gcc"
page=$(cat public/index.html public/style.css public/app.js | wc -c)
printf '| target | example, stripped (bytes) | chat.h code: text + data (bytes) |\n|---|---:|---:|\n'
for t in $targets; do
    name=${t%%:*} cc=${t#*:}
    command -v "$cc" >/dev/null || { printf '| %s | (no %s) | |\n' "$name" "$cc"; continue; }
    note=""
    [ "$name" = armhf ] && note=" (Thumb-2)"
    $cc $flags $ldflags -o "$out/chat-$name" example_main.c
    printf '#define CHAT_IMPLEMENTATION\n#include "chat.h"\n' > "$out/impl.c"
    $cc $flags -I. -c -o "$out/impl-$name.o" "$out/impl.c"
    code=$(size "$out/impl-$name.o" 2>/dev/null | awk 'NR==2 {print $1 + $2}')
    printf '| %s%s | %d | %d |\n' "$name" "$note" "$(stat -c %s "$out/chat-$name")" "$code"
done
printf '\nThe page (public/, embedded) is %d bytes of that. Flags: `%s %s`.\n' "$page" "$flags" "$ldflags"
