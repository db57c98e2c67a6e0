#!/usr/bin/env bash
# What collecting Server-Timing costs (issue #17): the engine on one pinned
# core against benches/timing-server.c on the other, answering with and
# without a three-entry Server-Timing header, rounds alternating; prints
# each round and the median of the per-round ratios with/without.
#   benches/server-timing.sh [ROUNDS] [CONNS] [SECS]   (default 8 64 3; needs a release build, gcc)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8} conns=${2:-64} secs=${3:-3}
work=$(mktemp -d)
gcc -O2 -o "$work/server" benches/timing-server.c
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
p_plain=$(port); p_timed=$(port)
ncpu=$(nproc); score=$(( ncpu > 1 ? 1 : 0 ))
taskset -c $score "$work/server" "$p_plain" & a=$!
taskset -c $score "$work/server" "$p_timed" -t & b=$!
trap 'kill $a $b 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.3
rps() { taskset -c 0 target/release/userflux-engine run "http://127.0.0.1:$1/" -c "$conns" -d "${secs}s" \
          -t 1 -q --runs-dir "$work/runs" | sed -n 's/Requests\/sec: //p'; }
for r in $(seq "$rounds"); do
  echo "$(rps "$p_plain") $(rps "$p_timed")"
done | python3 -c '
import sys, statistics as st
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
for p, t in rows: print(f"without {p:10.0f}  with {t:10.0f}  ratio {t / p:.3f}")
print(f"median without {st.median(p for p, _ in rows):.0f}, with {st.median(t for _, t in rows):.0f}; "
      f"median ratio with/without {st.median(t / p for p, t in rows):.3f}")'
