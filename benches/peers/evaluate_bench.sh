#!/usr/bin/env bash
# Evaluation over 1M logged predictions with outcomes (issue 12: target <= 10 s), on SQLite and
# PostgreSQL: `churn-train simulate` writes a campaign of CUSTOMERS customers (one prediction
# each, ~3.2 outcome events each: actions taken, churn, purchases, surveys), then
# `churn-train evaluate` runs RUNS times per backend; median wall time and peak RSS are printed.
# Needs: psql (PostgreSQL on 127.0.0.1:5432, trust auth), GNU time, cargo build --release --bins.
set -euo pipefail
cd "$(dirname "$0")/../.."
CUSTOMERS=${CUSTOMERS:-1000000}; RUNS=${RUNS:-3}
WORK=$(mktemp -d)
DB="churn_bench_eval_$$"
PG="postgres://postgres@127.0.0.1:5432/$DB"
cleanup() { psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
./target/release/churn-train --out "$WORK/models/telco" --quiet
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for store in "sqlite://$WORK/store.db" "$PG"; do
  name=${store%%:*}
  /usr/bin/time -f "%e" -o "$WORK/sim.t" ./target/release/churn-train simulate --model "$WORK/models/telco" \
    --store "$store" --input training/data/Telco-Customer-Churn.csv --customers "$CUSTOMERS" \
    --effect CONTRACT_UPGRADE=0.3 2>&1 | head -1
  echo "  $name: simulate + store $(cat "$WORK/sim.t") s"
  times=(); rss=()
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$WORK/ev.t" ./target/release/churn-train evaluate --store "$store" \
      --models "$WORK/models" --as-of 2026-06-01 --no-learned-rates > /dev/null
    read -r t m < "$WORK/ev.t"; times+=("$t"); rss+=("$m")
    echo "  $name: evaluate run $i: $t s, peak RSS $((m / 1024)) MiB"
  done
  mt=$(printf '%s\n' "${times[@]}" | median); mr=$(printf '%s\n' "${rss[@]}" | median)
  echo "== $name: evaluate $CUSTOMERS predictions: median $mt s (target <= 10 s), peak RSS $((mr / 1024)) MiB"
done
