#!/bin/sh
# The wire transcript (tests/wire/transcript.c) of a server binary, compared byte for byte with
# tests/wire/transcript.golden: a refactoring must not change one byte on the wire. It was
# recorded from chat.h 0.2.0, and again when message ids, times, cids, replays, since and resume
# were added (issue 12; only those lines changed). When the wire changes on purpose, record the
# new transcript with UPDATE=1 and say why in the commit.
set -eu
bin=${1:-./chat}
cc=${CC:-cc}
here=$(dirname "$0")
out=$(mktemp)
trap 'rm -f "$out" "$here/transcript"' EXIT
$cc -O1 -o "$here/transcript" "$here/transcript.c"
"$here/transcript" "$bin" 2>/dev/null >"$out"
if [ "${UPDATE:-}" = 1 ]; then
    cp "$out" "$here/transcript.golden"
    echo "wire transcript: recorded $(wc -l <"$out") lines into $here/transcript.golden"
elif diff -u "$here/transcript.golden" "$out" >"$out.diff"; then
    echo "wire transcript: $(wc -l <"$out") lines, identical to $here/transcript.golden"
    rm -f "$out.diff"
else
    echo "FAIL wire transcript: $bin answers differently from $here/transcript.golden:"
    head -40 "$out.diff"
    rm -f "$out.diff"
    exit 1
fi
