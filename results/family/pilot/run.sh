#!/usr/bin/env bash
# The pilot of results/family/PLAN.md: lite Zoo-Tuning over the family zoo, 100K agent steps,
# seeds 100 and 101, DemonAttack and Atlantis, variants A (default start), B (start_mixed) and
# C (start_mixed, the ancestor a member too), two runs at a time. Run from a worktree at the
# commit in COMMIT (its agents/family holds the zoo), with ROOT the main checkout, where the run
# directories go (ROOT/results/family/pilot/{A,B,C}). VARIANTS="A C" leaves one out; C_START=default
# runs C with the default start (the plan's rule when no specialist is mixable with the reference,
# and B is not run). A run that was interrupted resumes from its checkpoint when this script is
# started again; a finished one is kept.
set -euo pipefail
ROOT=${ROOT:?set ROOT to the main checkout}
VARIANTS=${VARIANTS:-A B C}
C_START=${C_START:-mixed}
export OMP_NUM_THREADS=1  # one torch thread per run: two runs share the two cores
SPECIALISTS="agents/family/phoenix_ppo_s0.zip agents/family/spaceinvaders_ppo_s0.zip agents/family/assault_ppo_s0.zip agents/family/breakout_ppo_s0.zip agents/family/pong_ppo_s0.zip"
ANCESTOR=agents/family/pong+breakout+spaceinvaders+assault+phoenix_ppo_s0.zip
for seed in 100 101; do  # seed by seed, so that a pilot cut short compares every variant
  for variant in $VARIANTS; do
    case $variant in
      A) zoo=$SPECIALISTS; option="" ;;
      B) zoo=$SPECIALISTS; option="--method-option start_mixed=true" ;;
      C) zoo="$SPECIALISTS $ANCESTOR"; option="" ; if [ "$C_START" = mixed ]; then option="--method-option start_mixed=true"; fi ;;
      *) echo "unknown variant $variant (expected A, B or C)" >&2; exit 2 ;;
    esac
    for game in DemonAttack Atlantis; do
      # the option before the zoo: xargs -L joins a line that ends in a blank to the next one
      echo "$game --method lite --steps 100000 --seed $seed --out $ROOT/results/family/pilot/$variant $option --zoo $zoo"
    done
  done
done | xargs -P 2 -L 1 "$ROOT/.venv/bin/python" -m zoo_rl transfer
