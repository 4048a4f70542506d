#!/usr/bin/env bash
# Create .venv with Python >= 3.10 and install zoo-rl into it (editable), with optional extras.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
