#!/usr/bin/env bash
# Pretrain the shipped zoo's source agents, one after another, into agents/.
# Usage: scripts/pretrain_zoo.sh STEPS "GAME:ALGO GAME:ALGO ..." [JOBS]
# Finished agents are skipped, so the script can be re-run after an interruption.
# JOBS > 1 trains that many agents at once (for a many-core machine); the manifest is
# updated under a file lock with an atomic rename, so parallel jobs are safe.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:?steps}
agents=${2:-"Breakout:ppo SpaceInvaders:ppo Assault:ppo"}
jobs=${3:-1}
zoo_rl=${ZOO_RL:-.venv/bin/zoo-rl}
mkdir -p runs/zoo
for spec in $agents; do
  game=${spec%%:*}; algo=${spec##*:}
  echo "$zoo_rl pretrain $game --algo $algo --steps $steps --seed 0 --out runs/zoo --zoo-dir agents > runs/zoo/${game}_${algo}.log 2>&1"
done | xargs -P "$jobs" -I{} bash -c "{}"
