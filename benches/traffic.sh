#!/usr/bin/env bash
# What realistic traffic costs (issue #15): the engine on one pinned core
# against benches/timing-server.c (-j: a small JSON body) on the other, in
# rounds that alternate four configs over the same VUs:
#   static     one endpoint, pre-rendered bytes (today's path)
#   templated  the same with {{seq}} in the path and {{rand_int(1,1000000)}} in the query
#   two        two static endpoints
#   flow       a two-step flow: step 1 captures /token from the JSON body,
#              step 2 sends it in a header (cookies on)
#   checks     the static endpoint with three checks that read the JSON body
# Prints each round and the medians of templated/static, flow/two and checks/static.
#   benches/traffic.sh [ROUNDS] [CONNS] [SECS]   (default 8 64 3; needs a release build, gcc)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8} conns=${2:-64} secs=${3:-3}
work=$(mktemp -d)
gcc -O2 -o "$work/server" benches/timing-server.c
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
ncpu=$(nproc); score=$(( ncpu > 1 ? 1 : 0 ))
taskset -c $score "$work/server" "$port" -j & srv=$!
trap 'kill $srv 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.3
stages="\"stages\": [{\"duration\": \"0s\", \"target\": $conns}, {\"duration\": \"${secs}s\", \"target\": $conns}]"
head="\"target\": \"http://127.0.0.1:$port\", \"threads\": 1, $stages"
cat > "$work/static.json" <<J
{$head, "endpoints": [{"name": "a", "path": "/t/1?r=500000"}]}
J
cat > "$work/templated.json" <<J
{$head, "endpoints": [{"name": "a", "path": "/t/{{seq}}?r={{rand_int(1,1000000)}}"}]}
J
cat > "$work/checks.json" <<J
{$head, "endpoints": [{"name": "a", "path": "/t/1?r=500000", "checks": {
  "ok": {"json": "/ok", "equals": true}, "has id": {"json": "/id", "exists": true},
  "token": {"json": "/token", "matches": "^abc"}}}]}
J
cat > "$work/two.json" <<J
{$head, "endpoints": [{"name": "a", "path": "/login"}, {"name": "b", "path": "/next", "headers": {"authorization": "Bearer abc123"}}]}
J
cat > "$work/flow.json" <<J
{$head, "flows": [{"name": "f", "steps": [
  {"name": "login", "path": "/login", "capture": {"token": {"json": "/token"}}},
  {"name": "next", "path": "/next", "headers": {"authorization": "Bearer {{vars.token}}"}}]}]}
J
rps() { taskset -c 0 target/release/userflux-engine run --config "$work/$1.json" -q \
          --runs-dir "$work/runs" | sed -n 's/Requests\/sec: //p'; }
for r in $(seq "$rounds"); do
  echo "$(rps static) $(rps templated) $(rps two) $(rps flow) $(rps checks)"
done | python3 -c '
import sys, statistics as st
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
for s, t, w, f, c in rows:
    print(f"static {s:9.0f}  templated {t:9.0f} ({t / s:.3f})  two {w:9.0f}  flow {f:9.0f} ({f / w:.3f})"
          f"  checks {c:9.0f} ({c / s:.3f})")
print(f"median templated/static {st.median(r[1] / r[0] for r in rows):.3f}; "
      f"median flow/two {st.median(r[3] / r[2] for r in rows):.3f}; "
      f"median checks/static {st.median(r[4] / r[0] for r in rows):.3f}")'
