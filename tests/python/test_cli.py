"""Apache ZooKeeper's own command-line clients against paddock: the Java
zkCli.sh and the C client's cli_mt, scripted through stdin. The zkCli
script also runs against ZooKeeper and the normalised outputs must match."""

import os
import re
import subprocess

import pytest

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"
TIMEOUT_S = 90

ZKCLI_SCRIPT = """create /cli v1
create -e /cli/e
create -s /cli/s- x
ls /cli
set /cli v2
get /cli
stat /cli
getAllChildrenNumber /cli
getEphemerals /cli
getAcl /cli
create /cli/missing/child
create /cli v1
delete /cli
setAcl /cli world:anyone:r
set /cli v3
ls -R /cli
delete /cli/e
quit
"""


def run(cmd, script):
    env = dict(os.environ, ZOO_LOG_DIR="/tmp", JVMFLAGS="-Xmx128m -XX:TieredStopAtLevel=1")
    r = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    return r.returncode, r.stdout + "\n" + r.stderr


def zkcli(server, script=ZKCLI_SCRIPT):
    if not os.path.exists(ZKCLI):
        pytest.fail("zkCli.sh missing: install the Debian package zookeeper")
    return run([ZKCLI, "-server", server.hosts], script)


def normalise(out):
    keep = []
    for line in out.splitlines():
        if line.startswith(("SLF4J", "Connecting to")) or not line.strip():
            continue
        line = re.sub(r"0x[0-9a-f]+", "0xN", line)
        line = re.sub(r"time = .*", "time = T", line)
        line = re.sub(r"(ctime|mtime) = .*", r"\1 = T", line)
        keep.append(line)
    return keep


def test_zkcli_script(paddock):
    _, out = zkcli(paddock)  # the exit code is that of the last command
    for expected in ["Created /cli", "Created /cli/e", "Created /cli/s-0000000001",
                     "[e, s-0000000001]", "v2", "dataVersion = 1", "numChildren = 2",
                     "'world,'anyone\n: cdrwa", "Node does not exist: /cli/missing/child",
                     "Node already exists: /cli", "Node not empty: /cli",
                     "Insufficient permission : /cli"]:
        assert expected in out, "missing %r in zkCli output:\n%s" % (expected, out)
    assert "/cli/s-0000000001" in out.split("ls -R")[-1] or "/cli/s-0000000001" in out


def test_zkcli_output_matches_zookeeper(zk, paddock):
    script = ZKCLI_SCRIPT.replace("/cli", "/clidiff")
    rc_z, out_z = zkcli(zk, script)
    rc_p, out_p = zkcli(paddock, script)
    assert rc_z == rc_p
    assert normalise(out_p) == normalise(out_z)


def test_zkcli_batch_command(paddock):
    rc, out = run([ZKCLI, "-server", paddock.hosts, "create", "/batch", "b1"], "")
    assert rc == 0 and "Created /batch" in out, out
    rc, out = run([ZKCLI, "-server", paddock.hosts, "get", "/batch"], "")
    assert rc == 0 and "\nb1\n" in out, out


def test_cli_mt_script(paddock):
    if not os.path.exists(CLI_MT):
        pytest.fail("cli_mt missing: install the Debian package zookeeper-bin")
    script = "create /cmt\ncreate +e /cmt/eph\ncreate +s /cmt/seq\nls /cmt\nexists /cmt/eph\n" \
             "delete /cmt/eph\nexists /cmt/eph\nquit\n"
    rc, out = run([CLI_MT, "-h", paddock.hosts], script)
    assert rc == 0, out
    assert "CONNECTED_STATE" in out
    assert "[/cmt]: rc = 0" in out and "name = /cmt" in out
    assert "name = /cmt/seq0000000001" in out
    assert re.search(r"/cmt: rc = 0\s+eph\s+seq0000000001", out), out
    assert "Error -101 for /cmt/eph" in out  # exists after the delete


def test_cli_mt_batch_get(paddock):
    run([ZKCLI, "-server", paddock.hosts, "create", "/cmtb", "payload"], "")
    rc, out = run([CLI_MT, "-h", paddock.hosts, "-c", "get /cmtb"], "")
    assert rc == 0 and "value_len = 7" in out and "payload" in out, out
