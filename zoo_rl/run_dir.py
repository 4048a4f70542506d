"""The life of a run directory, shared by the RL and vision training loops: decide whether
to start, resume or skip, and never overwrite what is not the same run."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from zoo_rl.rl.config import ConfigError

CONFIG = "config.yaml"


class RunRecord(Protocol):
    def identity(self) -> dict[str, Any]: ...

    def save(self, path: Path) -> None: ...


def run_status(run_dir: Path, config: RunRecord, load, finished: str, checkpoint: str) -> str:
    """``"new"``, ``"finished"``, ``"checkpoint"`` (resume) or ``"restart"`` (died before a checkpoint).

    ``load`` reads a config file of the same kind; ``finished`` and ``checkpoint`` name the
    files that mark a finished run and a resumable one. Raises :class:`ConfigError` when
    ``run_dir`` holds a different run or is not a run directory, so that nothing of someone
    else's is overwritten.
    """
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "new"
    if not (run_dir / CONFIG).exists():
        raise ConfigError(f"{run_dir}: exists and is not a zoo-rl run directory (no config.yaml); choose another --out")
    if load(run_dir / CONFIG).identity() != config.identity():
        raise ConfigError(f"{run_dir}: already holds a different run (see its config.yaml); choose another --out")
    if (run_dir / finished).exists():
        return "finished"
    return "checkpoint" if (run_dir / checkpoint).exists() else "restart"


def start_run_dir(run_dir: Path, config: RunRecord) -> None:
    """A fresh run directory holding ``config.yaml``."""
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the same run, killed before its first checkpoint: nothing to keep
    run_dir.mkdir(parents=True)
    config.save(run_dir / CONFIG)


@contextmanager
def claim(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process, or fail at once if another process holds it.

    Two processes on one run (a sweep started twice, a resume beside a running job) would
    interleave checkpoints and logs, and a restart would delete the other's directory. The lock
    is a hidden file beside the run directory, released when the process ends however it ends.
    """
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(run_dir.parent / f".{run_dir.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{run_dir}: another process is training this run right now") from None
        yield
