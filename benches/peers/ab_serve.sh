#!/usr/bin/env bash
# A/B throughput of two churn-serve binaries on the same bundle (e.g. before/after a refactor):
# alternates A and B for RUNS rounds of DUR seconds each (wrk -t1 -c32, one customer per request,
# each server pinned to core 0 with 1 worker, wrk on core 1) and prints every run and the medians:
# requests/s, and the server's CPU time per request (user + system from /proc, which a noisy VM's
# stolen time disturbs far less than the wall-clock rate).
# Usage: benches/peers/ab_serve.sh OLD_BINARY NEW_BINARY MODELS_DIR
# A_ARGS / B_ARGS add flags to one side (e.g. the same binary with and without
# `--challenger shadow`, see shadow_bench.sh); the shadow counters of each run are printed when
# the server reports them.
set -euo pipefail
A=$1; B=$2; MODELS=$3
A_ARGS=${A_ARGS:-}; B_ARGS=${B_ARGS:-}
DUR=${DUR:-10}; RUNS=${RUNS:-3}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"customers":[{"customerID":"7590-VHVEG","gender":"Female","SeniorCitizen":0,"Partner":"Yes","Dependents":"No","tenure":1,"PhoneService":"No","MultipleLines":"No phone service","InternetService":"DSL","OnlineSecurity":"No","OnlineBackup":"Yes","DeviceProtection":"No","TechSupport":"No","StreamingTV":"No","StreamingMovies":"No","Contract":"Month-to-month","PaperlessBilling":"Yes","PaymentMethod":"Electronic check","MonthlyCharges":29.85,"TotalCharges":"29.85"}]}'
LUA
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # binary extra-flags -> "req/s cpu_us_per_request"
  # shellcheck disable=SC2086
  RUST_LOG=warn taskset -c 0 "$1" --models "$MODELS" --bind 127.0.0.1:18095 --workers 1 $2 2>/dev/null &
  local srv=$!
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18095/healthz && break; sleep 0.1; done
  taskset -c 1 wrk -t1 -c32 -d2s -s "$WORK/post.lua" http://127.0.0.1:18095/v1/score >/dev/null
  local t0 out t1; t0=$(cpu_ticks $srv)
  out=$(taskset -c 1 wrk -t1 -c32 -d"${DUR}s" -s "$WORK/post.lua" http://127.0.0.1:18095/v1/score)
  t1=$(cpu_ticks $srv)
  curl -s http://127.0.0.1:18095/metrics | grep -E '^churn_shadow_(scored|dropped)_total' | tr '\n' ' ' >&2 || true
  kill $srv; wait $srv 2>/dev/null || true
  local n rps; n=$(awk '/requests in/ {print $1}' <<<"$out"); rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  awk -v r="$rps" -v n="$n" -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%s %.2f\n", r, t / hz * 1e6 / n}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ra=(); rb=(); ca=(); cb=()
for i in $(seq "$RUNS"); do
  read -r r c <<<"$(run "$A" "$A_ARGS")"; ra+=("$r"); ca+=("$c")
  read -r r c <<<"$(run "$B" "$B_ARGS")"; rb+=("$r"); cb+=("$c")
  echo "round $i: A ${ra[-1]} req/s ${ca[-1]} cpu-us/req, B ${rb[-1]} req/s ${cb[-1]} cpu-us/req"
done
ma=$(printf '%s\n' "${ra[@]}" | median); mb=$(printf '%s\n' "${rb[@]}" | median)
mca=$(printf '%s\n' "${ca[@]}" | median); mcb=$(printf '%s\n' "${cb[@]}" | median)
awk -v a="$ma" -v b="$mb" -v x="$mca" -v y="$mcb" 'BEGIN {printf "median A %.0f req/s %.2f cpu-us/req; B %.0f req/s %.2f cpu-us/req; B/A throughput %.3f, B/A cpu per request %.3f\n", a, x, b, y, b/a, y/x}'
