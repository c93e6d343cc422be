#!/usr/bin/env bash
# Soak test (issue 14): churn-serve at 80% of its measured peak for DURATION seconds (default 600)
# with a mix of valid, invalid (422) and oversize (5 MiB, 413) requests and an admin reload every
# 10 s, loopback only; stops by itself. Passes when no valid request failed and RSS is flat: the
# mean of the last minute within 10% of the mean of the second minute.
#   DURATION=600 benches/soak.sh        # SOAK_STORE=sqlite to log every prediction as well
# The server runs on core 0 with one worker; wrk (peak) and the soak driver run on core 1.
# Needs: wrk (apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 2; }
cargo build -q --release --bins --example soak
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
./target/release/churn-train --out "$WORK/models/telco" --quiet
STORE=none
[ "${SOAK_STORE:-}" = sqlite ] && STORE="sqlite://$WORK/store.db"

VALID="$WORK/valid.json"
cat > "$VALID" <<'JSON'
{"customers":[{"customerID":"7590-VHVEG","gender":"Female","SeniorCitizen":0,"Partner":"Yes","Dependents":"No","tenure":1,"PhoneService":"No","MultipleLines":"No phone service","InternetService":"DSL","OnlineSecurity":"No","OnlineBackup":"Yes","DeviceProtection":"No","TechSupport":"No","StreamingTV":"No","StreamingMovies":"No","Contract":"Month-to-month","PaperlessBilling":"Yes","PaymentMethod":"Electronic check","MonthlyCharges":29.85,"TotalCharges":"29.85"}]}
JSON
sed 's/"tenure":1/"tenure":"many"/' "$VALID" > "$WORK/invalid.json"
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$VALID", "r"); wrk.body = f:read("*a"); f:close()
LUA

PORT=18097
CHURN_ADMIN_TOKEN=soak RUST_LOG=warn taskset -c 0 ./target/release/churn-serve \
  --models "$WORK/models" --bind "127.0.0.1:$PORT" --workers 1 --store "$STORE" 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 120); do
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' --data @"$VALID" "127.0.0.1:$PORT/v1/score" && break
  sleep 0.5
done
echo "== peak (wrk, 10 s, 32 connections, valid requests only)"
PEAK=$(taskset -c 1 wrk -t1 -c32 -d10s -s "$WORK/post.lua" "http://127.0.0.1:$PORT/v1/score" | awk '/Requests\/sec/ {print $2}')
RATE=$(awk -v p="$PEAK" 'BEGIN {printf "%d", p * 0.8}')
echo "peak $PEAK req/s; soak at $RATE req/s for $DURATION s (store: $STORE)"
sleep 2
taskset -c 1 ./target/release/examples/soak "127.0.0.1:$PORT" "$SERVER" "$VALID" "$WORK/invalid.json" \
  "$RATE" "$DURATION" 32 soak > "$WORK/soak.json"
kill -0 "$SERVER" || { echo "FAIL: the server died"; tail -20 "$WORK/serve.log"; exit 1; }
python3 - "$WORK/soak.json" "$PEAK" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rss = r.pop("rss_kb")
reloads = r.pop("reloads")
print(json.dumps(r, indent=1))
second = rss[60:120] or rss
last = rss[-60:]
m2, ml = sum(second) / len(second), sum(last) / len(last)
print(f"peak {float(sys.argv[2]):.0f} req/s; achieved {r['achieved']:.0f} req/s")
print(f"reloads: {len(reloads)}, statuses {sorted(set(reloads))}")
print(f"RSS second minute {m2 / 1024:.1f} MB, last minute {ml / 1024:.1f} MB "
      f"(ratio {ml / m2:.3f}); min {min(rss) / 1024:.1f} MB, max {max(rss) / 1024:.1f} MB")
print("RSS every 10 s (MB):", " ".join(f"{x / 1024:.0f}" for x in rss[::10]))
problems = []
if r["valid"]["unexpected"]:
    problems.append(f"valid requests failed: {r['valid']['unexpected']}")
for k in ("invalid", "oversize"):
    if r[k]["unexpected"]:
        problems.append(f"{k} requests got unexpected statuses: {r[k]['unexpected']}")
if any(s != 200 for s in reloads):
    problems.append(f"reloads failed: {reloads}")
if abs(ml / m2 - 1) > 0.10:
    problems.append(f"RSS not flat: last minute / second minute = {ml / m2:.3f}")
print("PASS" if not problems else "FAIL: " + "; ".join(problems))
sys.exit(1 if problems else 0)
PY
