#!/usr/bin/env bash
# The demo: the gateway on a free loopback port, the engine running
# examples/demo.json against it, the summary and the run directory printed.
# Only 127.0.0.1 is ever loaded; the gateway stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
config=${1:-examples/demo.json}
out=$(mktemp)
"$bin/userflux-gateway" --listen 127.0.0.1:0 > "$out" &
gw=$!
trap 'kill $gw 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 50); do
  grep -q '^listening on ' "$out" && break
  sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$out")
[ -n "$addr" ] || { echo "demo: the gateway did not start" >&2; exit 1; }
echo "demo: gateway listening on $addr; running $config"
"$bin/userflux-engine" run --config "$config" --target "http://$addr"
