# Sourced by the scripts and benches that need a demo target:
#   start_gateway OUT_FILE COMMAND...
# runs COMMAND (the gateway, possibly behind taskset, with its options) with
# --listen 127.0.0.1:0 in the background, its output in OUT_FILE, waits until
# it prints "listening on ADDR", and sets $gw (its pid) and $addr. Loopback only.
start_gateway() {
  local out=$1
  shift
  "$@" --listen 127.0.0.1:0 > "$out" &
  gw=$!
  for _ in $(seq 50); do
    grep -q '^listening on ' "$out" && break
    sleep 0.1
  done
  addr=$(sed -n 's/^listening on //p' "$out")
  [ -n "$addr" ] || { echo "the gateway did not start (see $out)" >&2; return 1; }
}
