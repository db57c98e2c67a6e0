#!/usr/bin/env bash
# HTTPS throughput and handshakes (issue #16): userflux against wrk on the
# same URL, the generator pinned to core 0 and the server to core 1, rounds
# alternating; keep-alive (requests/s and requests per generator
# CPU-second) and Connection: close (a handshake per request: full ones for
# userflux with tls.resume false; wrk's OpenSSL resumes when it can).
# Servers: nginx (one worker) with a certificate the gateway makes, and the
# gateway's own TLS mode. Loopback only; each run is bounded.
#   benches/tls.sh [ROUNDS] [CONNS] [SECS]   (default 5 64 5; needs a release build, nginx, wrk, GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} conns=${2:-64} secs=${3:-5}
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 2; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# the gateway's TLS mode (it also makes the certificate nginx uses)
gport=$(port)
taskset -c 1 target/release/userflux-gateway --listen "127.0.0.1:$gport" --tls-self-signed "$work/certs" \
  --routes <(echo '{"routes": [{"path": "/", "body_bytes": 2}]}') > "$work/gw.out" 2>/dev/null &
pids+=($!)
sleep 0.5
nport=$(port)
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$nport ssl;
    ssl_certificate $work/certs/cert.pem;
    ssl_certificate_key $work/certs/key.pem;
    # no resumption: with Connection: close both generators make full handshakes
    ssl_session_cache off;
    ssl_session_tickets off;
    location / { return 200 "ok"; }
  }
}
NGINX
taskset -c 1 nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
sleep 0.5
cat > "$work/full.json" <<J
{"target": "https://127.0.0.1", "threads": 1, "tls": {"insecure": true, "resume": false},
 "stages": [{"duration": "0s", "target": $conns}, {"duration": "${secs}s", "target": $conns}],
 "endpoints": [{"name": "close", "path": "/", "headers": {"connection": "close"}}]}
J
measure() { # name cmd... → "rps cpu"
  local out; out=$( { /usr/bin/env time -f 'CPU %U %S' taskset -c 0 "$@" ; } 2>&1 ) || true
  local rps cpu
  rps=$(printf '%s\n' "$out" | sed -n 's/.*Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' | tail -1)
  cpu=$(printf '%s\n' "$out" | awk '/^CPU /{print $2+$3}' | tail -1)
  echo "${rps:-0} ${cpu:-0}"
}
for server in nginx gateway; do
  p=$nport; [ $server = gateway ] && p=$gport
  url="https://127.0.0.1:$p/"
  for r in $(seq "$rounds"); do
    echo "$server keepalive $(measure wrk -t1 -c"$conns" -d"${secs}s" "$url") \
$(measure target/release/userflux-engine run "$url" -c "$conns" -d "${secs}s" -t 1 -q --insecure --runs-dir "$work/runs")"
    echo "$server close $(measure wrk -t1 -c"$conns" -d"${secs}s" -H 'Connection: close' "$url") \
$(measure target/release/userflux-engine run --config "$work/full.json" --target "https://127.0.0.1:$p" -q --runs-dir "$work/runs")"
  done
done | python3 -c '
import sys, statistics as st, collections
rows = collections.defaultdict(list)
for l in sys.stdin:
    s, mode, wr, wc, ur, uc = l.split()
    rows[(s, mode)].append(tuple(map(float, (wr, wc, ur, uc))))
for (s, mode), rs in rows.items():
    med = lambda i: st.median(r[i] for r in rs)
    ratio = st.median(r[2] / r[0] for r in rs if r[0])
    eff = st.median((r[2] / r[3]) / (r[0] / r[1]) for r in rs if r[0] and r[1] and r[3])
    print(f"{s:8s} {mode:9s} wrk {med(0):9.0f} req/s {med(1):5.2f} cpu-s | userflux {med(2):9.0f} req/s {med(3):5.2f} cpu-s"
          f" | userflux/wrk req/s {ratio:.3f}, req per cpu-s {eff:.3f}")'
