#!/usr/bin/env bash
# `zoo-rl inspect` of the three zoos of results/family/PLAN.md on both study targets (seed 0,
# 1,000 steps of random play in 8 games): the independent zoo (agents/), the five family
# specialists, and the specialists with their ancestor. Two at a time, one torch thread each;
# each report as JSON and as the terminal's text, in results/inspect/<zoo>/; a report already
# there is kept. The commit it ran at goes into results/inspect/COMMIT.
set -euo pipefail
cd "$(dirname "$0")/../.."
git rev-parse HEAD > results/inspect/COMMIT
export OMP_NUM_THREADS=1
F=agents/family
SPECIALISTS="$F/phoenix_ppo_s0.zip $F/spaceinvaders_ppo_s0.zip $F/assault_ppo_s0.zip $F/breakout_ppo_s0.zip $F/pong_ppo_s0.zip"
for game in DemonAttack Atlantis; do
  echo "independent $game agents"
  echo "specialists $game $SPECIALISTS"
  echo "family $game $SPECIALISTS $F/pong+breakout+spaceinvaders+assault+phoenix_ppo_s0.zip"
done | xargs -P 2 -L 1 sh -c '[ -s results/inspect/$0/$1.json ] && exit 0; mkdir -p results/inspect/$0 && .venv/bin/python -m zoo_rl inspect "$1" \
  --zoo $(echo "$@" | cut -d" " -f2-) -o results/inspect/$0/$1.json > results/inspect/$0/$1.txt'
