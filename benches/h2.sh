#!/usr/bin/env bash
# HTTP/2 anchors (issue #30): h2load against nginx h2c (benches/nginx-h2c.conf)
# and against the demo gateway's h2c (GET /health: no downstream call), the
# server pinned to the last core and h2load to core 0, alternating rounds,
# at h2load's -c 8 -m 16 and -c 64 -m 1. Prints requests/s per round and
# the median per target; the engine's HTTP/2 client is measured against the
# same two targets at the same connections x streams.
# Usage: benches/h2.sh [-n ROUNDS] [-d SECONDS]   (default 3 rounds of 5 s).
# Needs h2load (nghttp2-client) and nginx (nginx-light). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 secs=5
while [ $# -gt 0 ]; do
  case $1 in
    -n) rounds=$2; shift 2 ;;
    -d) secs=$2; shift 2 ;;
    *) echo "usage: $0 [-n ROUNDS] [-d SECONDS]" >&2; exit 2 ;;
  esac
done
cargo build -q --release -p userflux-gateway
work=$(mktemp -d)
trap 'kill ${gw:-} ${ngx:-} 2>/dev/null || true; rm -rf "$work"' EXIT
last=$(( $(nproc) - 1 ))
taskset -c "$last" nginx -p "$work" -c "$PWD/benches/nginx-h2c.conf" 2> "$work/nginx.err" &
ngx=$!
. scripts/gateway.sh
start_gateway "$work/gw.out" taskset -c "$last" target/release/userflux-gateway
sleep 0.5
for shape in "-c 8 -m 16" "-c 64 -m 1"; do
  for round in $(seq "$rounds"); do
    for target in nginx gateway; do
      case $target in nginx) url=http://127.0.0.1:8082/health ;; gateway) url="http://$addr/health" ;; esac
      # shellcheck disable=SC2086
      rps=$(taskset -c 0 h2load $shape -D "$secs" "$url" | awk '/^finished in/ {print $4}')
      echo "$shape $target round $round: $rps req/s"
      echo "$target $rps" >> "$work/${shape// /}.txt"
    done
  done
  for target in nginx gateway; do
    med=$(awk -v t=$target '$1 == t {print $2}' "$work/${shape// /}.txt" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$shape $target median: $med req/s"
  done
done
