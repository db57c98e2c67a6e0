#!/usr/bin/env bash
# Peak RSS of the engine for many endpoints (issue #21): N endpoints, one
# VU each, for 3 s against the demo gateway on loopback, on 1 and 2 worker
# threads, measured by GNU time.
#   benches/endpoints.sh [ENGINE] [N...]   (default: target/release/userflux-engine 10 100 1000)
# Needs: GNU time (apt-get install time), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${1:-target/release/userflux-engine}
shift || true
counts=("${@:-10 100 1000}")
work=$(mktemp -d)
. scripts/gateway.sh
start_gateway "$work/gw.out" target/release/userflux-gateway
trap 'kill $gw 2>/dev/null; rm -rf "$work"' EXIT
for n in ${counts[@]}; do
  python3 - "$addr" "$n" > "$work/c$n.json" <<'PY'
import json, sys
addr, n = sys.argv[1], int(sys.argv[2])
print(json.dumps({"target": f"http://{addr}", "stages": [{"duration": "0s", "target": n},
      {"duration": "3s", "target": n}],
      "endpoints": [{"name": f"e{i}", "path": "/health"} for i in range(n)]}))
PY
  for t in 1 2; do
    kb=$(/usr/bin/time -f '%M' "$engine" run --config "$work/c$n.json" -t "$t" -q \
         --runs-dir "$work/runs" 2>&1 >/dev/null | tail -1)
    awk -v n="$n" -v t="$t" -v kb="$kb" 'BEGIN { printf "endpoints %5d  threads %d  peak RSS %8.1f MB\n", n, t, kb / 1024 }'
  done
done
