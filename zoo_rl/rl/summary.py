"""The study table, in the shape of the paper's Table 1: per target and method, the final
score and the area under the learning curve (mean over seeds with a 95% confidence
interval) beside the training and inference costs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from zoo_rl.io_utils import atomic_write_csv, atomic_write_text
from zoo_rl.rl.checkpoint import FINISHED
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.plotting import binned_curve, seed_groups

# Two-sided 95% quantiles of Student's t by degrees of freedom (seeds - 1); 1.96 beyond 30.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        15: 2.131, 20: 2.086, 30: 2.042}  # fmt: skip
COST_KEYS = ("train_gmacs", "train_params", "inference_gmacs", "inference_params", "train_env_steps_per_s")


def t95(df: int) -> float:
    return next((_T95[k] for k in sorted(_T95) if k >= df), 1.96)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (NaN for one value)."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), math.nan
    return float(a.mean()), t95(len(a) - 1) * float(a.std(ddof=1)) / math.sqrt(len(a))


def run_record(run_dir: Path, config: RunConfig, bins: int = 20) -> dict:
    """Final score, area under the learning curve (the mean of its binned points: the average
    score over training) and costs of one finished run, whose ``config`` the caller has loaded."""
    if not (run_dir / FINISHED).exists():
        raise ValueError(f"{run_dir}: run has not finished (no {FINISHED}); pass finished runs only")
    edges = np.linspace(0, config.steps * config.settings.frame_skip, bins + 1)
    curve = binned_curve(run_dir, edges)
    cost = json.loads((run_dir / "cost.json").read_text())
    return {
        "final": json.loads((run_dir / FINISHED).read_text())["mean"],
        "auc": float(np.nanmean(curve)) if not np.isnan(curve).all() else math.nan,
        **{k: cost[k] for k in COST_KEYS},
    }


def summary_rows(run_dirs: list[Path]) -> list[dict]:
    """One row per (game, method) over ``run_dirs``, which must all be finished runs (as
    ``find_runs(..., finished_only=True)`` returns them)."""
    rows = []
    for (game, method), members in sorted(seed_groups(run_dirs).items()):
        records = [run_record(run, config) for config, run in members]
        final, final_ci = mean_ci([r["final"] for r in records])
        auc, auc_ci = mean_ci([r["auc"] for r in records])
        rows.append({
            "game": game, "method": method, "seeds": len(records), "final": final, "final_ci95": final_ci,
            "auc": auc, "auc_ci95": auc_ci,
            **{k: records[0][k] for k in COST_KEYS[:-1]},
            "train_env_steps_per_s": float(np.mean([r["train_env_steps_per_s"] for r in records])),
        })  # fmt: skip
    return rows


def write_summary(run_dirs: list[Path], output: Path) -> Path:
    """Write ``output`` (.md) and the same rows as .csv; return the .md path."""
    rows = summary_rows(run_dirs)
    if not rows:
        raise ValueError("no finished runs to summarise")
    output = Path(output).with_suffix(".md")

    atomic_write_csv(output.with_suffix(".csv"), rows)
    lines = [
        "| target | method | seeds | final score | AUC | train GMACs | train params | inference GMACs | "
        "inference params | train env steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['game']} | {r['method']} | {r['seeds']} | {_pm(r['final'], r['final_ci95'])} | "
            f"{_pm(r['auc'], r['auc_ci95'])} | {r['train_gmacs']:.4f} | {r['train_params'] / 1e6:.2f}M | "
            f"{r['inference_gmacs']:.4f} | {r['inference_params'] / 1e6:.2f}M | {r['train_env_steps_per_s']:.0f} |"
        )
    atomic_write_text(output, "\n".join(lines) + "\n")
    return output


def _pm(mean: float, half: float) -> str:
    return f"{mean:.1f}" if math.isnan(half) else f"{mean:.1f} +- {half:.1f}"
