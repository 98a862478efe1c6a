#!/usr/bin/env bash
# Standalone paddock vs Apache ZooKeeper, in the same run, on loopback, with
# the same fsync policy (both fsync their log: forceSync=yes). For each
# server: create, setData and getData throughput and p50/p99 latency with
# 1 KiB payloads (16 connections x 8 requests in flight), then the server's
# RSS idle and with 100k more znodes. A third run, paddock-observed, is
# paddock with its AdminServer and Prometheus /metrics on and both scraped
# every second throughout: the cost of observability, in the same run.
# Only processes started here are stopped, by PID.
# Usage: scripts/bench-standalone.sh [ops-per-phase]
# KINDS="paddock paddock-observed" runs only those (tables need both sides).
set -euo pipefail
cd "$(dirname "$0")/.."
OPS="${1:-20000}"
cargo build --release -q -p paddock-server --bin paddock --example loadgen
LOADGEN=target/release/examples/loadgen
ZK_CP=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# Serving, not just up: ZooKeeper answers ruok before it serves sessions.
ruok() { python3 - "$1" <<'PY'
import socket, sys, time
port = int(sys.argv[1]); deadline = time.time() + 60
def word(w):
    s = socket.create_connection(("127.0.0.1", port), timeout=1); s.sendall(w)
    out = b""
    while True:
        c = s.recv(4096)
        if not c: return out
        out += c
while time.time() < deadline:
    try:
        if word(b"ruok") == b"imok" and b"Mode:" in word(b"srvr"): sys.exit(0)
    except OSError: pass
    time.sleep(0.1)
sys.exit(1)
PY
}

declare -A R
for kind in ${KINDS:-zookeeper paddock paddock-observed}; do
  dir=$(mktemp -d "/tmp/bench-$kind-XXXX"); port=$(free_port)
  printf 'tickTime=2000\ndataDir=%s/data\nclientPort=%s\nclientPortAddress=127.0.0.1\nforceSync=yes\n4lw.commands.whitelist=*\n' "$dir" "$port" > "$dir/zoo.cfg"
  if [ "$kind" = paddock-observed ]; then
    admin_port=$(free_port); metrics_port=$(free_port)
    printf 'admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=%s\nmetricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\nmetricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=%s\n' "$admin_port" "$metrics_port" >> "$dir/zoo.cfg"
  else
    printf 'admin.enableServer=false\n' >> "$dir/zoo.cfg"
  fi
  mkdir -p "$dir/data"
  if [ "$kind" = zookeeper ]; then
    java -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" > "$dir/log" 2>&1 &
  else
    target/release/paddock "$dir/zoo.cfg" > "$dir/log" 2>&1 &
  fi
  pid=$!; PIDS+=("$pid")
  ruok "$port" || { echo "$kind did not start"; cat "$dir/log"; exit 1; }
  if [ "$kind" = paddock-observed ]; then
    # A scraper at 1 s (Prometheus' usual interval is 15 s), bounded to
    # an hour; stopped with the server.
    python3 - "$metrics_port" "$admin_port" > /dev/null 2>&1 <<'PY' &
import sys, time, urllib.request
m, a = sys.argv[1], sys.argv[2]
for _ in range(3600):
    for url in ("http://127.0.0.1:%s/metrics" % m, "http://127.0.0.1:%s/commands/monitor" % a):
        try:
            urllib.request.urlopen(url, timeout=5).read()
        except OSError:
            pass
    time.sleep(1)
PY
    PIDS+=("$!")
  fi
  R[$kind,rss_idle]=$(rss_kb "$pid")
  $LOADGEN "127.0.0.1:$port" setup 0 16 8 1024 > /dev/null
  # Warm-up (the JVM's JIT in particular): every op kind, excluded from
  # the figures.
  for round in 1 2; do
    for op in create set get; do
      $LOADGEN "127.0.0.1:$port" "$op" "$OPS" 16 8 1024 $((2000 + round * 100)) > /dev/null
    done
  done
  for op in create set get; do
    line=$($LOADGEN "127.0.0.1:$port" "$op" "$OPS" 16 8 1024 1000)
    echo "$kind $line"
    R[$kind,$op,tput]=$(sed -E 's/.*ops_per_sec=([0-9]+).*/\1/' <<<"$line")
    R[$kind,$op,p50]=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$line")
    R[$kind,$op,p99]=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")
  done
  before=$(rss_kb "$pid")
  $LOADGEN "127.0.0.1:$port" create 100000 16 8 16 5000 > /dev/null
  sleep 1
  R[$kind,rss_100k]=$(rss_kb "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ "$kind" = paddock-observed ]; then kill "${PIDS[-1]}" 2>/dev/null || true; fi
  rm -rf "$dir"
done

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
has() { [[ " ${KINDS:-zookeeper paddock paddock-observed} " == *" $1 "* ]]; }
if has zookeeper && has paddock; then
echo
echo "| figure | Apache ZooKeeper | paddock | paddock/ZooKeeper |"
echo "|---|---|---|---|"
for op in create set get; do
  echo "| $op ops/s | ${R[zookeeper,$op,tput]} | ${R[paddock,$op,tput]} | $(ratio ${R[paddock,$op,tput]} ${R[zookeeper,$op,tput]}) |"
  echo "| $op p50 µs | ${R[zookeeper,$op,p50]} | ${R[paddock,$op,p50]} | $(ratio ${R[paddock,$op,p50]} ${R[zookeeper,$op,p50]}) |"
  echo "| $op p99 µs | ${R[zookeeper,$op,p99]} | ${R[paddock,$op,p99]} | $(ratio ${R[paddock,$op,p99]} ${R[zookeeper,$op,p99]}) |"
done
echo "| RSS idle KiB | ${R[zookeeper,rss_idle]} | ${R[paddock,rss_idle]} | $(ratio ${R[paddock,rss_idle]} ${R[zookeeper,rss_idle]}) |"
echo "| RSS after 100k more znodes KiB | ${R[zookeeper,rss_100k]} | ${R[paddock,rss_100k]} | $(ratio ${R[paddock,rss_100k]} ${R[zookeeper,rss_100k]}) |"
fi
has paddock && has paddock-observed || exit 0
echo
echo "| figure | paddock | paddock-observed (AdminServer + /metrics scraped at 1 s) | observed/plain |"
echo "|---|---|---|---|"
for op in create set get; do
  echo "| $op ops/s | ${R[paddock,$op,tput]} | ${R[paddock-observed,$op,tput]} | $(ratio ${R[paddock-observed,$op,tput]} ${R[paddock,$op,tput]}) |"
  echo "| $op p99 µs | ${R[paddock,$op,p99]} | ${R[paddock-observed,$op,p99]} | $(ratio ${R[paddock-observed,$op,p99]} ${R[paddock,$op,p99]}) |"
done
