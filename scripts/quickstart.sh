#!/usr/bin/env bash
# Set up (a local .venv) and run the quickstart: transfer from the shipped zoo to a new game.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh
.venv/bin/zoo-rl quickstart "$@"
