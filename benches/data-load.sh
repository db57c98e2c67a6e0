#!/usr/bin/env bash
# Loading a data set (issue #15): a generated CSV of ROWS rows (id, user,
# email), then `userflux-engine validate` on a config that uses it — which
# reads, checks and hashes the file as a run does before its first request —
# timed with GNU time, against the same config without the data set.
# Prints the file's size, wall time and peak RSS of both, and their difference.
#   benches/data-load.sh [ROWS]   (default 1000000; needs a release build, GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 - "$rows" > "$work/users.csv" <<'PY'
import sys
n = int(sys.argv[1])
w = sys.stdout.write
w("id,user,email\n")
for i in range(n):
    w(f"{i},user{i:07d},user{i:07d}@example.test\n")
PY
with='{"target": "http://127.0.0.1:8080", "duration": "1s", "data": {"users": {"file": "users.csv"}},
  "endpoints": [{"name": "u", "path": "/u/{{data.users.user}}", "rate": 1}]}'
without='{"target": "http://127.0.0.1:8080", "duration": "1s", "endpoints": [{"name": "u", "path": "/u/1", "rate": 1}]}'
echo "$with" > "$work/with.json"; echo "$without" > "$work/without.json"
measure() { /usr/bin/time -f '%e %M' target/release/userflux-engine validate "$work/$1.json" 2>&1 >/dev/null | tail -1; }
size=$(stat -c %s "$work/users.csv")
for i in 1 2 3; do echo "$(measure with) $(measure without)"; done | python3 -c '
import sys, statistics as st
size = int(sys.argv[1]); rows = int(sys.argv[2])
r = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
w, wk, wo, wok = (st.median(x[i] for x in r) for i in range(4))
print(f"{rows} rows, {size / 1e6:.1f} MB: with the data set {w:.2f} s, {wk / 1024:.0f} MB peak; "
      f"without {wo:.2f} s, {wok / 1024:.0f} MB; the data set costs {w - wo:.2f} s and {(wk - wok) / 1024:.0f} MB "
      f"({(wk - wok) * 1024 / size:.2f}x the file)")' "$size" "$rows"
