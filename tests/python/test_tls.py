"""Client TLS, differential: Apache ZooKeeper (Netty, the same key and
trust stores) and paddock are set up alike and must agree on every
outcome: kazoo over TLS (verified, and mutual with a client certificate),
the x509 ACL scheme, port unification, and the refusals (plaintext on the
TLS port, TLS on the plaintext port, an untrusted or missing client
certificate). The certificates are made by this run (certs.py)."""

import os
import socket
import ssl
import tempfile
import time
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions

import jute
from certs import PASSWORD, Certs
from servers import Server, free_port

KINDS = ["zookeeper", "paddock"]
WAIT = 15
X509 = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="paddock-test-certs-")
    return Certs(d)


def tls_config(certs, client_auth="need", key_store="pem", unify=False, secure_port=None):
    cfg = {
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "secureClientPort": str(secure_port or free_port()),
        "secureClientPortAddress": "127.0.0.1",
        "ssl.trustStore.location": certs.ca,
        "ssl.trustStore.type": "PEM",
        "ssl.clientAuth": client_auth,
        "authProvider.x509": X509,
    }
    if key_store == "pem":
        cfg["ssl.keyStore.location"] = certs.server_pem
        cfg["ssl.keyStore.type"] = "PEM"
    else:
        cfg["ssl.keyStore.location"] = certs.server_p12
        cfg["ssl.keyStore.password"] = PASSWORD
        cfg["ssl.keyStore.type"] = "PKCS12"
    if unify:
        cfg["client.portUnification"] = "true"
    return cfg


class TlsServer:
    def __init__(self, kind, cfg):
        self.secure_port = int(cfg["secureClientPort"])
        self.srv = Server(kind, cfg).start()
        wait_port(self.secure_port)

    @property
    def secure_hosts(self):
        return "127.0.0.1:%d" % self.secure_port

    def cleanup(self):
        self.srv.cleanup()


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d not listening" % port)


@pytest.fixture(params=KINDS)
def need_server(request, certs):
    s = TlsServer(request.param, tls_config(certs, "need", key_store="p12", unify=True))
    yield s
    s.cleanup()


def kazoo(hosts, certs, client=None, **kw):
    args = dict(hosts=hosts, timeout=10, use_ssl=True, ca=certs.ca, verify_certs=True,
                connection_retry={"max_tries": 1})
    if client:
        args["certfile"], args["keyfile"] = certs.client(client)
    args.update(kw)
    c = KazooClient(**args)
    c.start(timeout=WAIT)
    return c


def client_ctx(certs, client=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(certs.ca)
    if client:
        ctx.load_cert_chain(*certs.client(client))
    return ctx


def tls_session(port, ctx):
    """A raw protocol connection over TLS: the ConnectResponse, or the
    exception that ended it (handshake failure, reset, close)."""
    c = jute.Conn(port, timeout=5)
    try:
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        c.sock.settimeout(5)
        return c.connect(), c
    except (ssl.SSLError, OSError, jute.Closed, jute.Timeout) as e:
        c.close_socket()
        return e, None


# Goal: kazoo verifies the server and, presenting a certificate, works over
# TLS on both servers; the certificate's subject is its x509 id, usable in
# an ACL that shuts out another trusted client.
def test_mutual_tls_and_x509_acl(need_server, certs):
    c1 = kazoo(need_server.secure_hosts, certs, "client1")
    c2 = kazoo(need_server.secure_hosts, certs, "client2")
    try:
        path = "/tls-" + uuid.uuid4().hex[:8]
        acl = [ACL(Permissions.ALL, Id("x509", certs.client1_dn))]
        c1.create(path, b"secret", acl=acl)
        assert c1.get(path)[0] == b"secret"
        assert c1.get_acls(path)[0] == acl
        with pytest.raises(NoAuthError):
            c2.get(path)
        # The `auth` scheme expands to the caller's x509 id.
        c2.create(path + "-auth", b"x", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        assert c2.get_acls(path + "-auth")[0] == [ACL(Permissions.ALL, Id("x509", certs.client2_dn))]
    finally:
        for c in (c1, c2):
            c.stop()
            c.close()


# Goal: the refusals are the same on both servers: no client certificate
# or one from a CA the trust store does not hold fails; plaintext on the
# TLS port fails; TLS and plaintext both work on the unified plain port.
def test_refusals_and_port_unification(need_server, certs):
    port = need_server.secure_port
    rep, c = tls_session(port, client_ctx(certs, "client1"))
    assert isinstance(rep, dict) and rep["timeOut"] > 0, rep
    c.close_socket()
    for who in (None, "foreign"):
        rep, c = tls_session(port, client_ctx(certs, who))
        assert not isinstance(rep, dict), "%s got a session: %r" % (who, rep)
    plain = jute.Conn(port, timeout=5)
    try:
        with pytest.raises((jute.Closed, jute.Timeout, ValueError, OSError)):
            plain.connect()
    finally:
        plain.close_socket()
    # Unified plain port: plaintext still works, and so does TLS.
    plain = jute.Conn(need_server.srv.port, timeout=5)
    assert plain.connect()["timeOut"] > 0
    plain.close_socket()
    rep, c = tls_session(need_server.srv.port, client_ctx(certs, "client1"))
    assert isinstance(rep, dict) and rep["timeOut"] > 0, rep
    c.close_socket()


# Goal: without port unification, TLS on the plaintext port is refused on
# both servers, and ssl.clientAuth=none serves kazoo with a verified server
# and no client certificate (a PEM key store this time).
@pytest.mark.parametrize("kind", KINDS)
def test_tls_on_plain_port_refused_and_client_auth_none(kind, certs):
    s = TlsServer(kind, tls_config(certs, "none", key_store="pem"))
    try:
        rep, c = tls_session(s.srv.port, client_ctx(certs))
        assert not isinstance(rep, dict), rep
        c = kazoo(s.secure_hosts, certs)
        try:
            c.create("/none-" + uuid.uuid4().hex[:8], b"v")
        finally:
            c.stop()
            c.close()
        # A server certificate the client does not trust: refused by it.
        other = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        other.check_hostname = False
        other.load_verify_locations(certs.foreign_ca)
        rep, c = tls_session(s.secure_port, other)
        assert isinstance(rep, ssl.SSLError), rep
    finally:
        s.cleanup()


# Goal: a client that stops mid-handshake is closed after the connect wait
# (10 s) rather than held forever.
def test_stalled_handshake_is_closed(certs):
    s = TlsServer("paddock", tls_config(certs, "need"))
    try:
        sock = socket.create_connection(("127.0.0.1", s.secure_port), timeout=20)
        sock.sendall(b"\x16\x03\x01\x00\xff\x01")  # the start of a ClientHello
        t0 = time.monotonic()
        sock.settimeout(20)
        try:
            data = sock.recv(100)
        except ConnectionResetError:
            data = b""
        waited = time.monotonic() - t0
        assert data == b"", data
        assert 5 < waited < 15, waited
        assert "TLS handshake" in s.srv.log_tail(20000)
    finally:
        s.cleanup()


# Goal: a JKS key store is refused at start with the keytool command, and
# a key the server cannot read stops it at start (nothing served).
def test_jks_refused_with_conversion_command(certs):
    jks = os.path.join(certs.dir, "server.jks")
    with open(jks, "wb") as f:
        f.write(b"\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x00")
    cfg = tls_config(certs, "need")
    cfg["ssl.keyStore.location"] = jks
    del cfg["ssl.keyStore.type"]
    s = Server("paddock", cfg)
    with pytest.raises(RuntimeError) as e:
        s.start()
    s.cleanup()
    assert "keytool -importkeystore" in str(e.value), str(e.value)


# Goal: a key store replaced on disk is used for the next handshakes
# without a restart (certificate rotation), and a broken replacement keeps
# the previous one serving.
def test_key_store_rotation_without_restart(certs):
    import shutil
    d = tempfile.mkdtemp(prefix="paddock-test-rotate-")
    live = os.path.join(d, "server.pem")
    shutil.copy(certs.server_pem, live)
    cfg = tls_config(certs, "none")
    cfg["ssl.keyStore.location"] = live
    s = TlsServer("paddock", cfg)

    def served_cn():
        c = jute.Conn(s.secure_port, timeout=5)
        try:
            c.sock = client_ctx(certs).wrap_socket(c.sock, server_hostname="localhost")
            subject = dict(x[0] for x in c.sock.getpeercert()["subject"])
            c.sock.settimeout(5)
            assert c.connect()["timeOut"] > 0
            return subject["commonName"]
        finally:
            c.close_socket()
    try:
        assert served_cn() == "server"
        time.sleep(1.2)
        shutil.copy(certs.client1_pem, live + ".new")
        os.replace(live + ".new", live)
        deadline = time.monotonic() + 10
        while served_cn() != "client1":
            assert time.monotonic() < deadline, "the new key store was not picked up"
            time.sleep(0.3)
        with open(live + ".new", "w") as f:
            f.write("not a key store")
        os.replace(live + ".new", live)
        time.sleep(1.5)
        assert served_cn() == "client1"
        assert "serving with the previous one" in s.srv.log_tail(20000)
    finally:
        s.cleanup()


# Goal: hostile bytes at the unified plain port and the TLS port (random,
# mutated and truncated ClientHellos, absurd frame lengths) leave the
# server serving plaintext and TLS clients (a few seconds here; the long
# run is `python3 tests/python/fuzz_tls.py --minutes 10`).
def test_hostile_bytes_at_tls_ports(certs):
    import fuzz_tls
    cfg = tls_config(certs, "none", unify=True)
    s = TlsServer("paddock", cfg)
    try:
        sent = fuzz_tls.run(s.srv.port, s.secure_port, client_ctx(certs), 6, seed=16)
        assert sent > 50, sent
    finally:
        s.cleanup()


# Goal: ZooKeeper's own Java CLI (ZooKeeperMain, zkCli.sh's class, with
# -Dzookeeper.client.secure=true over Netty) works over mutual TLS on both
# servers and `whoami` reports the same ids, the x509 subject included.
def test_zookeeper_cli_over_tls_and_whoami(need_server, certs):
    import subprocess
    from servers import ZK_CLASSPATH
    cert, key = certs.client("client1")
    client_pem = os.path.join(certs.dir, "client1-ks.pem")
    with open(client_pem, "wb") as f:
        f.write(open(key, "rb").read() + open(cert, "rb").read())
    cmd = ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1",
           "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
           "-Dzookeeper.client.secure=true",
           "-Dzookeeper.ssl.keyStore.location=" + client_pem,
           "-Dzookeeper.ssl.keyStore.type=PEM",
           "-Dzookeeper.ssl.trustStore.location=" + certs.ca,
           "-Dzookeeper.ssl.trustStore.type=PEM",
           "-cp", ZK_CLASSPATH, "org.apache.zookeeper.ZooKeeperMain",
           "-server", need_server.secure_hosts]
    path = "/cli-tls-" + uuid.uuid4().hex[:8]
    script = "create %s v1\nget %s\nwhoami\nquit\n" % (path, path)
    r = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=90)
    out = r.stdout + "\n" + r.stderr
    assert "Created " + path in out, out[-3000:]
    assert "\nv1\n" in out, out
    assert "x509: " + certs.client1_dn in out, out
