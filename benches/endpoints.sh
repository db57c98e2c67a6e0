#!/usr/bin/env bash
# Peak RSS and wall time of the engine for many endpoints (issues #21, #27):
# N endpoints, one VU each, for 3 s against the demo gateway on loopback,
# on 1 and 2 worker threads, measured by GNU time. Each count runs against
# `/health` (answered at once) and `/api/users` (a few milliseconds, with a
# two-metric Server-Timing header: latency histograms hold real spreads).
#   benches/endpoints.sh [ENGINE] [N...]   (default: target/release/userflux-engine 10 100 1000 2000)
#   PATHS="/api/users" THREADS="2" benches/endpoints.sh   (a subset)
# Needs: GNU time (apt-get install time), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${1:-target/release/userflux-engine}
shift || true
counts=("${@:-10 100 1000 2000}")
paths=${PATHS:-/health /api/users}
threads=${THREADS:-1 2}
work=$(mktemp -d)
. scripts/gateway.sh
start_gateway "$work/gw.out" target/release/userflux-gateway
trap 'kill $gw 2>/dev/null; rm -rf "$work"' EXIT
for n in ${counts[@]}; do
  for path in $paths; do
    python3 - "$addr" "$n" "$path" > "$work/c.json" <<'PY'
import json, sys
addr, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(json.dumps({"target": f"http://{addr}", "stages": [{"duration": "0s", "target": n},
      {"duration": "3s", "target": n}],
      "endpoints": [{"name": f"e{i}", "path": path} for i in range(n)]}))
PY
    for t in $threads; do
      rm -rf "$work/runs"
      read -r kb secs < <(/usr/bin/time -f '%M %e' "$engine" run --config "$work/c.json" -t "$t" -q \
           --runs-dir "$work/runs" 2>&1 >/dev/null | tail -1)
      rps=$(python3 -c 'import json,glob,sys; print(round(json.load(open(glob.glob(sys.argv[1]+"/*/summary.json")[0]))["totals"]["rps"]))' "$work/runs")
      awk -v n="$n" -v p="$path" -v t="$t" -v kb="$kb" -v s="$secs" -v r="$rps" \
        'BEGIN { printf "endpoints %5d  %-10s  threads %d  peak RSS %7.1f MB  wall %5.2f s  %6d req/s\n", n, p, t, kb / 1024, s, r }'
    done
  done
done
