"""A bounded run of the differential fuzzer (difffuzz.py) in CI: a fixed
range of seeds, each sequence run against Apache ZooKeeper and Paddock with
every reply and watch event compared. Longer runs (--minutes, --ensemble)
are opt-in; see the README."""

import random
import warnings

import pytest

import difffuzz
import jute

# Fixed seeds and length: a few minutes on the CI machine.
SEEDS = range(0, 6)
OPS = 120


@pytest.fixture(scope="module")
def pair():
    p = difffuzz.Pair(ensemble=False)
    yield p
    p.close()


def test_generator_is_deterministic():
    a = difffuzz.generate(7, 200)
    b = difffuzz.generate(7, 200)
    assert a == b
    assert difffuzz.generate(8, 200) != a
    kinds = {op[0] for s in range(20) for op in difffuzz.generate(s, 200)["ops"]}
    # Every family of operations is reachable from a small seed range.
    for k in ("create", "delete", "setData", "exists", "getData", "getChildren", "getChildren2",
              "getACL", "setACL", "multi", "multiRead", "sync", "addWatch", "removeWatches",
              "checkWatches", "getEphemerals", "getAllChildrenNumber", "whoAmI", "addAuth", "close",
              "disconnect", "reconnect", "expire", "settle", "setWatches", "open"):
        assert k in kinds, k


def test_comparison_sees_a_difference(pair):
    """The comparison can fail: the same sequence under two different
    auth profiles must not compare equal."""
    seq = {"seed": 0, "clients": [{"auth": "none", "short": False}, {"auth": "none", "short": False}],
           "ops": [["create", 0, ["R", "/a"], "x", "alice", 0, 1, None], ["getData", 1, ["R", "/a"], False]]}
    seq2 = dict(seq, clients=[{"auth": "none", "short": False}, {"auth": "alice", "short": False}])
    a, b = pair.run_one(pair.zk, seq, "/cmp_a"), pair.run_one(pair.zk, seq2, "/cmp_a")
    # The same on Paddock, so both servers keep the same history.
    c, d = pair.run_one(pair.pd, seq, "/cmp_a"), pair.run_one(pair.pd, seq2, "/cmp_a")
    assert difffuzz.first_difference(a, b) is not None
    assert difffuzz.first_difference(c, d) is not None
    assert difffuzz.first_difference(a, c) is None


@pytest.mark.parametrize("seed", list(SEEDS))
def test_seed_matches_zookeeper(pair, seed):
    report = difffuzz.check_seed(pair, seed, OPS, shrink_s=60, say=print)
    if report is not None and not report["confirmed"]:
        warnings.warn("seed %d: a difference that did not reproduce (timing):\n%s" % (seed, report["context"]))
    if report is not None and report["confirmed"]:
        pair.restart()
        pytest.fail("seed %d diverges from ZooKeeper at step %s:\n%s\nshrunk to: %s"
                    % (seed, report["step"], report.get("shrunk_context", report["context"]),
                       report["shrunk_ops"]))


def replies(transcript):
    return [(e["op"], e["err"], e["body"]) for e in transcript if e["t"] == "reply" and e["step"] >= 0
            and e["op"] != 11]


def test_create_kind_follows_the_opcode(pair):
    """Outside a multi ZooKeeper 3.8 picks the kind of node by opcode:
    createContainer makes a (reapable) container whatever its flags, create
    and create2 with the container flag a persistent node; a TTL op with a
    non-TTL mode gets as far as the parent and exists checks."""
    ops = [["create", 0, ["R", "/k1"], "x", "open", 4, 1, None],
           ["create", 0, ["R", "/k2"], "x", "open", 4, 15, None],
           ["create", 0, ["R", "/k3"], "x", "open", 0, 19, None],
           ["create", 0, ["R", "/k4"], "x", "open", 2, 19, None],
           ["create", 0, ["R", "/k5"], "x", "open", 5, 19, None],
           ["create", 0, ["R", "/k6"], "x", "open", 0, 21, 1],
           ["create", 0, ["R", "/x/k7"], "x", "open", 0, 21, -1],
           ["create", 0, ["R", "/k1"], "x", "open", 0, 21, -1]]
    for p in ("/k1", "/k2", "/k3", "/k40000000003"):
        ops += [["create", 0, ["R", p + "/kid"], "", "open", 0, 1, None], ["delete", 0, ["R", p + "/kid"], -1]]
    ops += [["settle"], ["getChildren", 0, ["R", ""], False]]
    seq = {"seed": 0, "clients": [{"auth": "none", "short": False}], "ops": ops}
    a, b, d = pair.compare(seq)
    assert d is None, difffuzz.context(a, b, d)
    got = replies(a)
    children = [r for r in got if r[0] == 8][-1]
    assert children == (8, 0, ["k1", "k2"]), children  # the two containers were reaped
    assert [r[1] for r in got[4:8]] == [-8, -8, -101, -110], got[4:8]


def test_multi_fails_whole_only_when_it_reaches_a_ttl_create_without_ttl(pair):
    bad = ["create", ["R", "/t"], "x", "open", 5, 15]
    seq = {"seed": 0, "clients": [{"auth": "none", "short": False}],
           "ops": [["multi", 0, [["create", ["R", "/a"], "", "open", 0, 1], bad]],
                   ["multi", 0, [["delete", ["R", "/missing"], -1], bad]]]}
    a, b, d = pair.compare(seq)
    assert d is None, difffuzz.context(a, b, d)
    got = replies(a)
    assert got[0][1] == -5 and got[1][1] == 0, got


def test_set_watches_on_the_empty_path(pair):
    """ZooKeeper's tree files the root under "" too: watches on "" that a
    reconnecting client re-registers with setWatches2 see the root, so
    nothing fires (the root has not changed), rather than NodeDeleted ""."""
    one = {"auth": "none", "short": False}
    seq = {"seed": 0, "clients": [one, one],
           "ops": [["exists", 1, ["BAD", ""], True],
                   ["getChildren", 1, ["BAD", ""], True],
                   ["disconnect", 1],
                   ["create", 0, ["R", "/a"], "x", "open", 0, 1, None],
                   ["reconnect", 1],
                   ["getData", 1, ["BAD", ""], True],
                   ["setWatches", 1]]}
    a, b, d = pair.compare(seq)
    assert d is None, difffuzz.context(a, b, d)
    # What ZooKeeper did: no event at all for client 1.
    assert not [e for e in a if e["t"] == "event" and e["c"] == 1], a


def test_null_data_in_a_multi_set_data(pair):
    """setData with a null buffer inside a multi stores null data, as the
    plain setData does: getData then answers a null buffer, not an empty one."""
    seq = {"seed": 0, "clients": [{"auth": "none", "short": False}],
           "ops": [["create", 0, ["R", "/n"], "x", "open", 0, 1, None],
                   ["multi", 0, [["setData", ["R", "/n"], None, -1]]],
                   ["getData", 0, ["R", "/n"], False],
                   ["multi", 0, [["setData", ["R", "/n"], "", -1]]],
                   ["getData", 0, ["R", "/n"], False]]}
    a, b, d = pair.compare(seq)
    assert d is None, difffuzz.context(a, b, d)
    datas = [r[2] for r in replies(a) if r[0] == 4]
    assert datas[0][0] is None and datas[1][0] == "", datas


def _sync_echoes(port, paths):
    """The raw bytes each sync answers with (sync echoes its path as the
    server decoded it)."""
    c = jute.Conn(port)
    try:
        c.connect()
        out = []
        for p in paths:
            c.send_frame(jute.i32(1) + jute.i32(jute.SYNC) + jute.i32(len(p)) + p)
            frame = c.recv_frame()
            assert frame[:4] == jute.i32(1) and frame[12:16] == jute.i32(0), (p, frame)
            out.append(frame[16:])
        return out
    finally:
        c.close_socket()


def test_invalid_utf8_decodes_as_zookeeper(pair):
    """Malformed UTF-8 in a string decodes as ZooKeeper's Java decoder does
    (one U+FFFD per malformed part by Java's rules, not Rust's), which sync
    makes visible by echoing its path; on a follower too in ensemble mode.
    Fixed cases plus seeded random ones over the bytes that matter."""
    fixed = [b"\xed\xa0\xbd", b"\xed\xa0\xbd\xed\xb8\x80", b"\xed\xb8\x80", b"\xed\xa0", b"\xed\xa0x",
             b"\xc0\x80", b"\xe2\x82", b"\xe2\x82x", b"\xf0\x9f\x98", b"\xf0\x9f\x98x", b"\xf0\x90\x80",
             b"\xe0\x80\x80", b"\xf4\x90\x80\x80", b"\xc3x", b"\xff\xfe", b"\xf0\x9f\x98\x80"]
    alphabet = [0x41, 0x2f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef,
                0xf0, 0xf4, 0xf5, 0xf8, 0xff]
    r = random.Random(20)
    rand = [bytes(r.choice(alphabet) for _ in range(r.randint(1, 6))) for _ in range(300)]
    paths = [b"/x" + b for b in fixed + rand]
    zk = _sync_echoes(pair.zk.ports[-1], paths)
    pd = _sync_echoes(pair.pd.ports[-1], paths)
    # fuzz_known "non-bmp-as-cesu8": ZooKeeper writes a character beyond
    # the BMP as CESU-8, Paddock as UTF-8; compare with that undone.
    diffs = [(p.hex(), z.hex(), d.hex()) for p, z, d in zip(paths, zk, pd) if z != _as_cesu8(d)]
    assert not diffs, diffs[:10]
    # The case the fuzzer found: a CESU-8 surrogate is one U+FFFD, not three.
    assert zk[0] == jute.i32(5) + "/x\ufffd".encode(), zk[0]
    # The known difference itself, as it stands.
    smiley = paths.index(b"/x\xf0\x9f\x98\x80")
    assert zk[smiley] == jute.i32(8) + b"/x\xed\xa0\xbd\xed\xb8\x80", zk[smiley]
    assert pd[smiley] == jute.i32(6) + b"/x\xf0\x9f\x98\x80", pd[smiley]


def _as_cesu8(body):
    """A length-prefixed UTF-8 string re-encoded as ZooKeeper's writer does:
    each UTF-16 unit on its own (CESU-8)."""
    s = body[4:].decode("utf-8")
    def units(c):
        v = ord(c) - 0x10000
        return c if v < 0 else chr(0xD800 + (v >> 10)) + chr(0xDC00 + (v & 0x3FF))
    out = "".join(units(c) for c in s)
    b = out.encode("utf-8", "surrogatepass")
    return jute.i32(len(b)) + b


def test_check_watches_on_a_path_without_a_slash(pair):
    """ZooKeeper 3.8 answers checkWatches on a non-empty path with no '/'
    with MarshallingError (removeWatches, and "", answer NoWatcher). Found
    by the ensemble run, seed 7400137."""
    ops = [["checkWatches", 0, ["BAD", "noslash"], t] for t in (1, 2, 3)]
    ops += [["checkWatches", 0, ["ABS", "a/b"], 3], ["checkWatches", 0, ["BAD", ""], 3],
            ["removeWatches", 0, ["BAD", "noslash"], 3]]
    seq = {"seed": 0, "clients": [{"auth": "none", "short": False}], "ops": ops}
    a, b, d = pair.compare(seq)
    assert d is None, difffuzz.context(a, b, d)
    assert [r[1] for r in replies(a)][:6] == [-5, -5, -5, -121, -121, -121], replies(a)
