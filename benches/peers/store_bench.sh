#!/usr/bin/env bash
# Prediction store benchmarks (issue 11), all on this machine, loopback only, bounded in time:
# 1) HTTP scoring throughput with the store off / SQLite / PostgreSQL (wrk, one customer per
#    request, server on core 0 with 1 worker, wrk on core 1; rounds alternate, medians reported)
# 2) batch churn-score of 1M rows (200k distinct customers) without and with --store
# 3) worklist latency (GET /v1/customers, pages of 100 following cursors, filters) over the 1M
#    logged predictions: p50 / p99 of 1000 sequential requests
# ONLY_HTTP=1 runs part 1 only, SKIP_HTTP=1 parts 2 and 3.
# Needs: sqlite3, pg_dump, wrk, psql (PostgreSQL on 127.0.0.1:5432, trust auth), cargo build --release --bins.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${DUR:-8}; RUNS=${RUNS:-3}; ROWS=${ROWS:-1000000}; CUSTOMERS=${CUSTOMERS:-200000}
WORK=$(mktemp -d)
DB="churn_bench_$$"
PG="postgres://postgres@127.0.0.1:5432/$DB"
cleanup() { kill $(jobs -p) 2>/dev/null || true; psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
./target/release/churn-train --out "$WORK/models/telco" --quiet
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"customers":[{"customerID":"7590-VHVEG","gender":"Female","SeniorCitizen":0,"Partner":"Yes","Dependents":"No","tenure":1,"PhoneService":"No","MultipleLines":"No phone service","InternetService":"DSL","OnlineSecurity":"No","OnlineBackup":"Yes","DeviceProtection":"No","TechSupport":"No","StreamingTV":"No","StreamingMovies":"No","Contract":"Month-to-month","PaperlessBilling":"Yes","PaymentMethod":"Electronic check","MonthlyCharges":29.85,"TotalCharges":"29.85"}]}'
LUA
fresh_pg() { psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null; }
serve() { # store-url port
  RUST_LOG=warn taskset -c 0 ./target/release/churn-serve --models "$WORK/models" --bind "127.0.0.1:$2" --workers 1 --store "$1" 2>/dev/null &
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$2/healthz" && return 0; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
rps() { # store-url -> req/s
  rm -f "$WORK/s.db"*; fresh_pg
  serve "$1" 18096; local srv=$!
  taskset -c 1 wrk -t1 -c32 -d2s -s "$WORK/post.lua" http://127.0.0.1:18096/v1/score >/dev/null
  taskset -c 1 wrk -t1 -c32 -d"${DUR}s" -s "$WORK/post.lua" http://127.0.0.1:18096/v1/score | awk '/Requests\/sec/ {print $2}'
  kill -TERM $srv; wait $srv 2>/dev/null || true
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
if [ "${SKIP_HTTP:-0}" != 1 ]; then
echo "== 1) HTTP throughput, store off / sqlite / postgres ($RUNS rounds of ${DUR}s)"
off=(); lite=(); pg=()
for i in $(seq "$RUNS"); do
  off+=("$(rps none)"); lite+=("$(rps "sqlite://$WORK/s.db")"); pg+=("$(rps "$PG")")
  echo "  round $i: off ${off[-1]}  sqlite ${lite[-1]}  postgres ${pg[-1]} req/s"
done
mo=$(printf '%s\n' "${off[@]}" | median); ml=$(printf '%s\n' "${lite[@]}" | median); mp=$(printf '%s\n' "${pg[@]}" | median)
awk -v o="$mo" -v l="$ml" -v p="$mp" 'BEGIN {printf "  median: off %.0f, sqlite %.0f (%.2fx), postgres %.0f (%.2fx) req/s (target >= 0.8x)\n", o, l, l/o, p, p/o}'

fi
[ "${ONLY_HTTP:-0}" = 1 ] && exit 0
echo "== 2) batch: $ROWS rows over $CUSTOMERS customers"
python3 - "$ROWS" "$CUSTOMERS" "$WORK/big.csv" <<'PY'
import csv, sys
rows, customers, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open("training/data/Telco-Customer-Churn.csv") as f:
    r = csv.reader(f); header = next(r); data = list(r)
with open(out, "w", newline="") as f:
    w = csv.writer(f); w.writerow(header)
    for i in range(rows):
        row = list(data[i % len(data)]); row[0] = f"C{i % customers:07d}"; w.writerow(row)
PY
t() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>&1; awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}'; }
rm -f "$WORK/s.db"*; fresh_pg
b0=$(t ./target/release/churn-score --model "$WORK/models/telco" --input "$WORK/big.csv" --output "$WORK/o.csv" --quiet)
b1=$(t ./target/release/churn-score --model "$WORK/models/telco" --input "$WORK/big.csv" --output "$WORK/o.csv" --quiet --store "sqlite://$WORK/s.db")
b2=$(t ./target/release/churn-score --model "$WORK/models/telco" --input "$WORK/big.csv" --output "$WORK/o.csv" --quiet --store "$PG")
awk -v a="$b0" -v b="$b1" -v c="$b2" 'BEGIN {printf "  churn-score: no store %.2f s, sqlite %.2f s (+%.0f%%), postgres %.2f s (+%.0f%%) (target <= +50%%)\n", a, b, (b/a-1)*100, c, (c/a-1)*100}'
# the physical floor: each database's own bulk load of the very rows churn-score logged, into an
# empty table with the same schema and indexes (sqlite3 .import, psql \copy); customer_latest
# and the scoring itself come on top of this in the churn-score runs
sqlite3 "$WORK/s.db" ".schema predictions" > "$WORK/schema.sql"
sqlite3 -csv "$WORK/s.db" "SELECT * FROM predictions" > "$WORK/pred.csv"
{ echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"; cat "$WORK/schema.sql"; echo ".mode csv"; echo ".import $WORK/pred.csv predictions"; } > "$WORK/import.sql"
f1=$(t sh -c "sqlite3 '$WORK/floor.db' < '$WORK/import.sql'")
psql -q -h 127.0.0.1 -U postgres -d "$DB" -c "\\copy predictions TO '$WORK/pred.tsv'"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS ${DB}_floor" -c "CREATE DATABASE ${DB}_floor" >/dev/null
pg_dump -s -t predictions -h 127.0.0.1 -U postgres "$DB" | psql -q -h 127.0.0.1 -U postgres -d "${DB}_floor" >/dev/null
f2=$(t psql -q -h 127.0.0.1 -U postgres -d "${DB}_floor" -c "\\copy predictions FROM '$WORK/pred.tsv'")
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS ${DB}_floor" >/dev/null
awk -v a="$b0" -v b="$b1" -v c="$b2" -v f="$f1" -v g="$f2" 'BEGIN {printf "  floor (bulk load of the same rows): sqlite .import %.2f s, psql \\copy %.2f s; logging costs %.2fx / %.2fx of it\n", f, g, (b-a)/f, (c-a)/g}'

echo "== 3) worklist latency over the $ROWS logged predictions"
for url in "sqlite://$WORK/s.db" "$PG"; do
  echo "  ${url%%://*}:"; serve "$url" 18097; srv=$!
  python3 - <<'PY'
import http.client, json, random, time
random.seed(7)
c = http.client.HTTPConnection("127.0.0.1", 18097, timeout=30)
lat, cursor, filt = [], None, ""
for i in range(1000):
    if i % 50 == 0:
        cursor, filt = None, random.choice(["", "&risk_band=high", "&risk_band=medium", "&treatment=treatment"])
    q = "/v1/customers?limit=100" + filt + (f"&cursor={cursor}" if cursor else "")
    t = time.perf_counter(); c.request("GET", q); r = c.getresponse(); body = r.read(); lat.append(time.perf_counter() - t)
    assert r.status == 200, body
    cursor = json.loads(body)["next_cursor"]
lat.sort()
print(f"  p50 {lat[500]*1000:.2f} ms, p99 {lat[990]*1000:.2f} ms, max {lat[-1]*1000:.2f} ms (target p99 <= 20 ms)")
PY
  kill -TERM $srv; wait $srv 2>/dev/null || true
done
