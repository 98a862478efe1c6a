"""Client SASL (DIGEST-MD5) and enforced authentication, differential:
Apache ZooKeeper and paddock get the same JAAS file (through
`-Djava.security.auth.login.config` in SERVER_JVMFLAGS) and the same
zoo.cfg keys, and must agree: kazoo with `sasl_options` (pure-sasl) logs in
with the right password and gets the `sasl` id its ACLs name; a wrong
password or an unknown user is answered AuthFailed and closed; with
`sessionRequireClientSASLAuth` or `enforce.auth.*` an unauthenticated
request is answered SessionClosedRequireSaslAuth and closed."""

import os
import struct
import tempfile
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions
from puresasl.client import SASLClient

import jute
from servers import Server

KINDS = ["zookeeper", "paddock"]
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
JAAS = """
// The server's users (DIGEST-MD5).
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bobsecret"
       user_alice="alicesecret";
};
"""
AUTH_FAILED, REQUIRE_SASL = -115, -124


@pytest.fixture(scope="module")
def jaas():
    d = tempfile.mkdtemp(prefix="paddock-test-jaas-")
    p = os.path.join(d, "jaas.conf")
    with open(p, "w") as f:
        f.write(JAAS)
    return p


def start(kind, jaas, extra=None):
    cfg = {"authProvider.1": SASL_PROVIDER}
    cfg.update(extra or {})
    env = {"SERVER_JVMFLAGS": "-Djava.security.auth.login.config=%s" % jaas}
    return Server(kind, cfg, env=env).start()


def kazoo(srv, user=None, password=None):
    kw = {}
    if user:
        kw["sasl_options"] = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    c = KazooClient(hosts=srv.hosts, timeout=10, connection_retry={"max_tries": 1}, **kw)
    c.start(timeout=15)
    return c


def sasl_reply(conn, token):
    """Send one sasl request; (err, token or None, zxid)."""
    conn.send_frame(struct.pack(">ii", 1, jute.SASL) + jute.buf(token))
    r = jute.Reader(conn.recv_frame())
    xid, zxid, err = r.i32(), r.i64(), r.i32()
    assert xid == 1
    return err, (r.buf() if r.remaining() else None), zxid


def raw_sasl(port, user, password):
    """A raw-protocol DIGEST-MD5 exchange as kazoo runs it: the last reply's
    (err, zxid) and whether the server closed the connection after it."""
    c = jute.Conn(port, timeout=5)
    c.connect()
    cli = SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                     username=user, password=password)
    challenge = None
    while True:
        response = cli.process(challenge)
        if cli.complete and not response:
            # The server's rspauth checked out: the exchange is over.
            c.close_socket()
            return 0, zxid, False
        err, challenge, zxid = sasl_reply(c, response or b"")
        if err != 0:
            closed = c.is_closed(wait=5)
            c.close_socket()
            return err, zxid, closed


@pytest.fixture(params=KINDS, scope="module")
def sasl_server(request, jaas):
    srv = start(request.param, jaas)
    yield srv
    srv.cleanup()


# Goal: the right password logs in on both servers, and the id is
# `sasl:<user>`: an ACL naming bob lets bob in and keeps alice and an
# anonymous client out.
def test_digest_md5_login_and_sasl_acl(sasl_server):
    bob = kazoo(sasl_server, "bob", "bobsecret")
    alice = kazoo(sasl_server, "alice", "alicesecret")
    anon = kazoo(sasl_server)
    try:
        path = "/sasl-" + uuid.uuid4().hex[:8]
        acl = [ACL(Permissions.ALL, Id("sasl", "bob"))]
        bob.create(path, b"for bob", acl=acl)
        assert bob.get(path)[0] == b"for bob"
        assert bob.get_acls(path)[0] == acl
        for other in (alice, anon):
            with pytest.raises(NoAuthError):
                other.get(path)
    finally:
        for c in (bob, alice, anon):
            c.stop()
            c.close()


# Goal: a wrong password and an unknown user are refused alike on both
# servers: AuthFailed with zxid 0, then the connection closed.
@pytest.mark.parametrize("user,password", [("bob", "wrong"), ("mallory", "x")])
def test_wrong_password_is_auth_failed_and_closed(sasl_server, user, password):
    assert raw_sasl(sasl_server.port, user, password) == (AUTH_FAILED, 0, True)
    assert raw_sasl(sasl_server.port, "bob", "bobsecret") == (0, 0, False)


# Goal: with sessionRequireClientSASLAuth, a request before SASL is answered
# SessionClosedRequireSaslAuth and closed; a failed SASL login is answered
# the same; a logged-in client works.
@pytest.mark.parametrize("kind", KINDS)
def test_session_require_client_sasl_auth(kind, jaas):
    srv = start(kind, jaas, {"sessionRequireClientSASLAuth": "true"})
    try:
        c = jute.Conn(srv.port, timeout=5)
        c.connect()
        c.send(jute.EXISTS, jute.path_watch("/"))
        r = jute.Reader(c.recv_frame())
        assert (r.i32(), r.i64(), r.i32()) == (1, 0, REQUIRE_SASL)
        assert c.is_closed(wait=5)
        assert raw_sasl(srv.port, "bob", "wrong") == (REQUIRE_SASL, 0, True)
        bob = kazoo(srv, "bob", "bobsecret")
        try:
            bob.create("/required-" + uuid.uuid4().hex[:8], b"ok")
        finally:
            bob.stop()
            bob.close()
    finally:
        srv.cleanup()


# Goal: enforce.auth.enabled with the digest scheme: refused before addauth,
# served after it.
@pytest.mark.parametrize("kind", KINDS)
def test_enforce_auth_schemes_digest(kind, jaas):
    srv = start(kind, jaas, {"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"})
    try:
        c = jute.Conn(srv.port, timeout=5)
        c.connect()
        c.send(jute.EXISTS, jute.path_watch("/"))
        r = jute.Reader(c.recv_frame())
        assert (r.i32(), r.i64(), r.i32()) == (1, 0, REQUIRE_SASL)
        assert c.is_closed(wait=5)
        c = KazooClient(hosts=srv.hosts, timeout=10, auth_data=[("digest", "u:p")],
                        connection_retry={"max_tries": 1})
        c.start(timeout=15)
        try:
            assert c.exists("/") is not None
        finally:
            c.stop()
            c.close()
    finally:
        srv.cleanup()


# Goal: a Kerberos login that cannot accept tickets (no stored key) and
# enforcement of a scheme with no provider are refused at start by paddock,
# naming what is missing (as ZooKeeper refuses the second at start).
def test_unimplemented_sasl_setups_are_refused_at_start(jaas):
    d = tempfile.mkdtemp(prefix="paddock-test-krb-")
    krb = os.path.join(d, "jaas.conf")
    with open(krb, "w") as f:
        f.write('Server { com.sun.security.auth.module.Krb5LoginModule required '
                'useKeyTab=true keyTab="/etc/zk.keytab" principal="zookeeper/h@EXAMPLE.COM"; };')
    for env_jaas, extra, needle in [
        (krb, {}, "storeKey"),
        (jaas, {"enforce.auth.enabled": "true", "enforce.auth.schemes": "x509"}, "x509"),
    ]:
        srv = Server("paddock", extra,
                     env={"SERVER_JVMFLAGS": "-Djava.security.auth.login.config=" + env_jaas})
        with pytest.raises(RuntimeError) as e:
            srv.start()
        srv.cleanup()
        assert needle in str(e.value) and "refusing to start" in str(e.value), str(e.value)


# Goal: an `x509:` or `sasl:` id in an ACL is InvalidACL unless its
# provider is configured (authProvider.N), on both servers; `ip` and
# `digest` ids need none.
@pytest.mark.parametrize("kind", KINDS)
def test_acl_ids_need_their_provider(kind):
    from kazoo.exceptions import InvalidACLError
    x509 = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
    ids = [("x509", "CN=foo,O=Bar"), ("sasl", "bob"), ("sasl", "bob@EXAMPLE.COM"),
           ("ip", "127.0.0.1"), ("nosuch", "x")]
    expected = {
        (): ["invalid", "invalid", "invalid", "ok", "invalid"],
        (SASL_PROVIDER,): ["invalid", "ok", "ok", "ok", "invalid"],
        (x509,): ["ok", "invalid", "invalid", "ok", "invalid"],
    }
    for providers, want in expected.items():
        srv = Server(kind, {"authProvider.%d" % (i + 1): p for i, p in enumerate(providers)}).start()
        try:
            c = KazooClient(hosts=srv.hosts, timeout=10, connection_retry={"max_tries": 1})
            c.start(timeout=15)
            got = []
            for scheme, ident in ids:
                try:
                    c.create("/acl-" + uuid.uuid4().hex[:8], b"",
                             acl=[ACL(Permissions.ALL, Id(scheme, ident))])
                    got.append("ok")
                except InvalidACLError:
                    got.append("invalid")
            c.stop()
            c.close()
            assert got == want, (providers, got)
        finally:
            srv.cleanup()


def digest_exchange(port, user, password):
    """A raw DIGEST-MD5 exchange: the last reply's (err, token, zxid), and
    the connection (still open when the server kept it)."""
    c = jute.Conn(port, timeout=5)
    c.connect()
    cli = SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                     username=user, password=password)
    err, challenge, zxid = sasl_reply(c, cli.process(None) or b"")
    assert err == 0 and challenge
    return sasl_reply(c, cli.process(challenge)), c


# Goal: zookeeper.allowSaslFailedClients=true keeps a client whose SASL
# login failed: Ok with a null token, zxid 0, the connection serving,
# without the sasl id (an ACL naming bob keeps it out); with
# sessionRequireClientSASLAuth as well, the failure closes as before.
@pytest.mark.parametrize("kind", KINDS)
def test_allow_sasl_failed_clients(kind, jaas):
    flags = "-Djava.security.auth.login.config=%s -Dzookeeper.allowSaslFailedClients=true" % jaas
    srv = Server(kind, {"authProvider.1": SASL_PROVIDER}, env={"SERVER_JVMFLAGS": flags}).start()
    try:
        bob = kazoo(srv, "bob", "bobsecret")
        path = "/allow-" + uuid.uuid4().hex[:8]
        bob.create(path, b"x", acl=[ACL(Permissions.ALL, Id("sasl", "bob"))])
        bob.stop()
        bob.close()
        (err, token, zxid), c = digest_exchange(srv.port, "bob", "wrong")
        assert (err, token, zxid) == (0, None, 0)
        c.send(jute.EXISTS, jute.path_watch(path))
        r = jute.Reader(c.recv_frame())
        assert (r.i32(), r.i64() > 0, r.i32()) == (1, True, 0)
        c.send(jute.GET_DATA, jute.path_watch(path))
        r = jute.Reader(c.recv_frame())
        assert r.i32() == 2 and r.i64() > 0 and r.i32() == -102  # NoAuth
        c.close_socket()
    finally:
        srv.cleanup()
    srv = Server(kind, {"authProvider.1": SASL_PROVIDER, "sessionRequireClientSASLAuth": "true"},
                 env={"SERVER_JVMFLAGS": flags}).start()
    try:
        (err, token, zxid), c = digest_exchange(srv.port, "bob", "wrong")
        assert (err, zxid) == (REQUIRE_SASL, 0)
        assert c.is_closed(wait=5)
        c.close_socket()
    finally:
        srv.cleanup()
