#!/usr/bin/env bash
# The five specialists of the family zoo: each source game fine-tuned from the ancestor for
# 500K agent steps, two at a time. Run from a worktree at the commit in COMMIT, with
# ROOT the main checkout (where agents/family and results/family live). A run that was
# interrupted resumes from its checkpoint when this script is started again.
set -euo pipefail
ROOT=${ROOT:?set ROOT to the main checkout}
# One torch thread per run: two runs with two threads each on two cores ran at 64 agent steps/s
# each (the ancestor alone: 260).
export OMP_NUM_THREADS=1
ANCESTOR=$ROOT/agents/family/pong+breakout+spaceinvaders+assault+phoenix_ppo_s0.zip
printf '%s\n' Phoenix SpaceInvaders Assault Breakout Pong | xargs -P 2 -I{} \
  "$ROOT/.venv/bin/python" -m zoo_rl pretrain {} --init "$ANCESTOR" --steps 500000 \
  --out "$ROOT/results/family/specialists" --zoo-dir "$ROOT/agents/family"
