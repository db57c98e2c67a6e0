#!/usr/bin/env bash
# Records the small real runs under tests/data/ that the analytics tests read:
#   closed/     three closed-model endpoints, one failing 20 %, samples at rate 0.2
#   autoscale/  an autoscaled endpoint with scaling events, no samples
#   open/       an open-model endpoint against a stalling route, with thresholds (one fails)
#   flow/       a three-step flow (login, a product with the token, an order) next to an
#               endpoint, with checks (one failing some of the time on each)
# Regenerate with: analytics/tests/make_fixtures.sh  (needs `cargo build --release`).
# Loopback only; each run ends by itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/target/release
data=$here/data
work=$(mktemp -d)
trap 'kill ${gw:-} 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/routes.json" <<'JSON'
{"routes": [
  {"path": "/users", "calls": [{"service": "users", "latency": "2ms"}], "body_bytes": 256},
  {"path": "/search", "calls": [{"service": "search", "latency": "8ms"}, {"service": "rank", "latency": "3ms"}], "body_bytes": 1024},
  {"method": "POST", "path": "/orders", "mode": "sequential",
   "calls": [{"service": "stock", "latency": "3ms"}, {"service": "pay", "latency": "5ms", "error_rate": 0.2}], "body_bytes": 64},
  {"path": "/steady", "calls": [{"service": "steady", "latency": "10ms"}]},
  {"path": "/stalls", "calls": [{"service": "stalls", "latency": "2ms"}], "stall": {"every": "3s", "for": "600ms"}},
  {"method": "POST", "path": "/login", "login": true, "calls": [{"service": "auth", "latency": "1ms"}]},
  {"path": "/products/{id}", "auth": true, "calls": [{"service": "catalog", "latency": "3ms"}], "body_bytes": 512},
  {"method": "POST", "path": "/buy", "auth": true, "calls": [{"service": "pay", "latency": "4ms", "error_rate": 0.1}]}
]}
JSON
. "$root/scripts/gateway.sh"
start_gateway "$work/gw.out" "$bin/userflux-gateway" --routes "$work/routes.json"
target="http://$addr"
run() { # name config-json [engine args...]
  local name=$1 config=$2; shift 2
  rm -rf "${data:?}/$name"
  echo "$config" > "$work/$name.json"
  "$bin/userflux-engine" run -q --config "$work/$name.json" --target "$target" --run-dir "$data/$name" "$@" > /dev/null || true
  rm -f "$data/$name/logs.txt"
}
run closed '{"name": "closed", "threads": 2,
  "stages": [{"duration": "1s", "target": 6}, {"duration": "2s", "target": 6}],
  "endpoints": [{"name": "users", "path": "/users", "weight": 3}, {"name": "search", "path": "/search", "weight": 2},
                {"name": "orders", "method": "POST", "path": "/orders", "body": "{}"}]}' --sample-rate 0.2
run autoscale '{"name": "autoscale", "threads": 1,
  "stages": [{"duration": "0s", "target": 1}, {"duration": "8s", "target": 1}],
  "endpoints": [{"name": "steady", "path": "/steady", "autoscale": {"target_rps": 300, "interval": "1s", "cooldown": "1s"}}]}'
run open '{"name": "open", "threads": 1, "duration": "4s",
  "thresholds": {"http_req_duration": ["p(90)<200", "p(50)<50"], "http_req_failed": ["rate<0.01"]},
  "endpoints": [{"name": "stalls", "path": "/stalls", "rate": 100, "pre_allocated_vus": 2, "max_vus": 5}]}'
run flow '{"name": "flow", "threads": 1,
  "stages": [{"duration": "0s", "target": 4}, {"duration": "3s", "target": 4}],
  "flows": [{"name": "shop", "weight": 3, "steps": [
    {"name": "login", "method": "POST", "path": "/login", "capture": {"token": {"json": "/token"}}},
    {"name": "product", "path": "/products/{{rand_int(1,100)}}", "headers": {"authorization": "Bearer {{vars.token}}"}},
    {"name": "buy", "method": "POST", "path": "/buy", "body": "{\"n\":{{seq}}}", "checks": {"paid": {"status": 200}}}]}],
  "endpoints": [{"name": "users", "path": "/users", "checks": {"status is 200": {"status": 200}, "fast": {"duration_lt": "2300us"}}}]}'
du -sh "$data"/*
