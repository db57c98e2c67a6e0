#!/usr/bin/env bash
# The demo, through the orchestrator: the gateway on a free loopback port,
# userfluxd on runs/ (started here unless one is already running), the run of
# examples/demo.json submitted with userfluxctl and followed to its summary.
# Only 127.0.0.1 is ever loaded; the gateway (and a daemon started here)
# stop when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
config=${1:-examples/demo.json}
export USERFLUX_SOCKET=runs/userfluxd.sock
out=$(mktemp)
started_daemon=""
cleanup() {
  kill "${gw:-}" 2>/dev/null || true
  [ -n "$started_daemon" ] && "$bin/userfluxctl" daemon stop > /dev/null 2>&1 || true
  rm -f "$out"
}
trap cleanup EXIT
. scripts/gateway.sh
start_gateway "$out" "$bin/userflux-gateway"
echo "demo: gateway listening on $addr"
if ! "$bin/userfluxctl" daemon status > /dev/null 2>&1; then
  "$bin/userfluxctl" daemon start --runs-dir runs
  started_daemon=1
fi
code=0
"$bin/userfluxctl" run start "$config" --target "http://$addr" --wait || code=$?
id=$("$bin/userfluxctl" --json run status | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
echo "demo: run directory runs/$id"
"$bin/userfluxctl" report "$id"
exit "$code"
