"""Hostile bytes at a unified port (client.portUnification: TLS and
plaintext on one port, told apart by the first byte) and at a TLS port:
random bytes, real ClientHellos mutated, truncated and followed by
garbage, plaintext frames of any length, each connection dropped or
abandoned. Seeded; the server must keep serving both kinds of client, which
is checked every batch (ruok) and at the end (a session over each).

CI runs a few seconds of it (test_tls.py); a long run is opt-in:
  python3 tests/python/fuzz_tls.py --minutes 10 [--seed N]
(starts its own paddock with PADDOCK_BIN, default target/debug/paddock)."""

import argparse
import random
import socket
import ssl
import struct
import tempfile
import time

import jute
from servers import ruok

BATCH = 20


def client_hello(ctx):
    """The bytes of a real ClientHello from Python's TLS client."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        kind = rng.randrange(4)
        if kind == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:
            data = data[: rng.randrange(len(data) + 1)]
        elif kind == 2:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        elif data:
            i = rng.randrange(len(data))
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(16)))
    return bytes(data)


def hostile(rng, hello):
    kind = rng.randrange(5)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 1:
        return mutate(rng, hello)
    if kind == 2:
        return hello[: rng.randrange(1, len(hello))]
    if kind == 3:
        return b"\x16" + bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
    n = rng.choice([0, 1, 44, 0x16000000, -1, 0x7fffffff, rng.randrange(1 << 20)])
    return struct.pack(">i", n) + bytes(rng.randrange(256) for _ in range(rng.randrange(64)))


def run(plain_port, tls_port, ctx, seconds, seed=0):
    """Throws hostile connections at both ports for `seconds`; returns the
    number sent. Raises if the server stops serving."""
    rng = random.Random(seed)
    hello = client_hello(ctx)
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        for _ in range(BATCH):
            port = rng.choice([plain_port, tls_port])
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(hostile(rng, hello))
                if rng.random() < 0.5:
                    s.settimeout(0.05)
                    try:
                        s.recv(4096)
                    except OSError:
                        pass
                s.close()
            except OSError:
                pass
            sent += 1
        if not ruok(plain_port, timeout=5):
            raise AssertionError("the server stopped answering after %d hostile connections (seed %d)"
                                 % (sent, seed))
    check_serving(plain_port, tls_port, ctx)
    return sent


def check_serving(plain_port, tls_port, ctx):
    for port, wrap in ((plain_port, False), (plain_port, True), (tls_port, True)):
        c = jute.Conn(port, timeout=5)
        if wrap:
            c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
            c.sock.settimeout(5)
        assert c.connect()["timeOut"] > 0
        c.close_socket()


def main():
    from certs import Certs
    from servers import Server, free_port
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    certs = Certs(tempfile.mkdtemp(prefix="paddock-fuzz-tls-"))
    secure = free_port()
    srv = Server("paddock", {
        "secureClientPort": str(secure), "secureClientPortAddress": "127.0.0.1",
        "client.portUnification": "true", "ssl.keyStore.location": certs.server_pem,
        "ssl.clientAuth": "none"}).start()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(certs.ca)
    try:
        t0 = time.monotonic()
        n = run(srv.port, secure, ctx, args.minutes * 60, args.seed)
        print("fuzz_tls: %d hostile connections in %.0f s (seed %d); the server kept serving"
              % (n, time.monotonic() - t0, args.seed))
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
