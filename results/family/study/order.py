"""The family study's grid in a priority order, run from the study's worktree (code in COMMIT):
    cd /work/study && python /path/to/order.py
The runs the DemonAttack target is judged on (both finetunes and lite, seeds 1-4) first, then
the rest in configs/family_study.yaml's order. Each run has the argv `zoo-rl sweep` gives it,
two at a time with one torch thread each: only the order of execution differs from the sweep."""

from pathlib import Path

from zoo_rl.sweep.backends import run_local
from zoo_rl.sweep.grid import load_sweep

sweep = load_sweep(Path("configs/family_study.yaml"), None, Path("/work/main/results/family/study"))
first = []
for seed in (1, 2, 3, 4):
    for arm in ("finetune-pong", "finetune-phoenix", "lite"):
        first += [s for s in sweep.runs if s.name.startswith(f"DemonAttack_{arm}") and s.name.endswith(f"_s{seed}")]
order = first + [s for s in sweep.runs if s not in first]
print(len(order), "runs, first:", [s.name for s in first], flush=True)
run_local(order, 2, lambda o: print(o.name, o.status, o.message, flush=True))
