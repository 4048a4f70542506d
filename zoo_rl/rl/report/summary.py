"""The study report, in the shape of the paper's Table 1 and with the statistics of rliable.

Per target and method: the final score and the area under the learning curve (mean over
seeds with a 95% stratified-bootstrap interval, :mod:`zoo_rl.stats`) beside the training and
inference costs.  Across targets: the interquartile mean (IQM) and mean of human-normalised
scores with their intervals, the probability that a method's run beats a run of scratch and
of the best single source, and a performance profile (Agarwal et al., NeurIPS 2021).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoo_rl.envs.scores import REFERENCE_SCORES, human_normalized
from zoo_rl.errors import ConfigError
from zoo_rl.io_utils import atomic_write, atomic_write_csv, atomic_write_text
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.report.curves import binned_curve
from zoo_rl.rl.report.runs import seed_groups
from zoo_rl.rl.training.checkpoint import FINISHED
from zoo_rl.stats import aggregate_intervals, improvement_probability, mean_interval, performance_profiles

COST_KEYS = ("train_gmacs", "train_params", "inference_gmacs", "inference_params", "train_env_steps_per_s")
SCRATCH = "scratch"
SOURCE_PREFIX = "finetune:"
Records = dict[tuple[str, str], list[dict]]  # (game, method) -> one record per seed


def run_record(run_dir: Path, config: RunConfig, bins: int = 20) -> dict:
    """Final score, area under the learning curve (the mean of its binned points: the average
    score over training) and costs of one finished run, whose ``config`` the caller has loaded."""
    if not (run_dir / FINISHED).exists():
        raise ConfigError(f"{run_dir}: run has not finished (no {FINISHED}); pass finished runs only")
    edges = np.linspace(0, config.steps * config.settings.frame_skip, bins + 1)
    curve = binned_curve(run_dir, edges)
    cost = json.loads((run_dir / "cost.json").read_text())
    return {
        "seed": config.seed,
        "final": json.loads((run_dir / FINISHED).read_text())["mean"],
        "auc": float(np.nanmean(curve)) if not np.isnan(curve).all() else math.nan,
        **{k: cost[k] for k in COST_KEYS},
    }


def run_records(run_dirs: list[Path]) -> Records:
    """Every finished run's record by (game, method label), ordered by seed."""
    return {
        key: sorted((run_record(run, config) for config, run in members), key=lambda r: r["seed"])
        for key, members in sorted(seed_groups(run_dirs).items())
    }


def summary_rows(records: Records) -> list[dict]:
    """One row per (game, method)."""
    rows = []
    for (game, method), runs in records.items():
        row = {"game": game, "method": method, "seeds": len(runs)}
        for metric in ("final", "auc"):
            mean, low, high = mean_interval(np.array([r[metric] for r in runs]))
            row.update({metric: float(mean), f"{metric}_low": float(low), f"{metric}_high": float(high)})
        row.update({k: runs[0][k] for k in COST_KEYS[:-1]})
        row["train_env_steps_per_s"] = float(np.mean([r["train_env_steps_per_s"] for r in runs]))
        rows.append(row)
    return rows


def normalized_scores(records: Records, metric: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """Human-normalised ``metric`` as rliable wants it: per method a (runs, games) matrix over
    the games that have reference scores.  Only methods run on all those games with the same
    number of seeds fit in one matrix; the others are left out of the aggregates."""
    games = sorted({g for g, _ in records if g in REFERENCE_SCORES})
    out = {}
    for method in sorted({m for _, m in records}):
        columns = [records.get((g, method)) for g in games]
        if games and all(columns) and len({len(c) for c in columns}) == 1:
            table = [[human_normalized(g, r[metric]) for r in c] for g, c in zip(games, columns, strict=True)]
            out[method] = np.array(table).T
    return games, out


def best_source(scores: dict[str, np.ndarray]) -> str | None:
    """The single source (finetune label) with the highest mean normalised score."""
    sources = [m for m in scores if m.startswith(SOURCE_PREFIX)]
    return max(sources, key=lambda m: scores[m].mean()) if sources else None


def aggregate_rows(records: Records) -> list[dict]:
    """One row per method that covers every game with reference scores: IQM and mean of
    human-normalised final score and AUC, and P(improvement) on the final score over scratch
    and over the best single source."""
    games, finals = normalized_scores(records, "final")
    _, aucs = normalized_scores(records, "auc")
    if not finals:
        return []
    final_stats, auc_stats = aggregate_intervals(finals), aggregate_intervals(aucs)
    baselines = {"scratch": SCRATCH if SCRATCH in finals else None, "best_source": best_source(finals)}
    pairs = {
        (method, role): (finals[method], finals[base])
        for method in finals for role, base in baselines.items() if base is not None and base != method
    }  # fmt: skip
    improvement = improvement_probability({f"{m}|{role}": xy for (m, role), xy in pairs.items()}) if pairs else {}
    rows = []
    for method in finals:
        row = {"method": method, "games": " ".join(games), "seeds": len(finals[method])}
        for metric, stats in (("final", final_stats), ("auc", auc_stats)):
            for agg in ("iqm", "mean"):
                point, low, high = stats[method][agg]
                row.update({f"{agg}_{metric}": point, f"{agg}_{metric}_low": low, f"{agg}_{metric}_high": high})
        for role, base in baselines.items():
            row[f"over_{role}"] = base or ""
            point, low, high = improvement.get(f"{method}|{role}", (math.nan,) * 3)
            row.update({f"p_over_{role}": point, f"p_over_{role}_low": low, f"p_over_{role}_high": high})
        rows.append(row)
    return rows


def against_rows(records: Records, baselines: Sequence[str]) -> list[dict]:
    """Per target, every method against each baseline run on that target: the ratio of their
    mean AUCs and P(method > baseline) on the AUC and on the final score, with intervals.

    One game at a time, so it needs no reference scores: the question a study on one target
    asks ("does it beat finetuning its best source here?"), which the human-normalised
    aggregate across games cannot answer."""
    methods = {m for _, m in records}
    for base in baselines:
        if base not in methods:
            known = ", ".join(sorted(methods))
            raise ConfigError(f"--against {base}: no finished runs of that method; methods: {known}")
    pairs, rows = {}, []
    for (game, method), runs in records.items():
        for base in baselines:
            base_runs = records.get((game, base))
            if base_runs is None or base == method:
                continue
            row = {"game": game, "method": method, "seeds": len(runs), "against": base, "against_seeds": len(base_runs)}
            row["auc_ratio"] = float(np.mean([r["auc"] for r in runs]) / np.mean([r["auc"] for r in base_runs]))
            for metric in ("auc", "final"):
                key = f"{game}|{method}|{base}|{metric}"
                pairs[key] = tuple(np.array([[r[metric]] for r in side]) for side in (runs, base_runs))
            rows.append(row)
    improvement = improvement_probability(pairs) if pairs else {}
    for row in rows:
        for metric in ("auc", "final"):
            point, low, high = improvement[f"{row['game']}|{row['method']}|{row['against']}|{metric}"]
            row.update({f"p_{metric}": point, f"p_{metric}_low": low, f"p_{metric}_high": high})
    return rows


def write_summary(run_dirs: list[Path], output: Path, against: Sequence[str] = ()) -> Path:
    """Write ``output`` (.md: the tables), the per-game rows as .csv, the aggregate rows as
    ``-aggregate.csv``, the performance profile as ``-profile.png`` and, for each method named
    in ``against``, every other method's comparison with it per game as ``-against.csv``;
    return the .md path."""
    records = run_records(run_dirs)
    if not records:
        raise ConfigError("no finished runs to summarise")
    versus = against_rows(records, against) if against else []
    output = Path(output).with_suffix(".md")
    stem = output.with_name(output.stem)
    rows = summary_rows(records)
    atomic_write_csv(output.with_suffix(".csv"), rows)
    lines = [
        "| target | method | seeds | final score [95% CI] | AUC [95% CI] | train GMACs | train params | "
        "inference GMACs | inference params | train env steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['game']} | {r['method']} | {r['seeds']} | {_ci(r, 'final')} | {_ci(r, 'auc')} | "
            f"{r['train_gmacs']:.4f} | {r['train_params'] / 1e6:.2f}M | {r['inference_gmacs']:.4f} | "
            f"{r['inference_params'] / 1e6:.2f}M | {r['train_env_steps_per_s']:.0f} |"
        )
    aggregate = aggregate_rows(records)
    if aggregate:
        atomic_write_csv(stem.with_name(stem.name + "-aggregate.csv"), aggregate)
        profile = plot_profile(records, stem.with_name(stem.name + "-profile.png"))
        first = aggregate[0]
        lines += [
            "",
            f"Across games ({first['games']}), human-normalised scores; {CONFIDENCE_TEXT}. "
            f"P(> X): probability that a run of the method beats a run of X on a game picked at random "
            f"(final scores); best single source: {first['over_best_source'] or 'none'}. "
            f"Performance profile: {profile.name}.",
            "",
            "| method | seeds | IQM final | mean final | IQM AUC | mean AUC | P(> scratch) | P(> best source) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in aggregate:
            cells = [_ci(r, f"{a}_{m}", ".3f") for m in ("final", "auc") for a in ("iqm", "mean")]
            cells += [_ci(r, f"p_over_{role}", ".2f") for role in ("scratch", "best_source")]
            lines.append(f"| {r['method']} | {r['seeds']} | " + " | ".join(cells) + " |")
    if versus:
        atomic_write_csv(stem.with_name(stem.name + "-against.csv"), versus)
        lines += [
            "",
            "Per target against each baseline X: the method's mean AUC over X's, and P(> X), the probability "
            "that a run of the method beats a run of X on this target (rliable; 95% bootstrap interval over "
            "both sides' seeds; none with one seed on a side).",
            "",
            "| target | method | seeds | X | X's seeds | mean AUC / X's | P(> X), AUC | P(> X), final |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in versus:
            lines.append(
                f"| {r['game']} | {r['method']} | {r['seeds']} | {r['against']} | {r['against_seeds']} | "
                f"{r['auc_ratio']:.2f} | {_ci(r, 'p_auc', '.2f')} | {_ci(r, 'p_final', '.2f')} |"
            )
    atomic_write_text(output, "\n".join(lines) + "\n")
    return output


CONFIDENCE_TEXT = "mean or IQM over runs with 95% stratified-bootstrap intervals (rliable); one seed has none"


def plot_profile(records: Records, output: Path) -> Path:
    """Performance profile of the final human-normalised scores: for each threshold tau, the
    fraction of runs (over games and seeds) scoring above it, with bootstrap bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games, finals = normalized_scores(records, "final")
    top = max(float(s.max()) for s in finals.values())
    low = min(0.0, min(float(s.min()) for s in finals.values()))
    taus = np.linspace(low, max(top, 0.1) * 1.05, 61)
    profiles = performance_profiles(finals, taus)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = plt.get_cmap("tab20").colors
    for i, method in enumerate(finals):
        style = "--" if method.startswith(SOURCE_PREFIX) else "-"
        profile, low, high = profiles[method]
        label = f"{method} (n={len(finals[method])})"
        (line,) = ax.plot(taus, profile, style, color=colors[i % len(colors)], label=label)
        ax.fill_between(taus, low, high, alpha=0.15, color=line.get_color())
    ax.set_xlabel(r"human-normalised final score $\tau$")
    ax.set_ylabel(r"fraction of runs with score $> \tau$")
    ax.set_title(f"Performance profile ({', '.join(games)})")
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)
    legend.set_in_layout(False)
    fig.tight_layout()
    atomic_write(output, lambda tmp: fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight",
                                                 bbox_extra_artists=[legend]))  # fmt: skip
    plt.close(fig)
    return output


def _ci(row: dict, key: str, fmt: str = ".1f") -> str:
    mean, low, high = row[key], row[f"{key}_low"], row[f"{key}_high"]
    if isinstance(mean, float) and math.isnan(mean):
        return "-"
    if math.isnan(low):
        return f"{mean:{fmt}}"
    return f"{mean:{fmt}} [{low:{fmt}}, {high:{fmt}}]"
