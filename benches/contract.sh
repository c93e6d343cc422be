#!/usr/bin/env bash
# Contract test of churn-serve against its own /openapi.json with schemathesis (issue 14):
# generated requests for every operation, positive and negative, checked for 5xx answers,
# undocumented status codes, content types and response schemas. Loopback only; stops by itself.
#   benches/contract.sh                 # EXAMPLES=100 per operation, MAX_TIME=300 s in all
# The store is on (SQLite) so the store routes answer for real. API and admin token are the same
# and sent on every request, so the reload route is exercised and schemathesis can check that a
# request without it is refused.
# Two checks are left out on purpose: `negative_data_rejection` (the server accepts more than the
# schema can say: JSON Schema counts characters where the field limit counts bytes, a category may
# be any scalar, more than maxItems customers get 413 rather than 400/422) and
# `positive_data_acceptance` (outcomes are checked beyond what a schema expresses: a real
# calendar date at most 5 minutes in the future, actions of the model's playbook).
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${EXAMPLES:-100}
MAX_TIME=${MAX_TIME:-300}
VENV=${VENV:-benches/peers/.venv-contract}
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'schemathesis>=4,<5'
fi
cargo build -q --release --bins
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
./target/release/churn-train --out "$WORK/models/telco" --quiet
PORT=18098
CHURN_API_TOKENS=contract CHURN_ADMIN_TOKEN=contract RUST_LOG=error ./target/release/churn-serve --models "$WORK/models" \
  --bind "127.0.0.1:$PORT" --workers 2 --store "sqlite://$WORK/store.db" 2>"$WORK/serve.log" &
for _ in $(seq 120); do curl -sf -o /dev/null "127.0.0.1:$PORT/readyz" && break; sleep 0.5; done
"$VENV/bin/st" --version
"$VENV/bin/st" run "http://127.0.0.1:$PORT/openapi.json" \
  --checks all --exclude-checks negative_data_rejection,positive_data_acceptance --max-examples "$EXAMPLES" --max-time "$MAX_TIME" --workers 2 --seed 14 \
  -H "Authorization: Bearer contract" --request-timeout 30
echo "server log lines at error level: $(grep -c . "$WORK/serve.log" || true)"
