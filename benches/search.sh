#!/usr/bin/env bash
# Capacity search (issue #32): trials and wall time to converge at 2 % for
# targets whose limit is known — the demo gateway's routes with one service
# of latency L and capacity C (concurrent calls beyond it queue), so the
# route sustains C / L requests per second and no more.
#   benches/search.sh [ENGINE] [LIMIT...]   (default: target/release/userflux-engine 5000 50000)
# Each LIMIT is made as capacity LIMIT × 2 ms / 1000 with 2 ms calls. The
# goal: at most ⌈log2(max/from)⌉ + ⌈log2(1/precision)⌉ + 2 trials.
# Needs: a release build (make release). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${1:-target/release/userflux-engine}
shift || true
limits=("${@:-5000 50000}")
work=$(mktemp -d)
python3 - "${limits[@]}" > "$work/routes.json" <<'PY'
import json, sys
routes = [{"method": "GET", "path": f"/cap{n}", "body_bytes": 64,
           "calls": [{"service": f"s{n}", "latency": "2ms", "capacity": max(1, int(n) * 2 // 1000)}]}
          for n in sys.argv[1:]]
print(json.dumps({"routes": routes}))
PY
. scripts/gateway.sh
start_gateway "$work/gw.out" target/release/userflux-gateway --routes "$work/routes.json"
trap 'kill $gw 2>/dev/null; rm -rf "$work"' EXIT
for n in "${limits[@]}"; do
  from=$(( n / 16 ))
  start=$(date +%s.%N)
  "$engine" search "http://$addr/cap$n" --threshold 'http_req_duration: p(99)<50' \
      --from "$from" --max $(( n * 4 )) --precision 0.02 --trial 3s --warmup 1s --cooldown 1s \
      --confirm 6s -q --run-dir "$work/s$n" > "$work/out$n" 2>&1 || true
  end=$(date +%s.%N)
  python3 - "$n" "$from" "$start" "$end" "$work/s$n/summary.json" <<'PY'
import json, math, sys
n, frm, start, end, path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
s = json.load(open(path))["search"]
judged = [t for t in s["trials"] if t["verdict"] not in ("warmup", "confirmed", "not_confirmed")]
goal = math.ceil(math.log2(4 * n / frm)) + math.ceil(math.log2(1 / 0.02)) + 2
found = s["rate"]
print(f"limit {n:>6}/s  found {str(found if found is None else round(found)):>7}  bracket {s['bracket']}  "
      f"trials {len(judged)} (goal <= {goal})  wall {end - start:.0f} s")
print(f"  {s['outcome']}")
PY
done
