#!/usr/bin/env python3
"""The cost of observability, as server CPU per operation: a standalone
paddock with the AdminServer and Prometheus /metrics off ("plain") versus
on and both scraped every second ("observed"), in alternating rounds.

Throughput on a shared machine swings with whatever else runs; the CPU the
server process itself spends per operation (utime + stime from
/proc/<pid>/stat, over the measured phases only) barely does, because time
the server waits for a core is not counted. Each round starts a fresh
server (in its own session, setsid), loads it with the release loadgen
(create, setData, getData; 1 KiB; 16 connections x 8 in flight) after a
warm-up, and reads the server's CPU before and after. Prints every round,
then per op kind the median and spread of each side and the ratio of the
medians.

    scripts/bench-observability.py [--rounds 6] [--ops 20000]
    scripts/bench-observability.py --scrape-cost 500

The second form measures the scrapes alone: server CPU per scrape of both
endpoints on an idle server (its idle CPU subtracted). At one scrape a
second, that figure divided by the CPU the server spends per second under
load bounds what being observed costs.

Uses target/release/paddock and target/release/examples/loadgen (build
them with the real release profile first:
`cargo build --release -p paddock-server --bin paddock --example loadgen`).
Only processes started here are stopped, by PID.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PADDOCK = os.path.join(REPO, "target", "release", "paddock")
LOADGEN = os.path.join(REPO, "target", "release", "examples", "loadgen")
TICKS = os.sysconf("SC_CLK_TCK")
OPS_KINDS = ("create", "set", "get")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def word(port, w):
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(w)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


def wait_serving(port, deadline_s=60):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        try:
            if b"Mode:" in word(port, b"srvr"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("paddock did not start serving on %d" % port)


def cpu_seconds(pid):
    """utime + stime of the process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields after the command: state is [0], utime [11], stime [12].
    return (int(fields[11]) + int(fields[12])) / TICKS


def scraper(urls, stop):
    """Scrapes every second until stopped (Prometheus' default is 15 s)."""
    while not stop.wait(1.0):
        for u in urls:
            try:
                urllib.request.urlopen(u, timeout=5).read()
            except OSError:
                pass


def loadgen(port, op, ops, base):
    out = subprocess.run([LOADGEN, "127.0.0.1:%d" % port, op, str(ops), "16", "8", "1024", str(base)],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    if op == "setup":
        return 0
    fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
    return int(fields["ops"])


def one_round(observed, ops):
    d = tempfile.mkdtemp(prefix="bench-obs-")
    port = free_port()
    cfg = ["tickTime=2000", "dataDir=%s/data" % d, "clientPort=%d" % port,
           "clientPortAddress=127.0.0.1", "forceSync=yes", "4lw.commands.whitelist=*"]
    urls = []
    if observed:
        admin, metrics = free_port(), free_port()
        cfg += ["admin.enableServer=true", "admin.serverAddress=127.0.0.1", "admin.serverPort=%d" % admin,
                "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
                "metricsProvider.httpHost=127.0.0.1", "metricsProvider.httpPort=%d" % metrics]
        urls = ["http://127.0.0.1:%d/metrics" % metrics, "http://127.0.0.1:%d/commands/monitor" % admin]
    else:
        cfg += ["admin.enableServer=false"]
    os.makedirs(os.path.join(d, "data"))
    with open(os.path.join(d, "zoo.cfg"), "w") as f:
        f.write("\n".join(cfg) + "\n")
    log = open(os.path.join(d, "log"), "wb")
    proc = subprocess.Popen([PADDOCK, os.path.join(d, "zoo.cfg")], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    stop = threading.Event()
    t = None
    try:
        wait_serving(port)
        if urls:
            t = threading.Thread(target=scraper, args=(urls, stop), daemon=True)
            t.start()
        loadgen(port, "setup", 0, 0)
        for op in OPS_KINDS:  # warm-up, not counted
            loadgen(port, op, ops // 2, 3000)
        out = {}
        for op in OPS_KINDS:
            before = cpu_seconds(proc.pid)
            done = loadgen(port, op, ops, 1000)
            out[op] = (cpu_seconds(proc.pid) - before) / done * 1e6  # µs of CPU per op
        return out
    finally:
        stop.set()
        if t is not None:
            t.join(timeout=10)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def scrape_cost(scrapes):
    """Server CPU per scrape of /metrics plus /commands/monitor, on an idle
    observed server holding 20k znodes: the direct cost of being observed,
    free of the load's noise. The idle server's own CPU over the same time
    is subtracted."""
    d = tempfile.mkdtemp(prefix="bench-obs-")
    port, admin, metrics = free_port(), free_port(), free_port()
    cfg = ["tickTime=2000", "dataDir=%s/data" % d, "clientPort=%d" % port,
           "clientPortAddress=127.0.0.1", "forceSync=yes", "4lw.commands.whitelist=*",
           "admin.enableServer=true", "admin.serverAddress=127.0.0.1", "admin.serverPort=%d" % admin,
           "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
           "metricsProvider.httpHost=127.0.0.1", "metricsProvider.httpPort=%d" % metrics]
    urls = ["http://127.0.0.1:%d/metrics" % metrics, "http://127.0.0.1:%d/commands/monitor" % admin]
    os.makedirs(os.path.join(d, "data"))
    with open(os.path.join(d, "zoo.cfg"), "w") as f:
        f.write("\n".join(cfg) + "\n")
    log = open(os.path.join(d, "log"), "wb")
    proc = subprocess.Popen([PADDOCK, os.path.join(d, "zoo.cfg")], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_serving(port)
        loadgen(port, "setup", 0, 0)
        loadgen(port, "create", 20000, 5000)
        time.sleep(1)
        t0, c0 = time.monotonic(), cpu_seconds(proc.pid)
        time.sleep(5)
        idle_rate = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
        t0, c0 = time.monotonic(), cpu_seconds(proc.pid)
        size = 0
        for _ in range(scrapes):
            for u in urls:
                size = max(size, len(urllib.request.urlopen(u, timeout=5).read()))
        elapsed = time.monotonic() - t0
        used = cpu_seconds(proc.pid) - c0 - idle_rate * elapsed
        return used / scrapes * 1e6, idle_rate, size
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=6, help="rounds per side, alternating")
    ap.add_argument("--ops", type=int, default=20000, help="operations per measured phase")
    ap.add_argument("--scrape-cost", type=int, metavar="N",
                    help="instead: server CPU per scrape (of both endpoints), over N scrapes of an idle server")
    args = ap.parse_args()
    for p in (PADDOCK, LOADGEN):
        if not os.path.exists(p):
            sys.exit("%s missing: cargo build --release -p paddock-server --bin paddock --example loadgen" % p)
    if args.scrape_cost:
        for _ in range(3):
            us, idle, size = scrape_cost(args.scrape_cost)
            print("server CPU per scrape of /metrics + /commands/monitor: %.0f us (idle server: %.2f%% of a "
                  "core; largest body %d bytes)" % (us, idle * 100, size), flush=True)
        return
    res = {False: [], True: []}
    for r in range(args.rounds):
        # Alternate which side goes first, so a drift in the machine's load
        # does not favour one side.
        for observed in ((False, True) if r % 2 == 0 else (True, False)):
            cpu = one_round(observed, args.ops)
            res[observed].append(cpu)
            print("round %d %-8s %s" % (r + 1, "observed" if observed else "plain",
                                        " ".join("%s=%.1fus" % (op, cpu[op]) for op in OPS_KINDS)), flush=True)
    print()
    print("| op | plain µs CPU/op median (min-max) | observed µs CPU/op median (min-max) | observed/plain |")
    print("|---|---|---|---|")
    for op in OPS_KINDS:
        a = [x[op] for x in res[False]]
        b = [x[op] for x in res[True]]
        ma, mb = statistics.median(a), statistics.median(b)
        print("| %s | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) | %.3f |"
              % (op, ma, min(a), max(a), mb, min(b), max(b), mb / ma))


if __name__ == "__main__":
    main()
