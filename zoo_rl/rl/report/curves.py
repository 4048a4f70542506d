"""Learning curves as numbers: each run's game scores binned over environment frames, and
the mean over seeds with a 95% bootstrap interval (the estimator of the study table,
:mod:`zoo_rl.stats`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from zoo_rl.rl.report.runs import seed_groups
from zoo_rl.rl.training.checkpoint import FINISHED
from zoo_rl.stats import mean_interval


def binned_curve(run_dir: Path, edges: np.ndarray, game: str | None = None) -> np.ndarray:
    """Mean score of the games that ended in each frame bin, carried forward over empty
    bins; NaN before the first finished game and, while the run is still training, after its
    last one (a live run's curve must not run ahead of it).  ``game``: only that game's rows
    (a multi-game run's log holds all its games)."""
    frames, scores = [], []
    path = run_dir / "scores.csv"
    if path.exists():
        with open(path) as f:
            for row in csv.DictReader(f):
                if game is None or row.get("game") == game:
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
    """Rows (game, method, agent steps, frames, mean, low, high, seeds) of every curve point; a multi-game
    run has a curve per game, over the frames of all its games."""
    groups = seed_groups(run_dirs)
    rows = []
    for (_, label), members in sorted(groups.items()):
        max_frames = max(c.steps * c.settings.frame_skip for c, _ in members)
        edges = np.linspace(0, max_frames, bins + 1)
        games = members[0][0].games
        skip = members[0][0].settings.frame_skip
        for game in games:
            only = game if len(games) > 1 else None
            curves = np.stack([binned_curve(run, edges, only) for _, run in members])
            mean, low, high = mean_interval(curves)
            for b in range(bins):
                seeds = int((~np.isnan(curves[:, b])).sum())
                rows.append(dict(game=game, method=label, agent_steps=int(edges[b + 1]) // skip,
                                 frames=int(edges[b + 1]), mean=float(mean[b]), low=float(low[b]),
                                 high=float(high[b]), seeds=seeds))  # fmt: skip
    return rows
