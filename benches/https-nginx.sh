#!/usr/bin/env bash
# HTTPS/1.1 keep-alive against nginx: userflux (one or more engine
# binaries) against wrk, and what each costs nginx (issue #30: userflux
# reached 0.90–0.95× wrk's requests/s while nginx, on its own core, was
# the limit and spent more CPU per request). nginx runs one worker pinned
# to core 1 with a self-signed P-256 certificate (openssl, in a temp dir)
# and a 2-byte response; each generator runs pinned to core 0 with one
# thread, the tools alternating round by round so machine noise hits all
# alike. Per run: requests/s and nginx's own request count (stub_status on
# a plain port), the generator's CPU-seconds and requests per CPU-second,
# nginx's CPU per request (its /proc stat), and how often the generator
# slept per request (voluntary context switches: each sleep is a wake-up
# nginx's core pays for when its response arrives). Then medians and the
# medians of the per-round ratios to wrk.
#   benches/https-nginx.sh [ROUNDS] [SECS] [CONNS] [ENGINE...]
#   (default 5 rounds, 5 s, 64 connections, target/release/userflux-engine;
#   TLS=1.3 serves TLS 1.3 only, else nginx's default versions (TLS 1.2 on
#   nginx 1.22); needs nginx, wrk, openssl, python3, taskset, GNU time)
set -euo pipefail
rounds=${1:-5} secs=${2:-5} conns=${3:-64}
shift $(($# < 3 ? $# : 3))
engines=()
for e in "$@"; do engines+=("$(realpath "$e")"); done
cd "$(dirname "$0")/.."
[ ${#engines[@]} -gt 0 ] || engines=("$PWD/target/release/userflux-engine")
for e in "${engines[@]}"; do [ -x "$e" ] || { echo "no engine binary $e (cargo build --release -p userflux-engine)"; exit 2; }; done
for t in nginx wrk openssl python3 taskset; do
  command -v $t >/dev/null || { echo "needs $t"; exit 2; }
done
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)"; exit 2; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
tport=$(port) sport=$(port)
protocols=""
[ "${TLS:-}" = 1.3 ] && protocols="ssl_protocols TLSv1.3;"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  server { listen 127.0.0.1:$sport; location / { stub_status; } }
  server {
    listen 127.0.0.1:$tport ssl;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    $protocols
    location / { return 200 "ok"; }
  }
}
NGINX
taskset -c 1 nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
sleep 0.5
worker=$(pgrep -P "${pids[0]}" | head -1)
[ -n "$worker" ] || { cat "$work/error.log"; exit 1; }
url="https://127.0.0.1:$tport/"
served() { python3 -c "import urllib.request as u;print(u.urlopen('http://127.0.0.1:$sport/').read().split()[9].decode())"; }
ticks() { awk '{print $14 + $15}' "/proc/$worker/stat"; }
hz=$(getconf CLK_TCK)
measure() { # name cmd... → "name req/s served cpu-s nginx-ticks sleeps"
  local name=$1; shift
  local r0 t0 out r1 t1
  r0=$(served) t0=$(ticks)
  out=$( { /usr/bin/time -f 'CPU %U %S %w' taskset -c 0 "$@"; } 2>&1 ) || true
  r1=$(served) t1=$(ticks)
  local rps cpu sleeps
  rps=$(printf '%s\n' "$out" | sed -n 's/.*Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' | tail -1)
  cpu=$(printf '%s\n' "$out" | awk '/^CPU /{print $2 + $3}' | tail -1)
  sleeps=$(printf '%s\n' "$out" | awk '/^CPU /{print $4}' | tail -1)
  echo "$name ${rps:-0} $((r1 - r0 - 1)) ${cpu:-0} $((t1 - t0)) ${sleeps:-0}"
}
cat > "$work/report.py" <<'PY'
import sys, statistics as st, collections
hz, engines = float(sys.argv[1]), sys.argv[2:]
rounds = collections.defaultdict(list)
for line in sys.stdin:
    name, rps, served, cpu, ticks, sleeps = line.split()
    rps, served, cpu, ticks, sleeps = float(rps), int(served), float(cpu), int(ticks), int(sleeps)
    row = {"rps": rps, "per_cpu": served / cpu if cpu else 0,
           "nginx_us": ticks / hz * 1e6 / served if served else 0,
           "sleeps": sleeps / served if served else 0}
    rounds[name].append(row)
    print(f"{name:10s} {rps:9.0f} req/s {cpu:5.2f} cpu-s {row['per_cpu']:8.0f} req/cpu-s"
          f"  nginx {row['nginx_us']:5.2f} us/req  sleeps {row['sleeps']:.3f}/req", flush=True)
print("medians:")
for name, rs in rounds.items():
    med = lambda k: st.median(r[k] for r in rs)
    label = name if name == "wrk" else f"{name} ({engines[int(name[8:]) - 1]})"
    line = (f"  {label}: {med('rps'):.0f} req/s, {med('per_cpu'):.0f} req/cpu-s,"
            f" nginx {med('nginx_us'):.2f} us/req, sleeps {med('sleeps'):.3f}/req")
    if name != "wrk":
        w = rounds["wrk"]
        ratio = st.median(r["rps"] / x["rps"] for r, x in zip(rs, w) if x["rps"])
        eff = st.median(r["per_cpu"] / x["per_cpu"] for r, x in zip(rs, w) if x["per_cpu"])
        line += f" | vs wrk: req/s {ratio:.3f}, per CPU-second {eff:.3f}"
    print(line)
PY
taskset -c 0 wrk -t1 -c"$conns" -d1s "$url" > /dev/null # warm up (and certificate check)
for r in $(seq "$rounds"); do
  measure wrk wrk -t1 -c"$conns" -d"${secs}s" "$url"
  i=0
  for e in "${engines[@]}"; do
    i=$((i + 1))
    measure "userflux$i" "$e" run "$url" -c "$conns" -d "${secs}s" -t 1 -q --insecure --runs-dir "$work/runs"
  done
done | python3 "$work/report.py" "$hz" "${engines[@]}"
