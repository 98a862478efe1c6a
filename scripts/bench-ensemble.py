#!/usr/bin/env python3
"""3-server paddock vs 3-server Apache ZooKeeper, in the same run, on the same
loopback layout and settings (tickTime=2000, initLimit=10, syncLimit=5,
forceSync=yes): time from a cold start until all serve; write (setData) and
read (getData) throughput and p50/p99 through the leader and through a
follower (server/examples/loadgen.rs); time from kill -9 of the leader until
a write succeeds again. Only processes started here are stopped, by PID.
Usage: scripts/bench-ensemble.py [ops-per-phase]"""

import os, shutil, signal, socket, struct, subprocess, sys, tempfile, time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OPS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
LOADGEN = os.path.join(REPO, "target/release/examples/loadgen")
PADDOCK = os.path.join(REPO, "target/release/paddock")
ZK_CP = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
PROCS = []


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def four(port, word):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(word.encode()); out = b""
        while True:
            c = s.recv(4096)
            if not c: break
            out += c
        s.close(); return out.decode(errors="replace")
    except OSError:
        return ""


def mode(port):
    for l in four(port, "srvr").splitlines():
        if l.startswith("Mode: "): return l[6:]
    return None


def try_create(port, path):
    """One session + one create; True when the create is acknowledged."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.settimeout(2)
        body = struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
        s.sendall(struct.pack(">i", len(body)) + body)
        n = struct.unpack(">i", s.recv(4))[0]; s.recv(n)
        p = path.encode()
        acl = struct.pack(">i", 1) + struct.pack(">i", 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"
        req = struct.pack(">ii", 1, 1) + struct.pack(">i", len(p)) + p + struct.pack(">i", 0) + acl + struct.pack(">i", 0)
        s.sendall(struct.pack(">i", len(req)) + req)
        hdr = b""
        while len(hdr) < 20:
            c = s.recv(20 - len(hdr))
            if not c: return False
            hdr += c
        xid, zxid, err = struct.unpack(">iqi", hdr[4:20])
        s.close()
        return err == 0
    except (OSError, struct.error):
        return False


def start_ensemble(kind, root):
    cports = [free_port() for _ in range(3)]
    q = [free_port() for _ in range(3)]; e = [free_port() for _ in range(3)]
    servers = "".join("server.%d=127.0.0.1:%d:%d\n" % (i + 1, q[i], e[i]) for i in range(3))
    procs = []
    t0 = time.time()
    for i in range(3):
        d = os.path.join(root, "%s%d" % (kind, i + 1)); os.makedirs(os.path.join(d, "data"))
        open(os.path.join(d, "data", "myid"), "w").write("%d\n" % (i + 1))
        cfg = os.path.join(d, "zoo.cfg")
        open(cfg, "w").write("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\n"
                             "clientPortAddress=127.0.0.1\nforceSync=yes\n4lw.commands.whitelist=*\n"
                             "admin.enableServer=false\n%s" % (os.path.join(d, "data"), cports[i], servers))
        log = open(os.path.join(d, "log"), "wb")
        cmd = (["java", "-cp", ZK_CP, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg] if kind == "zookeeper"
               else [PADDOCK, cfg])
        p = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        procs.append(p); PROCS.append(p)
    deadline = time.time() + 120
    while time.time() < deadline:
        modes = [mode(p) for p in cports]
        if modes.count("leader") == 1 and modes.count("follower") == 2:
            return procs, cports, modes.index("leader"), time.time() - t0
        time.sleep(0.02)
    raise SystemExit("%s ensemble never served: %s" % (kind, modes))


def loadgen(port, op, ops, base=1000):
    out = subprocess.check_output([LOADGEN, "127.0.0.1:%d" % port, op, str(ops), "16", "8", "1024", str(base)], text=True)
    kv = dict(x.split("=") for x in out.split())
    return int(kv["ops_per_sec"]), int(kv["p50_us"]), int(kv["p99_us"])


def main():
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "paddock-server", "--bin", "paddock", "--example", "loadgen"], cwd=REPO)
    res = {}
    for kind in ["zookeeper", "paddock"]:
        root = tempfile.mkdtemp(prefix="bench-ens-%s-" % kind)
        try:
            procs, ports, leader, cold = start_ensemble(kind, root)
            follower = (leader + 1) % 3
            r = res[kind] = {"cold start until all serve (s)": cold}
            subprocess.check_call([LOADGEN, "127.0.0.1:%d" % ports[leader], "setup", "0", "16", "8", "1024"], stdout=subprocess.DEVNULL)
            time.sleep(0.5)
            for rnd in (1, 2):  # warm-up, excluded
                for op in ("set", "get"):
                    loadgen(ports[leader], op, OPS); loadgen(ports[follower], op, OPS)
            for where, port in (("leader", ports[leader]), ("follower", ports[follower])):
                for op in ("set", "get"):
                    t, p50, p99 = loadgen(port, op, OPS)
                    name = "write" if op == "set" else "read"
                    r["%s via %s ops/s" % (name, where)] = t
                    r["%s via %s p50 us" % (name, where)] = p50
                    r["%s via %s p99 us" % (name, where)] = p99
            # Failover: kill -9 the leader, then a write through a survivor.
            procs[leader].send_signal(signal.SIGKILL); procs[leader].wait()
            t0 = time.time(); k = 0
            survivors = [ports[i] for i in range(3) if i != leader]
            while time.time() - t0 < 120:
                if try_create(survivors[k % 2], "/failover-%d" % k):
                    break
                k += 1; time.sleep(0.01)
            r["leader kill -9 until a write succeeds (s)"] = time.time() - t0
        finally:
            for p in PROCS:
                if p.poll() is None:
                    p.kill(); p.wait()
            PROCS.clear()
            shutil.rmtree(root, ignore_errors=True)
    print("\n| figure | Apache ZooKeeper | paddock | paddock/ZooKeeper |\n|---|---|---|---|")
    for k in res["zookeeper"]:
        z, p = res["zookeeper"][k], res["paddock"][k]
        fmt = (lambda v: "%.3f" % v) if isinstance(z, float) else str
        print("| %s | %s | %s | %.2f |" % (k, fmt(z), fmt(p), p / z if z else float("nan")))


if __name__ == "__main__":
    main()
