#!/usr/bin/env bash
# The demo, through the orchestrator: the downstream gRPC services
# (userflux-services) and the gateway calling them over gRPC, each on a free
# loopback port, userfluxd on runs/ (started here unless one is already
# running), the runs of examples/demo.json (three endpoints) and
# examples/shop.json (a login → product → cart → checkout flow from a CSV of
# users) against the gateway, then examples/payments-grpc.json straight at the
# slowest service (unary gRPC calls from its .proto), submitted with
# userfluxctl and followed to their summaries; or the configs given (against
# the gateway).
# The daemon serves the live dashboard (its URL is printed, watch the runs
# there). Only 127.0.0.1 is ever loaded; the gateway (and a daemon started here)
# stop when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
# (make demo builds target/demo; release binaries are used otherwise)
bin=${USERFLUX_BIN:-target/release}
configs=("$@")
direct=()
if [ ${#configs[@]} -eq 0 ]; then
  configs=(examples/demo.json examples/shop.json)
  direct=(examples/payments-grpc.json)
fi
export USERFLUX_SOCKET=runs/userfluxd.sock
out=$(mktemp)
started_daemon=""
cleanup() {
  kill "${gw:-}" "${svc:-}" 2>/dev/null || true
  [ -n "$started_daemon" ] && "$bin/userfluxctl" daemon stop > /dev/null 2>&1 || true
  rm -f "$out"
}
trap cleanup EXIT
. scripts/gateway.sh
# the services first: start_gateway starts them the same way (--listen, "listening on")
start_gateway "$out" "$bin/userflux-services"
svc=$gw services=$addr
echo "demo: gRPC services (auth, users, catalog, pricing, inventory, payments, carts) on $services"
: > "$out"
start_gateway "$out" "$bin/userflux-gateway" --grpc "$services"
echo "demo: gateway listening on $addr, calling the services over gRPC"
if ! "$bin/userfluxctl" daemon status > /dev/null 2>&1; then
  # the live dashboard on a free loopback port (USERFLUX_HTTP picks another address)
  "$bin/userfluxctl" daemon start --runs-dir runs --http "${USERFLUX_HTTP:-127.0.0.1:0}"
  started_daemon=1
fi
# Watch and steer the runs below in a browser: the URL carries the token.
if url=$("$bin/userfluxctl" --json dashboard 2> /dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["open"])'); then
  echo "demo: dashboard $url"
else
  echo "demo: this userfluxd serves no dashboard (start it with: userfluxctl daemon start --http 127.0.0.1:8090)"
fi
code=0
runs=()
for config in "${configs[@]}"; do runs+=("$config http://$addr"); done
for config in "${direct[@]}"; do runs+=("$config http://$services"); done
for run in "${runs[@]}"; do
  config=${run% *} target=${run##* }
  echo "demo: $config (against $target)"
  c=0
  "$bin/userfluxctl" run start "$config" --target "$target" --wait || c=$?
  [ "$code" -ne 0 ] || code=$c
  id=$("$bin/userfluxctl" --json run status | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
  echo "demo: run directory runs/$id"
  "$bin/userfluxctl" report "$id"
done
exit "$code"
