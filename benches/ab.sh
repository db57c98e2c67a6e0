#!/usr/bin/env bash
# Alternating A/B of two engine binaries: does a change move the hot path?
# (issue #26: the connection's reshape must not.) Rounds alternate A, B,
# A, B … so machine noise hits both alike; the engine runs pinned to core 0
# with one worker (-t 1), the server pinned to core 1, 64 connections.
# Scenarios:
#   plain  HTTP/1.1 keep-alive against floor-server.c (the cheapest server:
#          one fixed response per read), so the engine's cost dominates
#   https  TLS keep-alive against the gateway's TLS mode
#   flow   a 2-step flow against the gateway: a login whose token is
#          captured from the JSON body, then a GET sending it as a bearer
# Prints each round's req/s for A and B and the ratio B/A, and the ratio
# of their requests per CPU-second of the engine (GNU time: user + sys;
# steadier than req/s when other work shares the engine's core), then per
# scenario the medians and the medians of the ratios.
#   benches/ab.sh A_ENGINE B_ENGINE [ROUNDS] [SECS] [SCENARIOS]
#   (default 10 rounds, 4 s, "plain https flow"; needs gcc, python3,
#   taskset, GNU time and a release gateway: cargo build --release -p userflux-gateway)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,18p' "$0"; exit 2; }
a=$(realpath "$1") b=$(realpath "$2")
rounds=${3:-10} secs=${4:-4} scenarios=${5:-plain https flow}
cd "$(dirname "$0")/.."
gateway=target/release/userflux-gateway
[ -x "$gateway" ] || { echo "needs $gateway (cargo build --release -p userflux-gateway)"; exit 2; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
gcc -O2 -o "$work/floor-server" benches/floor-server.c
fport=$(port)
taskset -c 1 "$work/floor-server" "$fport" & pids+=($!)
tport=$(port)
taskset -c 1 "$gateway" --listen "127.0.0.1:$tport" --tls-self-signed "$work/certs" \
  --routes <(echo '{"routes": [{"path": "/", "body_bytes": 2}]}') > /dev/null 2>&1 & pids+=($!)
gport=$(port)
taskset -c 1 "$gateway" --listen "127.0.0.1:$gport" --routes <(echo '{"routes": [
  {"method": "POST", "path": "/login", "login": true},
  {"path": "/me", "auth": true, "body_bytes": 2}]}') > /dev/null 2>&1 & pids+=($!)
sleep 0.5
cat > "$work/flow.json" <<J
{"target": "http://127.0.0.1:$gport", "threads": 1,
 "stages": [{"duration": "0s", "target": 64}, {"duration": "${secs}s", "target": 64}],
 "flows": [{"name": "f", "steps": [
   {"name": "login", "method": "POST", "path": "/login", "capture": {"token": {"json": "/token"}}},
   {"name": "me", "path": "/me", "headers": {"authorization": "Bearer {{vars.token}}"}}]}]}
J
measure() { # engine scenario → "req/s cpu-seconds"
  local e=$1 out
  local run=(taskset -c 0 "$e" run -q --runs-dir "$work/runs")
  case $2 in
    plain) run+=("http://127.0.0.1:$fport/" -c 64 -d "${secs}s" -t 1) ;;
    https) run+=("https://127.0.0.1:$tport/" -c 64 -d "${secs}s" -t 1 --insecure) ;;
    flow) run+=(--config "$work/flow.json") ;;
  esac
  out=$( { /usr/bin/env time -f 'CPU %U %S' "${run[@]}" ; } 2>&1 ) || true
  rm -rf "$work/runs"
  local rps cpu
  rps=$(printf '%s\n' "$out" | sed -n 's/.*Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' | tail -1)
  cpu=$(printf '%s\n' "$out" | awk '/^CPU /{print $2+$3}' | tail -1)
  echo "${rps:-0} ${cpu:-0}"
}
for s in $scenarios; do
  for r in $(seq "$rounds"); do
    echo "$s $r $(measure "$a" "$s") $(measure "$b" "$s")"
  done
done | SECS=$secs python3 -c '
import os, sys, statistics as st, collections
secs = float(os.environ["SECS"])
rows = collections.defaultdict(list)
for l in sys.stdin:
    s, r, x, xc, y, yc = l.split()
    x, xc, y, yc = map(float, (x, xc, y, yc))
    # requests per CPU-second of the engine
    ex, ey = (x * secs / xc if xc else 0), (y * secs / yc if yc else 0)
    print(f"{s:6s} round {r:>2s}  A {x:9.0f} req/s {ex:9.0f} req/cpu-s  B {y:9.0f} req/s {ey:9.0f} req/cpu-s"
          f"  B/A {y / x if x else 0:.3f} req/s, {ey / ex if ex else 0:.3f} per cpu-s", flush=True)
    rows[s].append((x, y, ex, ey))
for s, rs in rows.items():
    ok = [r for r in rs if all(r)]
    if not ok:
        print(f"{s:6s} no valid rounds"); continue
    med = lambda i: st.median(r[i] for r in ok)
    print(f"{s:6s} median  A {med(0):9.0f} req/s  B {med(1):9.0f} req/s"
          f"  B/A median {st.median(r[1] / r[0] for r in ok):.3f} req/s,"
          f" {st.median(r[3] / r[2] for r in ok):.3f} per cpu-s ({len(ok)} rounds)")'
