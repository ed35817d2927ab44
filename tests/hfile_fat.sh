#!/bin/sh
# The history file on FAT (the usual format of a board's SD card or USB stick), which has no hard
# links: a file that is not a history file is set aside by an exclusive create of FILE.bad.N and a
# rename over it, never over an earlier one, and the server starts afresh. Needs root, /dev/fuse,
# fusefat and dosfstools (FAT in user space; a container's kernel may have no vfat); exits 77
# without them. Usage: sh tests/hfile_fat.sh [BINARY]
set -eu
bin=${1:-./chat}
if [ "$(id -u)" != 0 ] || [ ! -e /dev/fuse ] || ! command -v fusefat >/dev/null || ! command -v mkfs.vfat >/dev/null; then
    echo "skip: needs root, /dev/fuse, fusefat and dosfstools (apt-get install -y fusefat dosfstools)"
    exit 77
fi
d=$(mktemp -d "${TMPDIR:-/tmp}/chat-fat-XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    fusermount -u "$d/mnt" 2>/dev/null || umount "$d/mnt" 2>/dev/null || true
    rm -rf "$d"
}
trap cleanup EXIT
fail() { echo "FAIL hfile_fat: $*"; sed 's/^/  | /' "$d/out" 2>/dev/null || true; exit 1; }
dd if=/dev/zero of="$d/fat.img" bs=1024 count=4096 2>/dev/null
mkfs.vfat "$d/fat.img" >/dev/null
mkdir "$d/mnt"
fusefat -o rw+ "$d/fat.img" "$d/mnt" >/dev/null 2>&1
printf 'this is not a history file\n' >"$d/mnt/hist"
printf 'set aside before\n' >"$d/mnt/hist.bad"
"$bin" -p 0 -b 127.0.0.1 -H "$d/mnt/hist" >"$d/out" 2>&1 &
pid=$!
i=0 # wait for the banner or the exit, at most 10 s
while [ $i -lt 100 ] && ! grep -q "Listening at" "$d/out" && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
grep -q "Listening at" "$d/out" || fail "the server did not start"
[ "$(cat "$d/mnt/hist.bad")" = "set aside before" ] || fail "the earlier FILE.bad was overwritten"
[ "$(cat "$d/mnt/hist.bad.2" 2>/dev/null)" = "this is not a history file" ] || fail "FILE.bad.2 does not hold the bad file"
[ "$(wc -c <"$d/mnt/hist")" -eq 8 ] || fail "FILE is not a new, empty history file"
grep -q "kept as $d/mnt/hist.bad.2" "$d/out" || fail "no log line says where the file went"
kill "$pid"
wait "$pid" || fail "the server did not stop cleanly"
pid=
echo "ok hfile_fat: a bad history file on FAT is set aside as FILE.bad.2, the server starts afresh"
