"""Sweeps: a grid of transfer runs (targets x methods x seeds) run locally or on Ray,
resumable (finished runs are skipped), ending with a summary table and the learning curves."""

from __future__ import annotations

import os
from pathlib import Path

from zoo_rl.errors import ConfigError
from zoo_rl.rl.training.checkpoint import CHECKPOINT, FINISHED

from .backends import Outcome, execute, run_local, run_ray
from .grid import RunSpec, Sweep, load_sweep


def run_states(sweep: Sweep) -> list[tuple[RunSpec, str]]:
    """Where each run of ``sweep`` stands before it is started: ``finished`` (it will be skipped),
    ``resumes`` (a checkpoint is there) or ``new``; what ``zoo-rl sweep --dry-run`` prints."""

    def state(spec: RunSpec) -> str:
        if (spec.run_dir / FINISHED).exists():
            return "finished"
        return "resumes" if (spec.run_dir / CHECKPOINT).exists() else "new"

    return [(spec, state(spec)) for spec in sweep.runs]


def run_sweep(
    config: Path,
    backend: str = "local",
    jobs: int | None = 1,
    address: str | None = None,
    device: str | None = None,
    out: Path | None = None,
    log=print,
) -> list[Outcome]:
    """Run every grid point of the sweep ``config``; return one outcome per run.

    ``jobs``: runs at once (local) or the size of a local Ray instance; ``None`` locally means
    one run per core, up to the number of runs. A failed run is reported with its log and does
    not stop the others. At the end the sweep writes ``OUT/summary.md`` (+ .csv) and
    ``OUT/curves.png`` (+ .csv) from every finished run of the grid.
    """
    from zoo_rl.rl.report.curve_figure import plot_runs
    from zoo_rl.rl.report.summary import write_summary

    if backend not in ("local", "ray"):
        raise ConfigError(f"unknown sweep backend {backend!r}; expected local or ray")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    sweep = load_sweep(config, device, out)
    if jobs is None and backend == "local":
        jobs = max(1, min(len(sweep.runs), os.cpu_count() or 1))
    sweep.out.mkdir(parents=True, exist_ok=True)
    at_once = f", {jobs} at a time" if backend == "local" else ""
    log(f"{len(sweep.runs)} runs in {sweep.out} ({backend} backend{at_once})")
    total = len(sweep.runs)

    def on_done(outcome: Outcome) -> None:
        on_done.count += 1
        detail = f": {outcome.message} (log: {outcome.log})" if outcome.status == "failed" else ""
        log(f"[{on_done.count}/{total}] {outcome.name} {outcome.status}{detail}")

    on_done.count = 0
    runs = list(sweep.runs)
    if backend == "local":
        outcomes = run_local(runs, jobs, on_done)
    else:
        outcomes = run_ray(runs, sweep.cpus, sweep.gpus, address, jobs, on_done)
    finished = [spec.run_dir for spec in runs if (spec.run_dir / FINISHED).exists()]
    if finished:
        log(f"summary: {write_summary(finished, sweep.out / 'summary.md')}")
        log(f"learning curves: {plot_runs(finished, sweep.out / 'curves.png')}")
    failed = [o for o in outcomes if o.status == "failed"]
    log(f"{total - len(failed)} of {total} runs finished" + (f"; {len(failed)} failed" if failed else ""))
    return outcomes


__all__ = ["Outcome", "RunSpec", "Sweep", "execute", "load_sweep", "run_states", "run_sweep"]
