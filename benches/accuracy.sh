#!/usr/bin/env bash
# Accuracy: the gateway serves a route with a fixed 10 ms delay (pinned to
# the last core); the engine (one thread, core 0) loads it at moderate
# concurrency for 5 s per round; the target is a p50 of 10.0–10.3 ms and a
# p99 under 11 ms, judged on the median over the rounds. The gateway also
# says how many of its 10 ms timers fired 1 ms or more late
# (GET /__gateway/stats): a round where the reference itself was late for
# 1 % of calls or more cannot show a p99 under 11 ms, whoever measures it,
# so the medians are given over all rounds and over the rounds where it
# was on time.
# Usage: benches/accuracy.sh [-n ROUNDS] [CONNS...]   (default -n 5, 8 32).
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
if [ "${1:-}" = -n ]; then rounds=$2; shift 2; fi
cargo build -q --release
work=$(mktemp -d)
trap 'kill ${gw:-} 2>/dev/null || true; rm -rf "$work"' EXIT
echo '{"routes": [{"path": "/ten", "calls": [{"service": "s", "latency": "10ms"}]}]}' > "$work/routes.json"
last=$(( $(nproc) - 1 ))
. scripts/gateway.sh
start_gateway "$work/gw.out" taskset -c "$last" target/release/userflux-gateway --routes "$work/routes.json"
for conns in ${@:-8 32}; do
  for round in $(seq "$rounds"); do
    python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
      "http://$addr/__gateway/stats" > "$work/before-$conns-$round.json"
    taskset -c 0 target/release/userflux-engine run "http://$addr/ten" -c "$conns" -d 5s --threads 1 -q \
      --run-dir "$work/run-$conns-$round" > /dev/null
    python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
      "http://$addr/__gateway/stats" > "$work/after-$conns-$round.json"
  done
  python3 - "$work" "$conns" "$rounds" <<'PY'
import json, statistics, sys
work, conns, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = []
for r in range(1, rounds + 1):
    l = json.load(open(f"{work}/run-{conns}-{r}/summary.json"))["totals"]["latency_ms"]
    b, a = (json.load(open(f"{work}/{w}-{conns}-{r}.json")) for w in ("before", "after"))
    calls = a["calls_ended"] - b["calls_ended"]
    late = a["calls_late_1ms"] - b["calls_late_1ms"]
    on_time = late < 0.01 * calls
    rows.append((l, on_time))
    print(f"{conns:>4} connections, round {r}: p50 {l['p50']:.3f} ms, p90 {l['p90']:.3f}, "
          f"p99 {l['p99']:.3f}, max {l['max']:.3f}; gateway late >= 1 ms: {late} of {calls} calls"
          f"{'' if on_time else ' (the reference was late)'}")
def verdict(label, lats):
    if not lats:
        print(f"{conns:>4} connections, {label}: no such round")
        return
    p50 = statistics.median(l["p50"] for l in lats)
    p99 = statistics.median(l["p99"] for l in lats)
    ok = 10.0 <= p50 <= 10.3 and p99 < 11.0
    print(f"{conns:>4} connections, {label}: p50 {p50:.3f} ms, p99 {p99:.3f} ms"
          f"  -> {'within target' if ok else 'OUTSIDE target (p50 10.0-10.3, p99 < 11)'}")
verdict(f"median of all {rounds} rounds", [l for l, _ in rows])
on_time = [l for l, ok in rows if ok]
verdict(f"median of the {len(on_time)} rounds the gateway was on time", on_time)
PY
done
