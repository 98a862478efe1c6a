#!/usr/bin/env python3
"""Failover, Paddock against Apache ZooKeeper in the same run: a 3-server
ensemble of each (tickTime=2000, initLimit=10, syncLimit=5, forceSync=yes,
the same zoo.cfg), kill -9 of the leader, then the time until a write
through a survivor succeeds. Trials alternate between the two (A B B A ...);
each trial starts a fresh ensemble, every server in a session of its own.
Prints every trial, then min / median / max per server.

Usage: scripts/bench-failover.py [trials-per-server=7] [--paddock BIN]
       scripts/bench-failover.py [trials] --ab OLD_BIN NEW_BIN   (two builds)
Only processes started here are stopped, by PID."""

import argparse, os, shutil, signal, statistics, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import importlib.util

_spec = importlib.util.spec_from_file_location(
    "bench_ensemble", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-ensemble.py"))
ens = importlib.util.module_from_spec(_spec)
# bench-ensemble.py reads its own argument at import: hide ours from it.
_argv, sys.argv = sys.argv, sys.argv[:1]
_spec.loader.exec_module(ens)
sys.argv = _argv


def trial(kind, binary):
    root = tempfile.mkdtemp(prefix="bench-failover-%s-" % kind)
    ens.PADDOCK = binary
    try:
        procs, ports, leader, _cold = ens.start_ensemble(kind, root)
        # A first write, so the ensemble is known to serve before the kill.
        deadline = time.time() + 30
        while not ens.try_create(ports[leader], "/before") and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        procs[leader].send_signal(signal.SIGKILL); procs[leader].wait()
        t0 = time.time(); k = 0
        survivors = [ports[i] for i in range(3) if i != leader]
        while time.time() - t0 < 120:
            if ens.try_create(survivors[k % 2], "/failover-%d" % k):
                return time.time() - t0
            k += 1
            time.sleep(0.002)
        return float("inf")
    finally:
        for p in ens.PROCS:
            if p.poll() is None:
                p.kill(); p.wait()
        ens.PROCS.clear()
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trials", type=int, nargs="?", default=7)
    ap.add_argument("--paddock", default=os.path.join(ens.REPO, "target/release/paddock"))
    ap.add_argument("--ab", nargs=2, metavar=("OLD", "NEW"))
    a = ap.parse_args()
    print("load average before: %s" % open("/proc/loadavg").read().strip())
    if a.ab:
        sides = [("old", "paddock", os.path.abspath(a.ab[0])), ("new", "paddock", os.path.abspath(a.ab[1]))]
    else:
        sides = [("paddock", "paddock", os.path.abspath(a.paddock)), ("zookeeper", "zookeeper", None)]
    res = {name: [] for name, _, _ in sides}
    for i in range(a.trials):
        for name, kind, binary in (sides if i % 2 == 0 else sides[::-1]):
            s = trial(kind, binary)
            res[name].append(s)
            print("trial %d %s: %.3f s" % (i + 1, name, s), flush=True)
    print("\n| kill -9 of the leader until a write succeeds | min | median | max |\n|---|---|---|---|")
    for name, xs in res.items():
        print("| %s | %.3f s | %.3f s | %.3f s |" % (name, min(xs), statistics.median(xs), max(xs)))
    (a_name, _, _), (b_name, _, _) = sides
    print("\n%s/%s (medians): %.2f" % (a_name, b_name, statistics.median(res[a_name]) / statistics.median(res[b_name])))
    print("load average after: %s" % open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
