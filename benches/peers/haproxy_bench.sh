#!/usr/bin/env bash
# What HAProxy in front of churn-serve costs (issue 37: through the balancer ≥ 0.8× the
# throughput direct to one replica on the same cores). One replica (1 worker, pinned to core 0),
# wrk at saturation (-t1 -c32, one customer per request, on core 1); A = wrk straight to the
# replica, B = wrk to HAProxy (health checks on /readyz, keep-alive to the replica) on
# HAPROXY_CORE (default 1, beside wrk; 0 puts it on the replica's core). Alternates A and B for
# RUNS rounds of DUR seconds and prints each run, the medians and B/A.
# Usage: benches/peers/haproxy_bench.sh [CHURN_SERVE] [CHURN_TRAIN]
set -euo pipefail
SERVE=${1:-target/release/churn-serve}; TRAIN=${2:-target/release/churn-train}
DUR=${DUR:-10}; RUNS=${RUNS:-3}; HAPROXY_CORE=${HAPROXY_CORE:-1}
for t in wrk haproxy; do
  command -v "$t" >/dev/null || { echo "$t not found: apt-get install -y $t" >&2; exit 2; }
done
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$TRAIN" --data training/data/Telco-Customer-Churn.csv --label Churn --id customerID --model tree \
  --max-depth 4 --min-samples-leaf 20 --out "$WORK/models/telco" --quiet
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"customers":[{"customerID":"7590-VHVEG","gender":"Female","SeniorCitizen":0,"Partner":"Yes","Dependents":"No","tenure":1,"PhoneService":"No","MultipleLines":"No phone service","InternetService":"DSL","OnlineSecurity":"No","OnlineBackup":"Yes","DeviceProtection":"No","TechSupport":"No","StreamingTV":"No","StreamingMovies":"No","Contract":"Month-to-month","PaperlessBilling":"Yes","PaymentMethod":"Electronic check","MonthlyCharges":29.85,"TotalCharges":"29.85"}]}'
LUA
cat > "$WORK/haproxy.cfg" <<CFG
global
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch
  retry-on conn-failure
frontend fe
  bind 127.0.0.1:18096
  default_backend be
backend be
  option httpchk GET /readyz
  http-check expect status 200
  http-reuse always
  server r0 127.0.0.1:18095 check inter 1s
CFG
RUST_LOG=warn taskset -c 0 "$SERVE" --models "$WORK/models" --bind 127.0.0.1:18095 --workers 1 --store none 2>/dev/null &
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18095/healthz && break; sleep 0.1; done
taskset -c "$HAPROXY_CORE" haproxy -db -f "$WORK/haproxy.cfg" >/dev/null 2>&1 &
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18096/readyz && break; sleep 0.1; done
sleep 2 # the first health check passed
rate() { # port -> req/s
  taskset -c 1 wrk -t1 -c32 -d2s -s "$WORK/post.lua" "http://127.0.0.1:$1/v1/score" >/dev/null
  taskset -c 1 wrk -t1 -c32 -d"${DUR}s" -s "$WORK/post.lua" "http://127.0.0.1:$1/v1/score" |
    awk '/Non-2xx/ {bad=1} /Requests\/sec/ {r=$2} END {if (bad) {print "non-2xx answers" > "/dev/stderr"; exit 1} print r}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ra=(); rb=()
for i in $(seq "$RUNS"); do
  ra+=("$(rate 18095)"); rb+=("$(rate 18096)")
  echo "round $i: direct ${ra[-1]} req/s, through HAProxy ${rb[-1]} req/s"
done
ma=$(printf '%s\n' "${ra[@]}" | median); mb=$(printf '%s\n' "${rb[@]}" | median)
awk -v a="$ma" -v b="$mb" -v c="$HAPROXY_CORE" 'BEGIN {printf "median direct %.0f req/s, through HAProxy (core %s) %.0f req/s: %.3f×\n", a, c, b, b/a}'
