#!/usr/bin/env python3
"""Paddock and Apache ZooKeeper side by side, driven by ZooKeeper's own C
client (libzookeeper_mt, through scripts/zkload.c), in alternating rounds
(A B B A ...) so that drift on a shared machine cancels.

Each server is started in a session of its own (setsid), as a service
manager starts it: otherwise Linux's autogroup scheduling puts server and
load generator in one group, and the server sees far larger batches per
wake-up than it would with clients on other machines.

Per round and server (or ensemble): a warm-up pass (excluded; the JVM's
JIT in particular), then 4 sessions x 128 outstanding async requests of
100-byte values through create, set, get and delete phases, then one
synchronous client for p50/p99, then 100k znodes of 100 B. Reported as the
median over rounds with [min-max]:
  server CPU per op (utime+stime from /proc of the server process(es),
  summed over the three of an ensemble), client CPU per op, throughput,
  sync p50/p99, RSS idle / after the load / with 100k more znodes.

Usage:
  scripts/bench-cclient.py [--rounds 2] [--ops 30000] [--sync-ops 1000]
                           [--fill 100000] [--ensemble]
  scripts/bench-cclient.py --ab OLD_PADDOCK NEW_PADDOCK ...   (two builds)
Only processes started here are stopped, by PID. Every phase is bounded in
count and in time (zkload -t)."""

import argparse, importlib.util, os, shutil, signal, statistics, subprocess, sys, tempfile, time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ZKLOAD = os.path.join(REPO, "target/zkload/zkload")
# The server start-up helpers (free ports, four-letter words, the server's
# mode, ZooKeeper's class path) are bench-ensemble.py's.
_spec = importlib.util.spec_from_file_location(
    "bench_ensemble", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-ensemble.py"))
_ens = importlib.util.module_from_spec(_spec)
# bench-ensemble.py reads its own argument at import: hide ours from it.
_argv, sys.argv = sys.argv, sys.argv[:1]
_spec.loader.exec_module(_ens)
sys.argv = _argv
free_port, four, mode, ZK_CP = _ens.free_port, _ens.four, _ens.mode, _ens.ZK_CP
OPS = ("create", "set", "get", "delete")
PROCS = []


def rss_mb(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            for l in f:
                if l.startswith("VmRSS:"): total += int(l.split()[1])
    return total / 1024.0


def load():
    return open("/proc/loadavg").read().split()[0]


def start(kind, binary, root, members):
    """Starts 1 or 3 servers, each in its own session; returns (procs, ports)."""
    cports = [free_port() for _ in range(members)]
    servers = ""
    if members > 1:
        servers = "".join("server.%d=127.0.0.1:%d:%d\n" % (i + 1, free_port(), free_port()) for i in range(members))
    procs = []
    for i in range(members):
        d = os.path.join(root, "s%d" % (i + 1)); os.makedirs(os.path.join(d, "data"))
        if members > 1:
            open(os.path.join(d, "data", "myid"), "w").write("%d\n" % (i + 1))
        cfg = os.path.join(d, "zoo.cfg")
        open(cfg, "w").write("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\n"
                             "clientPortAddress=127.0.0.1\nforceSync=yes\n4lw.commands.whitelist=*\n"
                             "admin.enableServer=false\n%s" % (os.path.join(d, "data"), cports[i], servers))
        log = open(os.path.join(d, "log"), "wb")
        cmd = (["java", "-cp", ZK_CP, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg] if kind == "zookeeper"
               else [binary, cfg])
        p = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(p); PROCS.append(p)
    want = ["standalone"] if members == 1 else None
    deadline = time.time() + 120
    while time.time() < deadline:
        modes = [mode(p) for p in cports]
        if (want and modes == want) or (not want and modes.count("leader") == 1 and modes.count("follower") == members - 1):
            return procs, cports
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    raise SystemExit("%s did not serve: %s (logs in %s)" % (kind, modes, root))


def stop(procs):
    for p in procs:
        if p.poll() is None: p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill(); p.wait()
        if p in PROCS: PROCS.remove(p)


def zkload(hosts, mode_, pids, args):
    cmd = [ZKLOAD, hosts, mode_, "-P", ",".join(str(p) for p in pids)] + [str(a) for a in args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit("zkload failed (%s): %s" % (" ".join(cmd), out.stderr))
    rows = {}
    for line in out.stdout.splitlines():
        kv = dict(x.split("=") for x in line.split())
        rows[kv["phase"]] = {k: float(v) for k, v in kv.items() if k != "phase"}
        if rows[kv["phase"]]["errors"]:
            print("  warning: %s %s errors in %s" % (kv["errors"], mode_, kv["phase"]), file=sys.stderr)
    return rows


def one_round(kind, binary, members, a, tag):
    root = tempfile.mkdtemp(prefix="bench-cc-%s-" % tag)
    procs = []
    try:
        procs, ports = start(kind, binary, root, members)
        pids = [p.pid for p in procs]
        hosts = ",".join("127.0.0.1:%d" % p for p in ports)
        time.sleep(1)
        r = {"RSS idle MB": rss_mb(pids), "load avg at start": float(load())}
        common = ["-s", a.sessions, "-o", a.outstanding, "-v", 100, "-t", a.phase_secs]
        zkload(hosts, "async", pids, common + ["-n", max(a.ops // 2, 1), "-p", "/warm"])
        for op, row in zkload(hosts, "async", pids, common + ["-n", a.ops, "-p", "/load"]).items():
            r["%s server CPU us/op" % op] = row["server_us_per_op"]
            r["%s server context switches/op" % op] = row["server_switches_per_op"]
            r["%s client CPU us/op" % op] = row["client_us_per_op"]
            r["%s ops/s" % op] = row["ops_per_sec"]
        for op, row in zkload(hosts, "sync", pids, ["-v", 100, "-t", a.phase_secs, "-n", a.sync_ops, "-p", "/sync"]).items():
            r["%s sync p50 us" % op] = row["p50_us"]
            r["%s sync p99 us" % op] = row["p99_us"]
            # One request per wake-up: the fully unbatched regime.
            r["%s sync server CPU us/op" % op] = row["server_us_per_op"]
            r["%s sync server context switches/op" % op] = row["server_switches_per_op"]
        r["RSS after load MB"] = rss_mb(pids)
        if a.fill:
            zkload(hosts, "async", pids, common + ["-n", a.fill, "-p", "/fill", "-x", "create"])
            time.sleep(1)
            r["RSS with %dk more znodes MB" % (a.fill // 1000)] = rss_mb(pids)
            # Per znode of 100 B data and an 11-15 byte path (summed over an
            # ensemble's members: every member holds the whole tree).
            r["RSS bytes per added znode"] = (r["RSS with %dk more znodes MB" % (a.fill // 1000)] - r["RSS after load MB"]) * 1048576 / a.fill
        return r
    finally:
        stop(procs)
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="rounds per server; order A B B A ...")
    ap.add_argument("--ops", type=int, default=30000, help="async operations per phase")
    ap.add_argument("--sync-ops", type=int, default=1000, help="synchronous operations per phase")
    ap.add_argument("--fill", type=int, default=100000, help="znodes for the RSS figure (0: skip)")
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--outstanding", type=int, default=128)
    ap.add_argument("--phase-secs", type=int, default=60, help="time bound of each phase")
    ap.add_argument("--ensemble", action="store_true", help="3 servers instead of 1")
    ap.add_argument("--ab", nargs=2, metavar=("OLD", "NEW"), help="two paddock binaries instead of paddock vs ZooKeeper")
    ap.add_argument("--paddock", help="the paddock binary to measure against ZooKeeper (default: a fresh release build)")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()

    if not a.no_build:
        os.makedirs(os.path.dirname(ZKLOAD), exist_ok=True)
        subprocess.check_call(["cc", "-O2", "-DTHREADED", "-o", ZKLOAD, os.path.join(REPO, "scripts/zkload.c"),
                               "-lzookeeper_mt", "-lpthread"])
        if not a.ab and not a.paddock:
            subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "paddock-server", "--bin", "paddock"], cwd=REPO)
    if a.ab:
        sides = [("paddock", os.path.abspath(a.ab[0]), "old"), ("paddock", os.path.abspath(a.ab[1]), "new")]
    else:
        binary = os.path.abspath(a.paddock) if a.paddock else os.path.join(REPO, "target/release/paddock")
        sides = [("paddock", binary, "paddock"), ("zookeeper", None, "zookeeper")]
    members = 3 if a.ensemble else 1
    results = {s[2]: [] for s in sides}
    print("%s, %d round(s) each, order A B B A; load average before: %s" %
          ("3-server ensemble" if a.ensemble else "standalone", a.rounds, open("/proc/loadavg").read().strip()))
    for rnd in range(a.rounds):
        order = sides if rnd % 2 == 0 else list(reversed(sides))
        for kind, binary, tag in order:
            r = one_round(kind, binary, members, a, tag)
            results[tag].append(r)
            print("round %d %s: load %.2f, server CPU us/op %s" % (
                rnd + 1, tag, r["load avg at start"],
                " ".join("%s=%.1f" % (op, r["%s server CPU us/op" % op]) for op in OPS)), flush=True)
    a_tag, b_tag = sides[0][2], sides[1][2]
    print("\n| figure | %s median [min-max] | %s median [min-max] | %s/%s |" % (a_tag, b_tag, a_tag, b_tag))
    print("|---|---|---|---|")
    for key in results[a_tag][0]:
        xs = [r[key] for r in results[a_tag]]; ys = [r[key] for r in results[b_tag]]
        mx, my = statistics.median(xs), statistics.median(ys)
        f = (lambda v: "%.0f" % v) if max(xs + ys) >= 1000 else (lambda v: "%.1f" % v) if max(xs + ys) >= 10 else (lambda v: "%.2f" % v)
        print("| %s | %s [%s-%s] | %s [%s-%s] | %s |" % (key, f(mx), f(min(xs)), f(max(xs)), f(my), f(min(ys)), f(max(ys)),
                                                        "%.2f" % (mx / my) if my else "-"))
    print("\nload average after: %s" % open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        main()
    finally:
        for p in list(PROCS):
            if p.poll() is None:
                p.kill(); p.wait()
