#!/usr/bin/env bash
# What a shadow challenger costs the champion's answers at the peak (issue 34: ≤ 10%
# throughput): the same churn-serve binary and store, `--challenger off` (A) against
# `--challenger shadow` (B), alternated under wrk at saturation (see ab_serve.sh: server on core 0
# with one worker, wrk on core 1; the shadow thread shares core 0 at nice 19). Prints each run,
# the medians, B/A throughput, and the shadow counters: at the peak the shadow queue fills and
# customers are dropped and counted rather than slowing the answers.
# Usage: benches/peers/shadow_bench.sh [CHURN_SERVE] [CHURN_TRAIN]
set -euo pipefail
SERVE=${1:-target/release/churn-serve}; TRAIN=${2:-target/release/churn-train}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
M="$WORK/models"
common=(--data training/data/Telco-Customer-Churn.csv --label Churn --id customerID --model tree --out "$M/telco" --quiet)
"$TRAIN" "${common[@]}" --max-depth 4 --min-samples-leaf 20
"$TRAIN" "${common[@]}" --max-depth 6 --min-samples-leaf 20
champion=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["aliases"]["champion"])' "$M/telco/registry.json")
other=$(ls "$M/telco/versions" | grep -v "^$champion$" | head -1)
"$TRAIN" models --models "$M" alias telco challenger "$other" --reason "shadow benchmark"
STORE="sqlite://$WORK/store.db"
A_ARGS="--store $STORE --challenger off" B_ARGS="--store $STORE --challenger shadow" \
  "$(dirname "$0")/ab_serve.sh" "$SERVE" "$SERVE" "$M"
