#!/bin/sh
# Regenerates the public/ block of example_main.c: each file becomes one C char array built
# from readable string literals, a line per line. `make embed` runs it; `make test` fails when
# the block differs from what this prints (sh tests/embed.sh --check).
set -eu
export LC_ALL=C   # bytes, not characters
cd "$(dirname "$0")/.."
begin='/* --- public/ embedded by `make embed` (tests/embed.sh): edit public/, not this block --- */'
end='/* --- end of embedded public/ --- */'

block() {
    printf '%s\n' "$begin"
    printf '#if defined(__GNUC__) || defined(__clang__)\n'
    printf '#pragma GCC diagnostic push\n#pragma GCC diagnostic ignored "-Woverlength-strings"\n#endif\n'
    for f in public/index.html public/style.css public/app.js; do
        name=$(printf '%s' "$f" | tr './' '__')
        # a file without a final newline must not gain one
        if [ -n "$(tail -c 1 "$f")" ]; then nonl=1; else nonl=0; fi
        printf 'static const char %s[] =\n' "$name"
        awk -v nonl="$nonl" '
            # char by char: gsub replacement strings treat backslashes differently across awks
            function esc(s,    out, i, c, prev) {
                out = ""
                for (i = 1; i <= length(s); i++) {
                    c = substr(s, i, 1)
                    if (c == "\\" || c == "\"") out = out "\\" c
                    else if (c == "\t") out = out "\\t"
                    else if (c == "\r") out = out "\\r"
                    else if (c == "?" && prev == "?") out = out "\\?"   # no trigraphs under -std=c99
                    else out = out c
                    prev = c
                }
                return out
            }
            NR > 1 { print "    \"" esc(prev) "\\n\"" }
            { prev = $0 }
            END { if (NR) print "    \"" esc(prev) (nonl ? "" : "\\n") "\";"; else print "    \"\";" }
        ' "$f"
    done
    printf '#if defined(__GNUC__) || defined(__clang__)\n#pragma GCC diagnostic pop\n#endif\n'
    printf '%s\n' "$end"
}

current() { awk -v b="$begin" -v e="$end" '$0 == b { on = 1 } on { print } $0 == e { on = 0 }' example_main.c; }

case "${1:-}" in
--check)
    if [ "$(block)" = "$(current)" ]; then echo "embed: example_main.c matches public/"; exit 0; fi
    echo "embed: example_main.c differs from public/ - run 'make embed'" >&2
    exit 1 ;;
"")
    tmp=example_main.c.tmp
    block > "$tmp.block"
    awk -v b="$begin" -v e="$end" -v file="$tmp.block" '
        $0 == b { while ((getline line < file) > 0) print line; skip = 1; next }
        $0 == e { skip = 0; next }
        !skip { print }
    ' example_main.c > "$tmp"
    rm -f "$tmp.block"
    mv "$tmp" example_main.c
    echo "embed: example_main.c updated from public/" ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
