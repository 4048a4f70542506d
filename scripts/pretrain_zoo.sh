#!/usr/bin/env bash
# Pretrain the shipped zoo's source agents into agents/ (zoo-rl pretrain ... --zoo-dir agents).
# Usage: [DEVICE=cuda] scripts/pretrain_zoo.sh STEPS ["GAME:ALGO GAME:ALGO ..."] [JOBS]
# Finished agents are skipped and unfinished ones continue from their checkpoints with the
# config.yaml they started with (zoo-rl resume), so the script can be re-run after an
# interruption, or runs/zoo carried to another machine and continued there. JOBS > 1 trains
# that many agents at once (a many-core or GPU machine), sharing the CPU threads; the
# manifest is updated under a file lock with an atomic rename.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:?steps}
agents=${2:-"SpaceInvaders:ppo Pong:a2c Phoenix:a2c Breakout:a2c Assault:a2c"}
jobs=${3:-1}
device=${DEVICE:-cpu}
zoo_rl=${ZOO_RL:-.venv/bin/zoo-rl}
threads=$(( $(nproc) / jobs )); [ "$threads" -ge 1 ] || threads=1
mkdir -p runs/zoo
for spec in $agents; do
  game=${spec%%:*}; algo=${spec##*:}; run=runs/zoo/${game}_${algo}_s0
  if [ -f "$run/config.yaml" ]; then
    job="$zoo_rl resume $run --device $device --zoo-dir agents"
  else
    job="$zoo_rl pretrain $game --algo $algo --steps $steps --seed 0 --device $device --out runs/zoo --zoo-dir agents"
  fi
  echo "OMP_NUM_THREADS=$threads $job >> runs/zoo/${game}_${algo}.log 2>&1"
done | xargs -P "$jobs" -I{} bash -c "{}"
