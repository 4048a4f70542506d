"""The life of a run directory, shared by the RL and vision training loops: decide whether
to start, resume or skip, and never overwrite what is not the same run."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from zoo_rl.errors import ConfigError

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
    """Make ``run_dir`` a fresh run directory holding ``config.yaml``.

    What a run killed before its first checkpoint left is removed, but the directory itself is
    kept: it carries this process's lock (:func:`claim`).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    for child in run_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    config.save(run_dir / CONFIG)


class RunDirectory:
    """One run's directory through its life, for both training loops::

        run = RunDirectory(out / config.run_name(), config, Config.load, finished="eval.json", checkpoint="ckpt.pt")
        if run.finished_before():
            return run.path
        model = build(config)              # bad options fail here, before anything is written
        with run.open() as now:            # held by this process until the block ends
            if now == "finished":          # another process finished it meanwhile
                return run.path
            ...                            # "checkpoint": resume from it; "fresh": a new run

    ``load`` reads a config file of the same kind; ``finished`` and ``checkpoint`` name the
    files that mark a finished run and a resumable one.
    """

    def __init__(self, path: Path, config: RunRecord, load: Callable[[Path], RunRecord], finished: str,
                 checkpoint: str) -> None:  # fmt: skip
        self.path, self.config, self.load = Path(path), config, load
        self.finished, self.checkpoint = finished, checkpoint
        self.resumable = False

    def status(self) -> str:
        """:func:`run_status` of this run now."""
        return run_status(self.path, self.config, self.load, self.finished, self.checkpoint)

    def finished_before(self) -> bool:
        """Whether the run is finished already (said on stdout); also notes whether it will
        resume from a checkpoint (:attr:`resumable`), which decides what the model is built from."""
        before = self.status()
        if before == "finished":
            print(f"{self.path}: already finished, skipping")
        self.resumable = before == "checkpoint"
        return before == "finished"

    @contextmanager
    def open(self, need_checkpoint: bool = False) -> Iterator[str]:
        """Hold the directory (:func:`claim`) and yield what to do, from its state read again
        under the lock (what was seen before may be stale: another process may have finished or
        checkpointed it meanwhile): ``"finished"`` (leave it), ``"checkpoint"`` (resume) or
        ``"fresh"`` (the directory was made a new run's, holding only config.yaml).
        ``need_checkpoint``: the model was built to be resumed (without its sources), so a
        checkpoint gone meanwhile is an error rather than a fresh start."""
        with claim(self.path):
            now = self.status()
            if now == "finished":
                print(f"{self.path}: finished by another process meanwhile, skipping")
            elif need_checkpoint and now != "checkpoint":
                raise ConfigError(f"{self.path}: its checkpoint disappeared while the run was being rebuilt; run again")
            elif now != "checkpoint":
                start_run_dir(self.path, self.config)
                now = "fresh"
            yield now


@contextmanager
def claim(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process, or fail at once if another process holds it.

    Two processes on one run (a sweep started twice, a resume beside a running job) would
    interleave checkpoints and logs, and a restart would empty the other's directory. The lock
    is on the directory itself (made here if needed) and is released when the process ends,
    however it ends.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{run_dir}: another process is training this run right now") from None
        yield
    finally:
        os.close(fd)
