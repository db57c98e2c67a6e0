#!/usr/bin/env bash
# Unary gRPC against h2load (issue #31): ghz is not in any registry this
# machine reaches (npm's `ghz` is an empty placeholder, PyPI has none, and
# Go modules are not reachable), so the reference is h2load posting a fixed
# gRPC body (a framed GetUserRequest{id: 7}) with gRPC's header fields, the
# cheapest a gRPC client can be: it neither encodes messages nor reads
# grpc-status. Against the demo's users service (userflux-services with no
# simulated latency, pinned to the last core), at the same connections x
# streams (h2load's -c 8 -m 16 and -c 64 -m 1). The engine runs its quick
# form twice per round: `fixed` (-d '{"id": 7}', encoded once) and
# `templated` (-d '{"id": {{seq}}}', encoded per call), so the encoding's
# cost shows as templated/fixed. Rounds alternate h2load, fixed, templated
# on core 0 with one thread; prints each round's calls/s and calls per
# generator CPU-second (GNU time: user + sys), then the medians of the
# per-round ratios.
# Usage: benches/grpc.sh [-n ROUNDS] [-d SECONDS] [-e ENGINE]
#   (default 5 rounds of 5 s, target/release/userflux-engine)
# Needs h2load (nghttp2-client), GNU time, taskset. Loopback only.
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
cargo build -q --release -p userflux-gateway --bin userflux-services
work=$(mktemp -d)
trap 'kill ${gw:-} 2>/dev/null || true; rm -rf "$work"' EXIT
last=$(( $(nproc) - 1 ))
echo '{"services": {"users": {"latency": "0s", "error_rate": 0}}}' > "$work/services.json"
. scripts/gateway.sh
start_gateway "$work/svc.out" taskset -c "$last" target/release/userflux-services --config "$work/services.json"
# GetUserRequest{id: 7}: field 1 varint 7 (08 07), framed: not compressed, length 2
printf '\x00\x00\x00\x00\x02\x08\x07' > "$work/body.bin"
call=userflux.demo.users.Users/GetUser

# one round: the command; prints "calls/s cpu-seconds"
measure() {
  local out
  out=$( { /usr/bin/env time -f 'CPU %U %S' taskset -c 0 "$@"; } 2>&1 ) || true
  local rps cpu
  rps=$(printf '%s\n' "$out" | awk '/^finished in/ {print $4} /^Requests\/sec:/ {print $2}' | tail -1)
  cpu=$(printf '%s\n' "$out" | awk '/^CPU / {print $2 + $3}' | tail -1)
  echo "${rps:-0} ${cpu:-0}"
}

engine_run() { # c m data
  measure "$engine" grpc "$addr" "$call" --proto gateway/proto/users.proto -d "$3" \
    -c "$1" --streams "$2" -z "${secs}s" --threads 1 --no-save
}

for shape in "8 16" "64 1"; do
  set -- $shape
  c=$1 m=$2
  for round in $(seq "$rounds"); do
    read -r hr hc < <(measure h2load -c "$c" -m "$m" -t 1 -D "$secs" -d "$work/body.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' "http://$addr/$call")
    read -r fr fc < <(engine_run "$c" "$m" '{"id": 7}')
    read -r tr tc < <(engine_run "$c" "$m" '{"id": {{seq}}}')
    echo "-c $c -m $m round $round: h2load $hr calls/s ${hc}s CPU, fixed $fr calls/s ${fc}s CPU, templated $tr calls/s ${tc}s CPU" \
      | tee -a "$work/rounds.txt"
    echo "$c $m $hr $hc $fr $fc $tr $tc" >> "$work/all.txt"
  done
done
python3 - "$work/all.txt" "$secs" <<'EOF'
import statistics, sys
secs = float(sys.argv[2])
by = {}
for l in open(sys.argv[1]):
    c, m, *v = l.split()
    by.setdefault((c, m), []).append(tuple(map(float, v)))
def per_cpu(r, cpu):  # calls per CPU-second of the generator
    return r * secs / cpu if cpu else 0.0
def med(xs):
    return statistics.median(xs) if xs else float("nan")
for (c, m), rs in by.items():
    h = [r[0] for r in rs]; f = [r[2] for r in rs]; t = [r[4] for r in rs]
    hp = [per_cpu(r[0], r[1]) for r in rs]; fp = [per_cpu(r[2], r[3]) for r in rs]
    tp = [per_cpu(r[4], r[5]) for r in rs]
    ratio = lambda a, b: med([y / x for x, y in zip(a, b) if x])
    print(f"-c {c} -m {m}: h2load {med(h):.0f} calls/s, {med(hp):.0f}/CPU-s; "
          f"fixed {med(f):.0f} calls/s, {med(fp):.0f}/CPU-s; templated {med(t):.0f} calls/s, "
          f"{med(tp):.0f}/CPU-s ({len(rs)} rounds)")
    print(f"  medians of per-round ratios: fixed/h2load {ratio(h, f):.3f} calls/s, "
          f"{ratio(hp, fp):.3f} per CPU-s; templated/fixed {ratio(f, t):.3f} calls/s, "
          f"{ratio(fp, tp):.3f} per CPU-s")
EOF
