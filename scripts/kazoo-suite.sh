#!/usr/bin/env bash
# Runs kazoo's own test suite (the tests shipped in kazoo/tests, with its
# harness kazoo.testing) against a 3-server Paddock ensemble, or against
# Apache ZooKeeper as the reference.
#
#   scripts/kazoo-suite.sh [--zookeeper] [--ci] [PYTEST ARGS...]
#
# PYTEST ARGS name tests relative to kazoo's tests directory, e.g.
#   scripts/kazoo-suite.sh test_client.py::TestClient -k create
# --ci runs the subset CI runs (listed in tests/kazoo-suite/ci-subset.txt);
# without test names, that subset is run too.
#
# Paddock stands in for the JVM through tests/kazoo-suite/java, first on
# PATH: kazoo's harness starts `java ... QuorumPeerMain zoo.cfg` per server.
# ZOOKEEPER_VERSION=3.8.0 makes the harness write ZooKeeper 3.5+'s settings
# (reconfigEnabled, local sessions, the super digest).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# kazoo's harness makes its TLS certificates with pyOpenSSL's X509
# extensions API, removed in pyOpenSSL 24.3: a virtualenv over the system
# packages (kazoo, pytest) holds an older pyOpenSSL, its cryptography and
# pyjks, so the system's newer cryptography is left as it is.
VENV="${KAZOO_SUITE_VENV:-$REPO/target/kazoo-venv}"
if ! "$VENV/bin/python" -c 'import OpenSSL.crypto, jks, objgraph, kazoo, pytest; OpenSSL.crypto.X509.add_extensions' >/dev/null 2>&1; then
    echo "== making $VENV (pyOpenSSL<24.3, cryptography<44, pyjks, objgraph for kazoo's harness and tests)"
    python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/python" -m pip install --quiet "pyopenssl<24.3" "cryptography<44" pyjks objgraph
fi
PYTHON="$VENV/bin/python"

target=paddock
if [ "${1:-}" = "--zookeeper" ]; then target=zookeeper; shift; fi
if [ "${1:-}" = "--ci" ]; then shift; set -- ; fi
KAZOO_TESTS=$("$PYTHON" -c 'import kazoo.tests, os; print(os.path.dirname(kazoo.tests.__file__))')
if [ $# -eq 0 ]; then
    mapfile -t subset < <(grep -v '^\s*#' tests/kazoo-suite/ci-subset.txt | grep -v '^\s*$')
    set -- "${subset[@]}"
fi

export ZOOKEEPER_VERSION=3.8.0
# kazoo's tests change with CI set: test_build then asserts the server
# reports ZOOKEEPER_VERSION (Paddock reports its own), and the read-only
# test sleeps 15 s more. Runs here are the same wherever they happen.
unset CI
# The harness needs a classpath (or a ZooKeeper home) either way; for
# Paddock the shim ignores it.
export ZOOKEEPER_CLASSPATH="$("$PYTHON" -c 'import sys; sys.path.insert(0, "tests/python"); import servers; print(servers.ZK_CLASSPATH)')"
# Ports offset..offset+25: a range picked free at random (the harness
# takes ZOOKEEPER_PORT_OFFSET and does not probe).
if [ -z "${ZOOKEEPER_PORT_OFFSET:-}" ]; then
    ZOOKEEPER_PORT_OFFSET=$("$PYTHON" - <<'PY'
import random, socket
for _ in range(200):
    base = random.randrange(21000, 60000, 50)
    ok = True
    for p in range(base, base + 30):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
        if not ok:
            break
    if ok:
        print(base)
        break
else:
    raise SystemExit("no free port range")
PY
)
    export ZOOKEEPER_PORT_OFFSET
fi
if [ "$target" = paddock ]; then
    export PADDOCK_BIN="${PADDOCK_BIN:-$REPO/target/debug/paddock}"
    [ -x "$PADDOCK_BIN" ] || { echo "no paddock binary at $PADDOCK_BIN (cargo build -p paddock-server)"; exit 2; }
    export PATH="$REPO/tests/kazoo-suite:$PATH"
fi
echo "== kazoo's suite against $target (ports from $ZOOKEEPER_PORT_OFFSET): $*"
cd "$KAZOO_TESTS"
exec "$PYTHON" -m pytest -p no:cacheprovider --import-mode=importlib -q -rfE -W ignore::DeprecationWarning "$@"
