#!/usr/bin/env bash
# HTTP/2 against h2load (issue #30): the engine's HTTP/2 client and h2load
# at the same connections x streams (h2load's -c 8 -m 16 and -c 64 -m 1;
# the engine's -c 8 --streams 16 and -c 64 --streams 1), against nginx h2c
# (benches/nginx-h2c.conf, one worker) and the demo gateway's h2c
# (GET /health: no downstream call). The server is pinned to the last
# core, the generator to core 0 with one thread; rounds alternate h2load,
# userflux, h2load, … so machine noise hits both alike. Prints each
# round's requests/s and requests per generator CPU-second (GNU time:
# user + sys), then per target and shape the medians and the medians of
# the per-round ratios userflux/h2load.
# Usage: benches/h2.sh [-n ROUNDS] [-d SECONDS] [-e ENGINE]
#   (default 5 rounds of 5 s, target/release/userflux-engine)
# Needs h2load (nghttp2-client), nginx (nginx-light), GNU time, taskset.
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 secs=5 engine=target/release/userflux-engine
while [ $# -gt 0 ]; do
  case $1 in
    -n) rounds=$2; shift 2 ;;
    -d) secs=$2; shift 2 ;;
    -e) engine=$2; shift 2 ;;
    *) echo "usage: $0 [-n ROUNDS] [-d SECONDS] [-e ENGINE]" >&2; exit 2 ;;
  esac
done
[ -x "$engine" ] || cargo build -q --release -p userflux-engine
cargo build -q --release -p userflux-gateway
work=$(mktemp -d)
trap 'kill ${gw:-} ${ngx:-} 2>/dev/null || true; rm -rf "$work"' EXIT
last=$(( $(nproc) - 1 ))
taskset -c "$last" nginx -p "$work" -c "$PWD/benches/nginx-h2c.conf" 2> "$work/nginx.err" &
ngx=$!
. scripts/gateway.sh
start_gateway "$work/gw.out" taskset -c "$last" target/release/userflux-gateway
sleep 0.5

# one round: name, then the command; prints "rps cpu"
measure() {
  local out
  out=$( { /usr/bin/env time -f 'CPU %U %S' taskset -c 0 "$@"; } 2>&1 ) || true
  local rps cpu
  rps=$(printf '%s\n' "$out" | awk '/^finished in/ {print $4} /^Requests\/sec:/ {print $2}' | tail -1)
  cpu=$(printf '%s\n' "$out" | awk '/^CPU / {print $2 + $3}' | tail -1)
  echo "${rps:-0} ${cpu:-0}"
}

for shape in "8 16" "64 1"; do
  set -- $shape
  c=$1 m=$2
  for target in nginx gateway; do
    case $target in
      nginx) url=http://127.0.0.1:8082/health ;;
      gateway) url="http://$addr/health" ;;
    esac
    for round in $(seq "$rounds"); do
      read -r hr hc < <(measure h2load -c "$c" -m "$m" -t 1 -D "$secs" "$url")
      read -r ur uc < <(measure "$engine" run "$url" --http2 -c "$c" --streams "$m" \
        -d "${secs}s" --threads 1 --no-save)
      echo "$target -c $c -m $m round $round: h2load $hr req/s ${hc}s CPU, userflux $ur req/s ${uc}s CPU" \
        | tee -a "$work/rounds.txt"
      echo "$target $c $m $hr $hc $ur $uc" >> "$work/all.txt"
    done
  done
done
python3 - "$work/all.txt" "$secs" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
secs = float(sys.argv[2])
by = {}
for t, c, m, hr, hc, ur, uc in rows:
    by.setdefault((t, c, m), []).append(tuple(map(float, (hr, hc, ur, uc))))
for (t, c, m), rs in by.items():
    def per_cpu(r, cpu):  # requests per CPU-second of the generator
        return r * secs / cpu if cpu else 0.0
    h = [r[0] for r in rs]; u = [r[2] for r in rs]
    hp = [per_cpu(r[0], r[1]) for r in rs]; up = [per_cpu(r[2], r[3]) for r in rs]
    ratio = [b / a for a, b in zip(h, u) if a]
    ratio_cpu = [b / a for a, b in zip(hp, up) if a]
    print(f"{t} -c {c} -m {m}: h2load {statistics.median(h):.0f} req/s, "
          f"{statistics.median(hp):.0f}/CPU-s; userflux {statistics.median(u):.0f} req/s, "
          f"{statistics.median(up):.0f}/CPU-s; userflux/h2load medians "
          f"{statistics.median(ratio):.3f} req/s, {statistics.median(ratio_cpu):.3f} per CPU-s "
          f"({len(rs)} rounds)")
EOF
