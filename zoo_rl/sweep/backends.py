"""Where the runs of a sweep execute: local subprocesses, or Ray tasks on a cluster.

Both run each grid point as the command line ``python -m zoo_rl.cli transfer ...`` and
append its output to ``OUT/logs/<run>.log``. The Ray backend assumes that OUT, the zoo
files and this Python environment exist at the same paths on every node (a shared
filesystem such as NFS): each task writes its run directory there, and the driver reads
the results from there. A task that cannot see OUT fails with a message saying so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from zoo_rl.errors import ConfigError
from zoo_rl.rl.training.checkpoint import FINISHED

from .grid import RunSpec


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "done", "skipped" (finished before) or "failed"
    log: str
    message: str = ""


def execute(spec: RunSpec, threads: int | None = None) -> Outcome:
    """Run one grid point to its end (or skip it if finished); never raises for a failed run."""
    log = spec.run_dir.parent / "logs" / f"{spec.name}.log"
    if (spec.run_dir / FINISHED).exists():
        return Outcome(spec.name, "skipped", str(log))
    if not spec.run_dir.parent.is_dir():
        where = f"{spec.run_dir.parent} is not visible on {socket.gethostname()}"
        return Outcome(spec.name, "failed", str(log), f"{where}: the output directory must be on a shared filesystem")
    log.parent.mkdir(exist_ok=True)
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    with open(log, "a") as f:
        f.write(f"$ zoo-rl {' '.join(spec.argv)}\n")
        f.flush()
        command = [sys.executable, "-m", "zoo_rl.cli", *spec.argv]
        rc = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env=env)
    if rc.returncode != 0:
        lines = log.read_text().strip().splitlines()
        return Outcome(spec.name, "failed", str(log), lines[-1] if lines else f"exit status {rc.returncode}")
    return Outcome(spec.name, "done", str(log))


def run_local(specs: list[RunSpec], jobs: int, on_done) -> list[Outcome]:
    """Up to ``jobs`` runs at once as subprocesses, the CPU threads shared between them."""
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(execute, spec, threads) for spec in specs]
        outcomes = []
        for future in futures:
            outcomes.append(future.result())
            on_done(outcomes[-1])
    return outcomes


def run_ray(specs: list[RunSpec], cpus: float, gpus: float, address: str | None, jobs: int | None, on_done):
    """Each run as one Ray task declaring ``cpus``/``gpus``; on the cluster at ``address``, or on
    a local Ray instance started here (sized for ``jobs`` runs at once when given)."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError("the ray backend needs Ray: pip install 'zoo-rl[ray]'") from err
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=int(jobs * cpus) if jobs else None, num_gpus=gpus * (jobs or 1) if gpus else 0,
                     log_to_driver=False, include_dashboard=False)  # fmt: skip
    try:
        threads = max(1, int(cpus))
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(execute)
        pending = {task.remote(spec, threads): spec for spec in specs}
        outcomes = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayError as err:  # the worker died (node lost, out of memory)
                log = spec.run_dir.parent / "logs" / f"{spec.name}.log"
                outcome = Outcome(spec.name, "failed", str(log), f"Ray task failed: {str(err).splitlines()[0]}")
            outcomes.append(outcome)
            on_done(outcome)
        return outcomes
    finally:
        if started:
            ray.shutdown()
