#!/usr/bin/env python3
"""Client TLS against plaintext, Paddock and Apache ZooKeeper (Netty, the
same key store) in the same run.

Each server listens on a plaintext port and a TLS port (ssl.clientAuth=none,
RSA 2048 server key, TLS 1.3 as negotiated by Python's ssl module). Per
server and transport, in alternating rounds (A B B A ...): one connection
pipelining --depth getData (then setData) requests of 100-byte values for
--ops operations, then one synchronous client for p50/p99 over --sync-ops
getData. Reported as medians over rounds: throughput, server CPU per op
(utime+stime from /proc of the server process), sync p50/p99.

The load generator is Python (raw ZooKeeper protocol over `ssl`), so
throughput is bounded by the client on a small machine; server CPU per op
is the figure that compares the servers' TLS cost.

Usage:
  scripts/bench-tls.py [--rounds 2] [--ops 20000] [--sync-ops 1000] [--depth 64]
Set PADDOCK_BIN to the binary to measure (the release build for reported
numbers). Only processes started here are stopped, by PID; every phase is
bounded in count and in time."""

import argparse, os, ssl, statistics, struct, sys, tempfile, time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "python"))
import jute  # noqa: E402
from certs import Certs  # noqa: E402
from servers import Server, free_port  # noqa: E402

PHASE_TIMEOUT_S = 120
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICKS


def conn(port, ctx):
    c = jute.Conn(port, timeout=30)
    if ctx is not None:
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        c.sock.settimeout(30)
    c.connect()
    return c


def pipelined(c, opcode, body, ops, depth):
    """ops requests with depth outstanding; returns seconds taken."""
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    frame = lambda xid: struct.pack(">iii", len(body) + 8, xid, opcode) + body
    t0 = time.perf_counter()
    sent = 0
    for _ in range(min(depth, ops)):
        sent += 1
        c.sock.sendall(frame(sent))
    for done in range(ops):
        data = c.recv_frame()
        err = struct.unpack_from(">i", data, 12)[0]
        if err != 0:
            raise RuntimeError("error %d on op %d" % (err, opcode))
        if sent < ops:
            sent += 1
            c.sock.sendall(frame(sent))
        if done % 1000 == 0 and time.monotonic() > deadline:
            raise RuntimeError("phase over %ds" % PHASE_TIMEOUT_S)
    return time.perf_counter() - t0


def sync_latencies(c, body, n):
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        c.sock.sendall(struct.pack(">iii", len(body) + 8, 100000 + i, jute.GET_DATA) + body)
        c.recv_frame()
        out.append((time.perf_counter() - t0) * 1e6)
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99)]


def measure(srv, port, ctx, args, path):
    c = conn(port, ctx)
    get_body = jute.ustr(path) + jute.boolean(False)
    set_body = jute.set_data_body(path, b"v" * 100)
    pid = srv.proc.pid
    out = {}
    for name, opcode, body in (("get", jute.GET_DATA, get_body), ("set", jute.SET_DATA, set_body)):
        pipelined(c, opcode, body, min(2000, args.ops), args.depth)  # warm-up
        cpu0 = cpu_s(pid)
        secs = pipelined(c, opcode, body, args.ops, args.depth)
        cpu = cpu_s(pid) - cpu0
        out[name] = (args.ops / secs, cpu / args.ops * 1e6)
    out["p50"], out["p99"] = sync_latencies(c, get_body, args.sync_ops)
    c.close_socket()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--sync-ops", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=64)
    args = ap.parse_args()
    certs = Certs(tempfile.mkdtemp(prefix="paddock-bench-tls-"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(certs.ca)
    servers = {}
    try:
        for kind in ("paddock", "zookeeper"):
            cfg = {
                "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
                "secureClientPort": str(free_port()),
                "secureClientPortAddress": "127.0.0.1",
                "ssl.keyStore.location": certs.server_pem,
                "ssl.keyStore.type": "PEM",
                "ssl.clientAuth": "none",
            }
            srv = Server(kind, cfg).start()
            servers[kind] = (srv, int(cfg["secureClientPort"]))
            c = conn(srv.port, None)
            c.call(jute.CREATE, jute.create_body("/bench", b"v" * 100))
            c.close_socket()
        results = {}
        order = [(k, t) for k in ("paddock", "zookeeper") for t in ("plain", "tls")]
        for r in range(args.rounds):
            for key in (order if r % 2 == 0 else list(reversed(order))):
                kind, transport = key
                srv, tls_port = servers[kind]
                port, c_ctx = (srv.port, None) if transport == "plain" else (tls_port, ctx)
                res = measure(srv, port, c_ctx, args, "/bench")
                results.setdefault(key, []).append(res)
                print("round %d %-9s %-5s get %7.0f ops/s %5.1f us cpu/op | set %7.0f ops/s %5.1f us cpu/op"
                      " | sync p50 %5.0f us p99 %5.0f us" % (
                          r, kind, transport, res["get"][0], res["get"][1], res["set"][0],
                          res["set"][1], res["p50"], res["p99"]), flush=True)
        med = lambda xs: statistics.median(xs)
        print("\n| server | transport | get ops/s | get server CPU us/op | set ops/s | set server CPU us/op"
              " | sync get p50 us | p99 us |")
        print("|---|---|---|---|---|---|---|---|")
        for key in order:
            rs = results[key]
            print("| %s | %s | %.0f | %.1f | %.0f | %.1f | %.0f | %.0f |" % (
                key[0], key[1], med([x["get"][0] for x in rs]), med([x["get"][1] for x in rs]),
                med([x["set"][0] for x in rs]), med([x["set"][1] for x in rs]),
                med([x["p50"] for x in rs]), med([x["p99"] for x in rs])))
    finally:
        for srv, _ in servers.values():
            srv.cleanup()


if __name__ == "__main__":
    main()
