#!/usr/bin/env bash
# Create benches/peers/.venv with the peers' Python packages (idempotent: a venv that already
# imports them is left alone; delete .venv to start over).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || {
    echo "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
if .venv/bin/python -c 'import numpy, pandas, sklearn, fastapi, uvicorn, pyarrow, lightgbm, sklift, causalml' 2>/dev/null; then
  echo "peers ready (already installed): $(pwd)/.venv"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "peers ready: $(pwd)/.venv"
fi
