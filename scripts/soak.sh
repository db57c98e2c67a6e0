#!/usr/bin/env bash
# Soak: the engine against the demo gateway for MINUTES (default 30) with
# samples on, on loopback. Every 10 s it records the engine's RSS and open
# file descriptors; at the end it checks that RSS is flat (the last minute
# within 5 % of the first), that the fd count did not grow, and that the run
# directory is valid (summary parses, sample lines == summary's count).
# Not part of `make test`. Usage: scripts/soak.sh [MINUTES] [SAMPLE_RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30} rate=${2:-0.1}
cargo build -q --release
bin=target/release
work=$(mktemp -d)
trap 'kill ${gw:-} ${eng:-} 2>/dev/null || true' EXIT
. scripts/gateway.sh
start_gateway "$work/gw.out" "$bin/userflux-gateway"
cat > "$work/soak.json" <<JSON
{"name": "soak", "threads": 1,
 "stages": [{"duration": "0s", "target": 64}, {"duration": "${minutes}m", "target": 64}],
 "samples": {"rate": $rate},
 "endpoints": [
   {"name": "users", "path": "/api/users", "weight": 3},
   {"name": "products", "path": "/api/products", "weight": 2},
   {"name": "orders", "method": "POST", "path": "/api/orders", "body": "{\"item\":42}"}]}
JSON
"$bin/userflux-engine" run -q --config "$work/soak.json" --target "http://$addr" --run-dir "$work/run" > "$work/engine.out" 2>&1 &
eng=$!
echo "soak: ${minutes} min against $addr, samples at rate $rate; recording to $work/metrics.csv"
echo "seconds,rss_kib,fds" > "$work/metrics.csv"
t=0
while kill -0 "$eng" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$eng/status" 2>/dev/null || echo "")
  fds=$(ls "/proc/$eng/fd" 2>/dev/null | wc -l)
  [ -n "$rss" ] && echo "$t,$rss,$fds" >> "$work/metrics.csv"
  sleep 10; t=$((t + 10))
done
wait "$eng" || true
python3 - "$work" "$minutes" <<'PY'
import csv, json, sys
work, minutes = sys.argv[1], int(sys.argv[2])
rows = [(int(r["seconds"]), int(r["rss_kib"]), int(r["fds"])) for r in csv.DictReader(open(f"{work}/metrics.csv"))]
first = [r for r in rows if 60 <= r[0] < 120] or rows[:6]
last = [r for r in rows if r[0] >= (minutes - 1) * 60] or rows[-6:]
rss1 = max(r[1] for r in first); rssn = max(r[1] for r in last)
# after start-up: the sample at 0 s is taken before any connection opens
fds = [r[2] for r in rows if r[0] >= 60] or [r[2] for r in rows if r[0] > 0]
s = json.load(open(f"{work}/run/summary.json"))
lines = sum(1 for _ in open(f"{work}/run/samples.ndjson", "rb"))
ok_rss = rssn <= rss1 * 1.05
ok_fd = max(fds) - min(fds) <= 2
ok_samples = lines == s["samples"]["written"]
print(f"RSS minute 1: {rss1 / 1024:.1f} MiB, last minute: {rssn / 1024:.1f} MiB ({100 * (rssn / rss1 - 1):+.1f} %) -> {'ok' if ok_rss else 'GREW'}")
print(f"open fds: {min(fds)}..{max(fds)} -> {'ok' if ok_fd else 'LEAK?'}")
print(f"requests {s['totals']['requests']:,}, errors {s['totals']['errors']:,}, rps {s['totals']['rps']:.0f}; "
      f"samples {lines:,} lines = summary {s['samples']['written']:,} -> {'ok' if ok_samples else 'MISMATCH'}; state {s['state']}")
sys.exit(0 if ok_rss and ok_fd and ok_samples and s["state"] == "finished" else 1)
PY
echo "soak: run directory $work/run"
