#!/usr/bin/env bash
# Profiles a standalone paddock under the C-client load of
# scripts/bench-cclient.py (4 sessions x 128 outstanding, 100-byte values),
# in the same unbatched regime: the server in a session of its own (setsid).
#   scripts/profile-cclient.sh [BIN] [ops-per-phase]
# prints, per phase, server CPU and context switches per op (zkload), then
# `strace -c -f` of the server over one more create/set/get/delete pass
# (system calls per op: divide by 4 x ops), then a `perf record -g` of a
# third pass and its report (top symbols, children excluded) in
# $OUT/perf.txt. Needs perf and strace. Only processes started here are
# stopped, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/paddock}"
OPS="${2:-30000}"
OUT="${OUT:-$(mktemp -d /tmp/profile-cclient-XXXX)}"; mkdir -p "$OUT"
ZKLOAD=target/zkload/zkload
mkdir -p "$(dirname "$ZKLOAD")"
cc -O2 -DTHREADED -o "$ZKLOAD" scripts/zkload.c -lzookeeper_mt -lpthread
dir=$(mktemp -d /tmp/profile-data-XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nforceSync=yes\nadmin.enableServer=false\n4lw.commands.whitelist=*\n' "$dir" "$port" > "$dir/zoo.cfg"
setsid "$BIN" "$dir/zoo.cfg" > "$dir/log" 2>&1 < /dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  [ "$(echo ruok | timeout 1 nc -q1 127.0.0.1 "$port" 2>/dev/null || true)" = imok ] && break
  sleep 0.1
done
load() { "$ZKLOAD" "127.0.0.1:$port" async -n "$OPS" -t 60 -P "$pid" -p "$1"; }
echo "== uptime: $(uptime)"
load /warm > /dev/null
echo "== zkload, $OPS ops per phase"
load /plain
echo "== strace -c -f (4 x $OPS ops)"
strace -c -f -p "$pid" -o "$OUT/strace.txt" &
st=$!
sleep 1
load /strace > /dev/null
kill -INT $st; wait $st 2>/dev/null || true
head -25 "$OUT/strace.txt"
echo "== perf record -g (4 x $OPS ops)"
perf record -q -F 1999 -g -p "$pid" -o "$OUT/perf.data" &
pf=$!
sleep 1
load /perf > /dev/null
kill -INT $pf; wait $pf 2>/dev/null || true
perf report -i "$OUT/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^$' > "$OUT/perf.txt" || true
grep -E '^ +[0-9]' "$OUT/perf.txt" | head -40
echo "== full reports in $OUT"
