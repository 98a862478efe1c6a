"""What an operator of a 3-server ensemble reads, compared with a real
Apache ZooKeeper 3.8 ensemble given the same server.N lines:

- /zookeeper/config holds the member list on every member, in ZooKeeper's
  form;
- mntr's key set on the leader and on a follower;
- every AdminServer command's JSON key set and value types (ZooKeeper's
  AdminServer runs with Debian's Jetty and Jackson jars on its classpath);
- /metrics parsed by the prometheus_client text parser holds every name a
  standard ZooKeeper Grafana dashboard and ZooKeeper's documented alert
  rules use, with the type ZooKeeper's provider gives it: each counter and
  summary of the installed ZooKeeper's ServerMetrics (read from its jar)
  is a `counter` under its bare name or a `summary` with ZooKeeper's
  quantiles, `_count` and `_sum`, the rest gauges;
- learners / synced_followers on the leader follow a follower's death and
  return."""

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient
from prometheus_client.parser import text_string_to_metric_families

from ensembles import Ensemble, four_letter, mode

PROMETHEUS = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

# mntr / monitor keys ZooKeeper prints that Paddock leaves out, and why.
MNTR_LEFT_OUT = {
    # Per-learner-handler queue summaries (`<sid>_learner_handler_qp_*`):
    # ZooKeeper's leader keeps a packet queue per learner thread; Paddock's
    # leader sends to learners through one peer link each, without a queue
    # of its own to measure.
    re.compile(r"^zk_(avg|min|max|cnt|sum|p50|p95|p99|p999)_\d+_learner_handler_qp_(size|time_ms)$"),
    # Per-namespace request-size summaries (`<ns>_read/write_per_namespace`):
    # keyed by the first path component seen; not kept.
    re.compile(r"^zk_(avg|min|max|cnt|sum)_\w+_(read|write)_per_namespace$"),
}
# Paddock's own mntr keys, beyond ZooKeeper's.
MNTR_EXTRA = re.compile(r"^zk_(digest|last_proposal_zxid|persisted_zxid|paddock_\w+|(avg|min|max|cnt|sum|p50|p95|p99|p999)_paddock_\w+)$")

# AdminServer keys ZooKeeper answers that Paddock does not, and why.
ADMIN_LEFT_OUT = {
    # JVM facts: there is no JVM.
    "environment": re.compile(r"^(java\.\w+(\.\w+)*|os\.memory\.(free|max|total))$"),
}
# Commands whose key sets are the process's own facts, compared by type only.
ADMIN_OWN_KEYS = {
    # Java's system properties (java.*, sun.*, jdk.*, file.encoding, ...)
    # versus the settings Paddock took as system properties.
    "system_properties",
}
# Commands ZooKeeper lists that Paddock refuses (403), and why.
ADMIN_REFUSED = {
    # Changes the server's state, and this AdminServer authenticates no one
    # (Paddock has no trace mask either).
    "set_trace_mask",
}
# Values whose type may differ, and why.
ADMIN_TYPES = {
    # ZooKeeper answers null unless started from a dynamic configuration;
    # Paddock answers the zoo.cfg text it started from.
    ("initial_configuration", "initial_configuration"): (type(None), str),
}

# Names the standard ZooKeeper Grafana dashboard (grafana.com 10465) and
# the alert rules of ZooKeeper's monitoring guide query.
DASHBOARD_NAMES = [
    "znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
    "num_alive_connections", "outstanding_requests", "avg_latency", "min_latency",
    "max_latency", "packets_received", "packets_sent", "global_sessions",
    "open_file_descriptor_count", "max_file_descriptor_count", "uptime", "quorum_size",
    "election_time_count", "election_time_sum", "fsynctime_sum", "fsynctime_count",
    "fsynctime", "snapshottime_sum", "snapshottime_count", "readlatency", "readlatency_count",
    "readlatency_sum", "updatelatency", "updatelatency_count", "updatelatency_sum",
    "proposal_count", "commit_count", "looking_count", "unrecoverable_error_count",
    "digest_mismatches_count", "bytes_received_count", "response_bytes",
    "connection_request_count", "stale_sessions_expired", "dead_watchers_queued",
]
LEADER_NAMES = ["learners", "synced_followers", "synced_observers", "pending_syncs", "leader_uptime"]


def config_node(e, i):
    zk = KazooClient(hosts=e.hosts(i), timeout=10.0)
    zk.start(timeout=30)
    try:
        return zk.get("/zookeeper/config")
    finally:
        zk.stop()
        zk.close()


def normalised(e, text):
    """The member list with each port replaced by its role in the ensemble."""
    for i in range(len(e.client_ports)):
        text = text.replace(":%d" % e.quorum[i], ":Q%d" % i)
        text = text.replace(":%d" % e.election[i], ":E%d" % i)
        text = text.replace(":%d" % e.client_ports[i], ":C%d" % i)
    return text


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def admin_json(port, command):
    status, body = get("http://127.0.0.1:%d/commands/%s" % (port, command))
    assert status == 200, (command, status, body)
    return json.loads(body)


def mntr_keys(port):
    return [l.split("\t")[0] for l in four_letter(port, "mntr").splitlines() if l.strip()]


def observe(kind):
    """Starts an ensemble of `kind` with an AdminServer (and, for paddock,
    /metrics) on free ports; a client makes a node and two watches."""
    def per_server(i, e):
        # The HTTP ports are drawn with the ensemble's own: none twice.
        e.admin, e.metrics = e.more_ports[:3], e.more_ports[3:]
        text = "admin.serverAddress=127.0.0.1\nadmin.serverPort=%d\n" % e.admin[i]
        if kind == "paddock":
            text += ("metricsProvider.className=%s\nmetricsProvider.httpHost=127.0.0.1\n"
                     "metricsProvider.httpPort=%d\n" % (PROMETHEUS, e.metrics[i]))
        return text

    e = Ensemble(kind, per_server=per_server, more_ports=6)
    leader = e.start_all()
    follower = next(i for i in range(3) if i != leader)
    zk = KazooClient(hosts=e.hosts(follower), timeout=10.0)
    zk.start(timeout=30)
    zk.ensure_path("/a/b")
    zk.get("/a", watch=lambda ev: None)
    zk.exists("/c", watch=lambda ev: None)
    e.client = zk
    e.roles = {"leader": leader, "follower": follower}
    return e


@pytest.fixture(scope="module")
def zk_ens():
    e = observe("zookeeper")
    try:
        out = {"config": [config_node(e, i) for i in range(3)], "e": e}
        out["config_text"] = [normalised(e, d.decode()) for d, _ in out["config"]]
        for role, i in e.roles.items():
            out[role] = {
                "mntr": mntr_keys(e.client_ports[i]),
                "commands": {c: admin_json(e.admin[i], c) for c in commands_of(e.admin[i])},
            }
        yield out
    finally:
        e.client.stop()
        e.client.close()
        e.stop()


def commands_of(port):
    status, body = get("http://127.0.0.1:%d/commands" % port)
    assert status == 200, body
    return re.findall(r'href="/commands/(\w+)"', body)


@pytest.fixture(scope="module")
def pd_ens():
    e = observe("paddock")
    try:
        yield e
    finally:
        e.client.stop()
        e.client.close()
        e.stop()


def test_config_node_holds_the_member_list_like_zookeeper(zk_ens, pd_ens):
    e = pd_ens
    ours = [config_node(e, i) for i in range(3)]
    texts = [normalised(e, d.decode()) for d, _ in ours]
    assert len(set(texts)) == 1, texts
    theirs = set(zk_ens["config_text"])
    assert len(theirs) == 1, theirs
    assert texts[0] == theirs.pop()
    assert re.search(r"^server\.2=127\.0\.0\.1:Q1:E1:participant;0\.0\.0\.0:C1$", texts[0], re.M), texts[0]
    assert texts[0].endswith("\nversion=0")
    for (_, st), (_, zst) in zip(ours, zk_ens["config"]):
        assert (st.version, st.mzxid, st.czxid, st.data_length) == \
            (zst.version, zst.mzxid, zst.czxid, zst.data_length)


def left_out(key):
    return any(p.match(key) for p in MNTR_LEFT_OUT)


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_mntr_key_set_matches_zookeeper(zk_ens, pd_ens, role):
    theirs = [k for k in zk_ens[role]["mntr"] if not left_out(k)]
    ours = mntr_keys(pd_ens.client_ports[pd_ens.roles[role]])
    extra = [k for k in ours if k not in theirs and not MNTR_EXTRA.match(k)]
    missing = [k for k in theirs if k not in ours]
    assert not missing, "mntr keys ZooKeeper prints and Paddock does not: %s" % missing
    assert not extra, "mntr keys Paddock prints and ZooKeeper does not: %s" % extra
    # Same order where ZooKeeper has one.
    assert [k for k in ours if k in theirs] == theirs


def json_type(v):
    if isinstance(v, bool):
        return bool
    if isinstance(v, float):
        return float
    return type(v)


def compare(command, ours, theirs, where=""):
    """Key sets and value types of two JSON objects, recursively."""
    skip = ADMIN_LEFT_OUT.get(command)
    if command in ADMIN_OWN_KEYS and not where:
        assert isinstance(ours, dict) and "command" in ours and "error" in ours
        return
    missing = [k for k in theirs if k not in ours and not (skip and skip.match(k))]
    extra = [k for k in ours if k not in theirs and not (command == "environment" and k == "process.id")]
    if command == "monitor":
        missing = [k for k in missing if not left_out("zk_" + k)]
        extra = [k for k in extra if not MNTR_EXTRA.match("zk_" + k)]
    assert not missing, "%s%s: keys ZooKeeper answers and Paddock does not: %s" % (command, where, missing)
    assert not extra, "%s%s: keys Paddock answers and ZooKeeper does not: %s" % (command, where, extra)
    for k, tv in theirs.items():
        if k not in ours:
            continue
        ov = ours[k]
        allowed = ADMIN_TYPES.get((command, k))
        if allowed:
            assert isinstance(ov, allowed), (command, k, ov)
            continue
        if command == "monitor" and isinstance(tv, (int, float)) and isinstance(ov, (int, float)):
            # ZooKeeper's gauges are Numbers: an int when whole, else a double.
            continue
        if tv is None or ov is None:
            assert tv is None and ov is None or k == "client_address", (command, where, k, tv, ov)
            continue
        assert json_type(ov) == json_type(tv), "%s%s.%s: ZooKeeper %r, Paddock %r" % (command, where, k, tv, ov)
        if isinstance(tv, dict) and command not in ("watches", "watches_by_path", "dump", "voting_view"):
            compare(command, ov, tv, where + "." + k)
        if isinstance(tv, list) and tv and ov and isinstance(tv[0], dict):
            compare(command, ov[0], tv[0], where + "." + k + "[0]")


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_admin_commands_match_zookeeper(zk_ens, pd_ens, role):
    e = pd_ens
    port = e.admin[e.roles[role]]
    theirs = {c: j for c, j in zk_ens[role]["commands"].items() if c not in ADMIN_REFUSED}
    assert commands_of(port) == list(theirs), "the /commands list"
    for c in ADMIN_REFUSED:
        assert get("http://127.0.0.1:%d/commands/%s" % (port, c))[0] == 403, c
    for command, tj in theirs.items():
        compare(command, admin_json(port, command), tj)
    # Aliases answer as their command.
    assert admin_json(port, "mntr")["command"] == "monitor"
    assert admin_json(port, "nope")["error"] == "Unknown command: nope"
    status, body = get("http://127.0.0.1:%d/commands/snapshot" % port)
    assert status == 403 and "authenticat" in json.loads(body)["error"]


def test_probes(pd_ens):
    for port in pd_ens.admin:
        assert get("http://127.0.0.1:%d/ready" % port)[0] == 200
        assert get("http://127.0.0.1:%d/live" % port)[0] == 200


def scrape(e, i):
    status, body = get("http://127.0.0.1:%d/metrics" % e.metrics[i])
    assert status == 200, body
    fams = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            # The parser's model names a counter's sample `<name>_total`;
            # the exposition (and so Prometheus, and the dashboards' queries)
            # has the bare name, as ZooKeeper's does.
            name = fam.name if fam.type == "counter" else s.name
            fams.setdefault(name, []).append(s)
    return fams


def test_metrics_carry_the_dashboards_names(pd_ens):
    e = pd_ens
    e.client.create("/m", b"x")
    e.client.get("/m")
    leader = scrape(e, e.roles["leader"])
    follower = scrape(e, e.roles["follower"])
    for name in DASHBOARD_NAMES:
        assert name in leader, name
        assert name in follower, name
    for name in LEADER_NAMES:
        assert name in leader, name
    quantiles = {s.labels.get("quantile") for s in follower["readlatency"]}
    assert quantiles == {"0.5", "0.9", "0.99"}, quantiles
    assert follower["readlatency_count"][0].value >= 1
    assert follower["updatelatency_count"][0].value >= 1
    assert leader["znode_count"][0].value == follower["znode_count"][0].value >= 7
    assert leader["quorum_size"][0].value == 3
    assert leader["learners"][0].value == 2
    assert leader["fsynctime_count"][0].value >= 1
    for name in ["paddock_group_commit_batch_size_count", "paddock_storage_queue_depth",
                 "paddock_snapshot_duration_ms_count", "paddock_snapshot_size_bytes"]:
        assert name in leader, name


def zookeeper_metric_kinds():
    """{name: "counter" | "summary-basic" | "summary-advanced"} as the
    installed ZooKeeper's ServerMetrics registers them, read from its
    bytecode: each getCounter/getSummary call takes the name loaded just
    before it (and a DetailLevel for summaries)."""
    out = subprocess.run(["javap", "-classpath", "/usr/share/java/zookeeper.jar", "-c", "-p",
                          "org.apache.zookeeper.server.ServerMetrics"],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    kinds, name, level = {}, None, None
    for line in out.splitlines():
        m = re.search(r"// String (\S+)$", line)
        if m:
            name = m.group(1)
        m = re.search(r"DetailLevel\.(BASIC|ADVANCED)", line)
        if m:
            level = m.group(1).lower()
        if "MetricsContext.getCounter:" in line:
            kinds[name] = "counter"
        elif "MetricsContext.getSummary:" in line:
            kinds[name] = "summary-" + level
    return kinds


def families(e, i):
    status, body = get("http://127.0.0.1:%d/metrics" % e.metrics[i])
    assert status == 200, body
    return {f.name: f for f in text_string_to_metric_families(body)}, body


def test_metrics_carry_zookeepers_types(pd_ens):
    """ZooKeeper's provider exports ServerMetrics' counters as `counter`
    under the bare name and its summaries as `summary` (quantile 0.5, plus
    0.9 and 0.99 for the advanced ones, and `_count`/`_sum`); gauges are
    gauges. The kinds come from the installed ZooKeeper's jar."""
    kinds = zookeeper_metric_kinds()
    assert kinds.get("looking_count") == "counter" and kinds.get("readlatency") == "summary-advanced", kinds
    fams, body = families(pd_ens, pd_ens.roles["leader"])
    checked = {"counter": 0, "summary": 0, "gauge": 0}
    for name, fam in fams.items():
        kind = kinds.get(name, "gauge")
        if name.startswith("paddock_"):
            continue
        if kind == "counter":
            assert fam.type == "counter", (name, fam.type)
            # The bare name in the text (the parser's model says `_total`).
            assert re.search(r"^%s [0-9.e+-]+$" % name, body, re.M), name
        elif kind.startswith("summary"):
            assert fam.type == "summary", (name, fam.type)
            quantiles = {s.labels["quantile"] for s in fam.samples if s.name == name}
            want = {"0.5", "0.9", "0.99"} if kind == "summary-advanced" else {"0.5"}
            assert quantiles == want, (name, quantiles)
            assert {s.name for s in fam.samples} == {name, name + "_count", name + "_sum"}, (name, fam.samples)
        else:
            assert fam.type == "gauge", (name, fam.type)
        checked[fam.type] += 1
    # Every counter and summary ServerMetrics registers is exported.
    missing = sorted(n for n in kinds if n not in fams)
    assert not missing, missing
    assert min(checked.values()) > 0, checked


def mntr_value(port, key):
    for line in four_letter(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        if k == key:
            return v
    return None


def wait_for(pred, what, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def test_learners_follow_a_follower_leaving_and_returning(pd_ens):
    e = pd_ens
    lp = e.client_ports[e.roles["leader"]]
    assert (mntr_value(lp, "zk_learners"), mntr_value(lp, "zk_synced_followers")) == ("2", "2")
    syncs = lambda: int(mntr_value(lp, "zk_diff_count")) + int(mntr_value(lp, "zk_snap_count"))
    # Both followers synced with this leader once.
    assert syncs() >= 2, syncs()
    before = syncs()
    gone = next(i for i in range(3) if i not in e.roles.values())
    e.kill9(gone)
    wait_for(lambda: mntr_value(lp, "zk_synced_followers") == "1", "synced_followers drops to 1")
    assert mntr_value(lp, "zk_learners") == "1"
    e.client.create("/while_gone", b"x" * 300)
    e.start(gone)
    wait_for(lambda: mntr_value(lp, "zk_synced_followers") == "2", "synced_followers back to 2")
    assert mntr_value(lp, "zk_learners") == "2"
    assert mode(e.client_ports[gone]) == "follower"
    assert syncs() == before + 1, (before, syncs())
    # Proposal sizes: the 300-byte create was the largest proposal.
    sizes = [int(mntr_value(lp, "zk_%s_proposal_size" % k)) for k in ("min", "last", "max")]
    assert 0 < sizes[0] <= sizes[2] and sizes[2] > 300, sizes
    assert mntr_value(lp, "zk_pending_syncs") == "0"


def test_logs_name_the_server_and_each_role_change(pd_ens):
    e = pd_ens
    for i in range(3):
        with open(os.path.join(os.path.dirname(e.cfgs[i]), "server.log")) as f:
            log = f.read()
        lines = log.splitlines()
        assert lines and all("[myid:%d] " % (i + 1) in l for l in lines if " INFO " in l), lines[:5]
        changes = [l for l in lines if re.search(r"paddock::driver: role (\w+ -> )?(leader|follower)", l)]
        assert changes, lines
        # Nothing is logged per client request at info.
        assert not any("/a/b" in l for l in lines if " INFO " in l)
