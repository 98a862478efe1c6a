#!/usr/bin/env bash
# Checks packaging/paddock.service with `systemd-analyze verify`: the unit
# as shipped, with ExecStart pointed at a built paddock binary (verify also
# checks that the command exists). Any complaint about the unit fails.
# Usage: scripts/verify-unit.sh [path-to-paddock]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(realpath "${1:-target/debug/paddock}")"
[ -x "$BIN" ] || { echo "no paddock binary at $BIN"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/bin/paddock |ExecStart=$BIN |" packaging/paddock.service > "$tmp/paddock.service"
grep -q "^ExecStart=$BIN " "$tmp/paddock.service"
out=$(systemd-analyze verify "$tmp/paddock.service" 2>&1) || { echo "$out"; exit 1; }
if grep -i "paddock.service" <<<"$out"; then
    echo "systemd-analyze complained about the unit"
    exit 1
fi
echo "paddock.service: systemd-analyze verify passed"
