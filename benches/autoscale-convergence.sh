#!/usr/bin/env bash
# How fast per-endpoint autoscale converges: the gateway serves one route
# with a fixed latency; the engine autoscales one endpoint toward a target
# from 1 worker; printed: the intervals (and seconds) until the endpoint's
# RPS is within ±10 % and ±5 % of the target, and the final error.
# Loopback only; the run ends by itself.
#
# usage: benches/autoscale-convergence.sh [TARGET_RPS] [LATENCY] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-1000} latency=${2:-10ms} secs=${3:-30}
cargo build -q --release
work=$(mktemp -d)
trap 'kill ${gw:-} 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/routes.json" <<JSON
{"routes": [{"path": "/r", "calls": [{"service": "s", "latency": "$latency"}]}]}
JSON
. scripts/gateway.sh
start_gateway "$work/gw.out" target/release/userflux-gateway --routes "$work/routes.json"
cat > "$work/config.json" <<JSON
{"target": "http://$addr", "threads": 1,
 "stages": [{"duration": "0s", "target": 1}, {"duration": "${secs}s", "target": 1}],
 "endpoints": [{"name": "r", "path": "/r", "autoscale": {"target_rps": $target}}]}
JSON
target/release/userflux-engine run -q --config "$work/config.json" --run-dir "$work/run" > /dev/null
python3 - "$work/run/summary.json" "$target" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); target = float(sys.argv[2])
rps = [t["endpoints"]["r"]["rps"] for t in s["timeline"]]
def settled(band):
    for i in range(len(rps)):
        if all(abs(r - target) <= band * target for r in rps[i:-1]):
            return i
    return None
print(f"target {target:.0f} req/s, {len(s['scaling_events'])} scaling events:")
for e in s["scaling_events"]:
    print(f"  t={e['t']:>4.0f}s {e['from']:>4} -> {e['to']:<4} {e['reason']}")
for band in (0.10, 0.05):
    i = settled(band)
    print(f"within ±{band:.0%} from second {i} on" + ("" if i is None else f" ({i / 2:.0f} intervals of 2 s)") if i is not None else f"never within ±{band:.0%}")
print(f"achieved {s['endpoints']['r']['achieved_rps']:.1f} req/s over the last 5 s "
      f"({100 * (s['endpoints']['r']['achieved_rps'] / target - 1):+.1f} %), {s['endpoints']['r']['vus']} workers")
PY
