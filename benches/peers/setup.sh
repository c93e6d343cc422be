#!/usr/bin/env bash
# Create benches/peers/.venv with the peers' Python packages (idempotent).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c 'import numpy, pandas, sklearn, fastapi, uvicorn' 2>/dev/null \
  || .venv/bin/pip install -q -r requirements.txt
echo "peers ready: $(pwd)/.venv"
