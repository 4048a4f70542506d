"""Finding run directories and grouping them into the seeds of one experiment: what every
report (table, figure, gate figure, cost listing) starts from."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from zoo_rl.errors import ConfigError
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.training.checkpoint import FINISHED


def find_runs(paths: list[Path], finished_only: bool = False) -> list[Path]:
    """Run directories among ``paths``, looking one and two levels below folders.

    ``finished_only`` keeps the runs that wrote their final evaluation, the one marker every
    report (table, figure, cost listing) uses, so that they all compare the same runs.
    """
    runs: list[Path] = []
    for p in map(Path, paths):
        if (p / "config.yaml").exists():
            runs.append(p)
        else:
            runs.extend(sorted(c.parent for c in p.glob("*/config.yaml")))
            runs.extend(sorted(c.parent for c in p.glob("*/*/config.yaml")))
    if finished_only:
        runs = [r for r in runs if (r / FINISHED).exists()]
    if not runs:
        what = f"finished runs (with {FINISHED})" if finished_only else "run directories (with config.yaml)"
        raise ConfigError(f"no {what} in {', '.join(map(str, paths))}")
    return runs


def run_label(config: RunConfig) -> str:
    if config.command == "pretrain":
        return config.algo
    return config.method_label().replace("finetune-", "finetune:", 1)


def seed_groups(run_dirs: list[Path]) -> dict[tuple[str, str], list[tuple[RunConfig, Path]]]:
    """``run_dirs`` by (game, method label): the seeds behind one curve or table row.

    Runs that differ in anything but the seed (budget, hyperparameters, zoo, options) are
    not seeds of one experiment: averaging them would pass their differences off as seed
    noise, so they are refused.
    """
    groups: dict[tuple[str, str], list[tuple[RunConfig, Path]]] = defaultdict(list)
    for run in run_dirs:
        config = RunConfig.load(run / "config.yaml")
        groups[(config.game, run_label(config))].append((config, run))
    for members in groups.values():
        (first, first_run), *others = members
        same = {**first.identity(), "seed": None}
        for config, run in others:
            other = {**config.identity(), "seed": None}
            if other != same:
                differ = ", ".join(k for k in same if same[k] != other[k])
                raise ConfigError(f"{run}: not another seed of {first_run} (differs in {differ}); report them apart")
    return dict(groups)
