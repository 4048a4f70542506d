"""Learning curves from run directories: one panel per game, one line per method,
mean over seeds with a 95% bootstrap confidence band (the estimator of the study table,
:mod:`zoo_rl.stats`); the plotted data goes to CSV."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from zoo_rl.errors import ConfigError
from zoo_rl.io_utils import atomic_write, atomic_write_csv
from zoo_rl.rl.checkpoint import FINISHED
from zoo_rl.rl.config import RunConfig
from zoo_rl.stats import mean_interval


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


def binned_curve(run_dir: Path, edges: np.ndarray) -> np.ndarray:
    """Mean score of the games that ended in each frame bin, carried forward over empty
    bins; NaN before the first finished game and, while the run is still training, after its
    last one (a live run's curve must not run ahead of it)."""
    frames, scores = [], []
    path = run_dir / "scores.csv"
    if path.exists():
        with open(path) as f:
            for row in csv.DictReader(f):
                frames.append(float(row["frames"]))
                scores.append(float(row["score"]))
    live = not (run_dir / FINISHED).exists()
    return binned(np.asarray(frames), np.asarray(scores), edges, stop_at_last=live)


def binned(x: np.ndarray, values: np.ndarray, edges: np.ndarray, stop_at_last: bool) -> np.ndarray:
    """Mean of ``values`` whose ``x`` falls in each bin of ``edges``, carried forward over
    empty bins; NaN before the first value and, with ``stop_at_last``, after the last."""
    curve = np.full(len(edges) - 1, np.nan)
    last = np.nan
    for b in range(len(edges) - 1):
        if stop_at_last and (len(x) == 0 or edges[b] >= x.max()):
            break
        in_bin = (x > edges[b]) & (x <= edges[b + 1])
        if in_bin.any():
            last = values[in_bin].mean()
        curve[b] = last
    return curve


def curve_table(run_dirs: list[Path], bins: int = 20) -> list[dict]:
    """Rows (game, method, frames, mean, low, high, seeds) of every curve point."""
    groups = seed_groups(run_dirs)
    rows = []
    for (game, label), members in sorted(groups.items()):
        max_frames = max(c.steps * c.settings.frame_skip for c, _ in members)
        edges = np.linspace(0, max_frames, bins + 1)
        curves = np.stack([binned_curve(run, edges) for _, run in members])
        mean, low, high = mean_interval(curves)
        for b in range(bins):
            seeds = int((~np.isnan(curves[:, b])).sum())
            rows.append(dict(game=game, method=label, frames=int(edges[b + 1]), mean=float(mean[b]),
                             low=float(low[b]), high=float(high[b]), seeds=seeds))  # fmt: skip
    return rows


def plot_runs(
    paths: list[Path], output: Path, bins: int = 20, title: str | None = None, finished_only: bool = False
) -> Path:
    """Write the learning-curve PNG (and ``output`` with .csv) for the runs under ``paths``.

    ``finished_only`` leaves out runs still training, so that a study's figure compares only
    what its table (``zoo-rl summary``, finished runs only) compares.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = find_runs(paths, finished_only)
    rows = curve_table(runs, bins)
    games = sorted({r["game"] for r in rows})
    fig, axes = plt.subplots(1, len(games), figsize=(5.5 * len(games), 4), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    legends = []
    for ax, game in zip(axes[0], games, strict=True):
        methods = sorted({r["method"] for r in rows if r["game"] == game})
        sources = [m for m in methods if m.startswith("finetune:")]
        for i, method in enumerate([m for m in methods if m not in sources] + sources):
            pts = [r for r in rows if r["game"] == game and r["method"] == method]
            x = np.array([r["frames"] for r in pts]) / 1e6
            seeds = max(r["seeds"] for r in pts)
            # A study draws a dozen methods per game: the single sources, dashed, follow the others.
            style = "--" if method in sources else "-"
            (line,) = ax.plot(x, [r["mean"] for r in pts], style, color=colors[i % len(colors)],
                              label=f"{method} (n={seeds})")  # fmt: skip
            ax.fill_between(x, [r["low"] for r in pts], [r["high"] for r in pts], alpha=0.2, color=line.get_color())
        ax.set_title(title or game)
        ax.set_xlabel("environment frames (millions)")
        ax.set_ylabel("game score (full games, raw)")
        ax.grid(alpha=0.3)
        # Below the panel: a study's dozen noisy lines leave no free corner inside it. Kept out of
        # tight_layout, which would shrink the panel under a long legend; savefig makes room.
        legends.append(ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2))
        legends[-1].set_in_layout(False)
    fig.tight_layout()
    output = Path(output)
    atomic_write(
        output, lambda tmp: fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight", bbox_extra_artists=legends)
    )
    plt.close(fig)

    atomic_write_csv(output.with_suffix(".csv"), rows)
    return output
