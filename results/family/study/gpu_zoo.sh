#!/usr/bin/env bash
# Family-study runs of one method (full Zoo-Tuning by default; METHOD=ensemble for the ensemble) on
# one lent GPU machine (16 cores, one H200), in one call: the study's code and grid
# (results/family/study/COMMIT, unpacked into .study/), each run's argv taken from that grid (what
# `zoo-rl sweep configs/family_study.yaml` runs), paths as in the study's worktree, one torch
# thread per run. The first game's runs come first; the second game's are stopped at CHECK seconds
# if the first game's would otherwise not finish by DEADLINE. Only finished runs come back
# (checkpoints stay: they are too large to return). For example:
#   FIRST_GAME=Atlantis FIRST_SEEDS="1 2 3" SECOND_SEEDS="" bash results/family/study/gpu_zoo.sh
#   METHOD=ensemble FIRST_SEEDS="0 1 2" SECOND_SEEDS="" bash results/family/study/gpu_zoo.sh
#
# Prepared here, in the checkout's root (both folders ignored through .git/info/exclude, carried):
#   mkdir .study && git archive $(cat results/family/study/COMMIT) zoo_rl configs | tar -x -C .study
#   git show f7737a4 -- zoo_rl/rl/zoo | (cd .study && patch -p1)   # the study's code could not start a zoo on CUDA
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 -d .whl \
#       gymnasium==1.4.0 ale-py==0.12.1 stable-baselines3==2.9.2 farama-notifications==0.0.6
# and the checkout's tracked files kept under the transfer limit (results/ and the independent zoo moved aside).
# Measured 2026-12-04 (one H200, 16 cores): four DemonAttack runs at once trained at 294-446 env steps/s
# each (their logs) and had logged 153,600 steps each when stopped at 460 s: none finished, and a
# 10-minute call will not finish four (three at once is untried).
set -u
CHECK=${CHECK:-170}
DEADLINE=${DEADLINE:-525}
METHOD=${METHOD:-zoo}                       # or ensemble: the same argv with --method ensemble
FIRST_GAME=${FIRST_GAME:-DemonAttack}; FIRST_SEEDS=${FIRST_SEEDS-1 2 3 4}
SECOND_GAME=${SECOND_GAME:-Atlantis}; SECOND_SEEDS=${SECOND_SEEDS-1 2 3 4}   # empty: the first game's runs alone
start=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
# zoo_rl reads its version from the installed package's metadata: give the unpacked code some.
mkdir -p /tmp/site/zoo_rl-0.1.0.dist-info && printf 'Metadata-Version: 2.1\nName: zoo-rl\nVersion: 0.1.0\n' > /tmp/site/zoo_rl-0.1.0.dist-info/METADATA
export PYTHONPATH=$PWD/.study:/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# The study worktree: its code (.study/zoo_rl, found first by `python -m` from there), grid and zoo.
mkdir -p /work/study
for d in zoo_rl configs; do ln -sfn "$PWD/.study/$d" "/work/study/$d"; done
ln -sfn "$PWD/agents" /work/study/agents
OUTDIR=/work/main/results/family/study
mkdir -p "$OUTDIR/logs" "$OUT"
nvidia-smi -L; python3 -c "import torch, stable_baselines3, ale_py; print(torch.__version__, stable_baselines3.__version__, ale_py.__version__)"
declare -A pids
names=$(for s in $FIRST_SEEDS; do echo "${FIRST_GAME}_${METHOD}_ppo_s$s"; done
        for s in $SECOND_SEEDS; do echo "${SECOND_GAME}_${METHOD}_ppo_s$s"; done)
# Each run's argv as the study's grid gives it, the grid read once: one line per run, its name and
# its arguments tab-separated (the first game's runs first).
while IFS=$'\t' read -r -a line; do
  name=${line[0]}; argv=("${line[@]:1}")
  [ "${#argv[@]}" -gt 0 ] || { echo "$name: not in the study's grid"; continue; }
  echo "\$ zoo-rl ${argv[*]}" >> "$OUTDIR/logs/$name.log"
  (cd /work/study && exec python3 -m zoo_rl.cli "${argv[@]}") >> "$OUTDIR/logs/$name.log" 2>&1 &
  pids[$name]=$!
done < <(cd /work/study && python3 -c 'import sys; from pathlib import Path
from zoo_rl.sweep.grid import load_sweep
runs = {s.name: s.argv for s in load_sweep(Path("configs/family_study.yaml"), None, Path(sys.argv[1])).runs}
for name in sys.argv[2:]:
    print(name, *runs.get(name, ()), sep="\t")' "$OUTDIR" $names)
while [ $(( $(date +%s) - start )) -lt "$CHECK" ] && [ -n "$(jobs -rp)" ]; do sleep 5; done
# The first game's slowest run: its last logged step and the time it has had.
slowest=$(for s in $FIRST_SEEDS; do grep -o "step [0-9]*/200000" "$OUTDIR/logs/${FIRST_GAME}_${METHOD}_ppo_s$s.log" | tail -n 1 | tr -dc '0-9/' | cut -d/ -f1; done | sort -n | head -n 1)
now=$(( $(date +%s) - start ))
echo "at ${now}s the slowest $FIRST_GAME run logged step ${slowest:-0}"
if [ "${slowest:-0}" -eq 0 ] || [ $(( now + (200000 - slowest) * now / slowest * 11 / 10 )) -gt "$DEADLINE" ]; then
  echo "stopping the $SECOND_GAME runs so that the $FIRST_GAME runs can finish"
  for s in $SECOND_SEEDS; do kill "${pids[${SECOND_GAME}_${METHOD}_ppo_s$s]}" 2>/dev/null; done
fi
while [ $(( $(date +%s) - start )) -lt "$DEADLINE" ] && [ -n "$(jobs -rp)" ]; do sleep 5; done
echo "done or out of time at $(( $(date +%s) - start ))s"
kill $(jobs -rp) 2>/dev/null
cd "$OUTDIR"
finished=$(for d in *_"${METHOD}"_ppo_s[0-4]; do [ -f "$d/eval.json" ] && echo "$d"; done)
echo "finished: $finished"
tar -czf "$OUT/runs.tar.gz" --exclude=checkpoint.pt --exclude=model.zip $finished logs
tail -n 4 logs/*_"${METHOD}"_ppo_s[0-4].log
