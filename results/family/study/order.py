"""The family study's grid and the exploration of PLAN.md's addendum, in a priority order, run
from the study's worktree (code in COMMIT), two runs at a time with one torch thread each:
    cd /work/study && python /work/main/results/family/study/order.py [PID ...]
First the runs the DemonAttack target is judged on (both finetunes and lite, seeds 1-4), then the
exploration (results/family/explore/explore.yaml), then the runs the remaining verdicts need, then
the rest of configs/family_study.yaml in its order. Each run has the argv `zoo-rl sweep` gives it:
only the order of execution differs.
PIDs: runs already training (e.g. left by an earlier copy of this script); each holds a slot until
it exits, and runs already started or finished are skipped (run directories are locked)."""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from zoo_rl.errors import ConfigError
from zoo_rl.run_dir import claim
from zoo_rl.sweep.backends import execute
from zoo_rl.sweep.grid import load_sweep

MAIN = Path("/work/main")
study = load_sweep(Path("configs/family_study.yaml"), None, MAIN / "results/family/study")
explore = load_sweep(MAIN / "results/family/explore/explore.yaml", None, MAIN / "results/family/explore")
# This commit's sweep wrote a null option as Python's "None" (fixed after it): pass YAML's spelling.
yaml_spelling = {"reference_prior=None": "reference_prior=null", "scratch_member=False": "scratch_member=false"}
explore_runs = [replace(s, argv=tuple(yaml_spelling.get(a, a) for a in s.argv)) for s in explore.runs]

first = []
for seed in (1, 2, 3, 4):
    for arm in ("finetune-pong", "finetune-phoenix", "lite"):
        first += [s for s in study.runs if s.name.startswith(f"DemonAttack_{arm}") and s.name.endswith(f"_s{seed}")]


# Then the runs still missing from a target's verdict: zoo seed 0, Atlantis lite (its target),
# scratch's two DemonAttack seeds, the full zoo on DemonAttack (the first target's other arm: a pair
# of its runs takes about 50 minutes, two pairs fit a session), the Atlantis finetunes (short runs)
# and the full zoo on Atlantis; the rest after.
def pick(game: str, arm: str) -> list:
    return [s for s in study.runs if s.name.startswith((f"{game}_{arm}_", f"{game}_{arm}-"))]


verdicts = pick("DemonAttack", "zoo")[:1] + pick("Atlantis", "zoo")[:1] + pick("Atlantis", "lite")
verdicts += pick("DemonAttack", "scratch") + pick("DemonAttack", "zoo")
verdicts += pick("Atlantis", "finetune") + pick("Atlantis", "zoo")
head = first + explore_runs + list(dict.fromkeys(verdicts))
order = head + [s for s in study.runs if s not in head]


def wait_for(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(30)


def held(run_dir: Path) -> bool:
    """Whether another process trains this run now (it holds zoo_rl.run_dir.claim's lock)."""
    if not run_dir.is_dir():
        return False
    try:
        with claim(run_dir):
            return False
    except ConfigError:
        return True


def run(spec) -> None:
    if held(spec.run_dir):
        print(spec.name, "skipped: another process trains it", flush=True)
        return
    outcome = execute(spec, threads=1)
    print(outcome.name, outcome.status, outcome.message, flush=True)


busy = [int(p) for p in sys.argv[1:]]
print(len(order), "runs; first:", [s.name for s in order[:8]], "; waiting for", busy, flush=True)
with ThreadPoolExecutor(max_workers=2) as pool:
    for pid in busy:
        pool.submit(wait_for, pid)
    for spec in order:
        pool.submit(run, spec)
