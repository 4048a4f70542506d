#!/usr/bin/env bash
# Set up (a local .venv, with the dev, vision, ray, video, hub and rl-zoo extras) and run the linters and the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh dev,vision,ray,video,hub,rl-zoo
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"
