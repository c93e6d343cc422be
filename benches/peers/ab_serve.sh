#!/usr/bin/env bash
# A/B throughput of two churn-serve binaries on the same bundle (e.g. before/after a refactor):
# alternates A and B for RUNS rounds of DUR seconds each (wrk -t1 -c32, one customer per request,
# each server pinned to core 0 with 1 worker, wrk on core 1) and prints every run and the medians.
# Usage: benches/peers/ab_serve.sh OLD_BINARY NEW_BINARY MODELS_DIR
set -euo pipefail
A=$1; B=$2; MODELS=$3
DUR=${DUR:-10}; RUNS=${RUNS:-3}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"customers":[{"customerID":"7590-VHVEG","gender":"Female","SeniorCitizen":0,"Partner":"Yes","Dependents":"No","tenure":1,"PhoneService":"No","MultipleLines":"No phone service","InternetService":"DSL","OnlineSecurity":"No","OnlineBackup":"Yes","DeviceProtection":"No","TechSupport":"No","StreamingTV":"No","StreamingMovies":"No","Contract":"Month-to-month","PaperlessBilling":"Yes","PaymentMethod":"Electronic check","MonthlyCharges":29.85,"TotalCharges":"29.85"}]}'
LUA
run() { # binary -> req/s
  RUST_LOG=warn taskset -c 0 "$1" --models "$MODELS" --bind 127.0.0.1:18095 --workers 1 2>/dev/null &
  local srv=$!
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18095/healthz && break; sleep 0.1; done
  taskset -c 1 wrk -t1 -c32 -d2s -s "$WORK/post.lua" http://127.0.0.1:18095/v1/score >/dev/null
  taskset -c 1 wrk -t1 -c32 -d"${DUR}s" -s "$WORK/post.lua" http://127.0.0.1:18095/v1/score | awk '/Requests\/sec/ {print $2}'
  kill $srv; wait $srv 2>/dev/null || true
}
ra=(); rb=()
for i in $(seq "$RUNS"); do
  ra+=("$(run "$A")"); rb+=("$(run "$B")")
  echo "round $i: A ${ra[-1]} req/s, B ${rb[-1]} req/s"
done
ma=$(printf '%s\n' "${ra[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
mb=$(printf '%s\n' "${rb[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
awk -v a="$ma" -v b="$mb" 'BEGIN {printf "median A %.0f req/s, B %.0f req/s, B/A = %.3f\n", a, b, b/a}'
