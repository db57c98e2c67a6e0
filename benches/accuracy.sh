#!/usr/bin/env bash
# Accuracy: the gateway serves a route with a fixed 10 ms delay (pinned to
# the last core); the engine (one thread, core 0) loads it at moderate
# concurrency; the p50 should read 10.0–10.3 ms and the p99 under 11 ms.
# Usage: benches/accuracy.sh [CONNS...]   (default 8 32). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release
work=$(mktemp -d)
trap 'kill ${gw:-} 2>/dev/null || true; rm -rf "$work"' EXIT
echo '{"routes": [{"path": "/ten", "calls": [{"service": "s", "latency": "10ms"}]}]}' > "$work/routes.json"
last=$(( $(nproc) - 1 ))
. scripts/gateway.sh
start_gateway "$work/gw.out" taskset -c "$last" target/release/userflux-gateway --routes "$work/routes.json"
for c in "${@:-8 32}"; do
  for conns in $c; do
    taskset -c 0 target/release/userflux-engine run "http://$addr/ten" -c "$conns" -d 5s --threads 1 -q --run-dir "$work/run-$conns" > /dev/null
    python3 - "$work/run-$conns/summary.json" "$conns" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))["totals"]["latency_ms"]
ok = 10.0 <= l["p50"] <= 10.3 and l["p99"] < 11.0
print(f"{sys.argv[2]:>4} connections: p50 {l['p50']:.3f} ms, p90 {l['p90']:.3f}, p99 {l['p99']:.3f}, max {l['max']:.3f}"
      f"  -> {'within target' if ok else 'OUTSIDE target (p50 10.0-10.3, p99 < 11)'}")
PY
  done
done
