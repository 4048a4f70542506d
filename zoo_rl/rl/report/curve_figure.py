"""The learning-curve figure: one panel per game, one line per method, mean over seeds with
a 95% bootstrap band (:mod:`zoo_rl.rl.report.curves`); the plotted numbers go to CSV beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo_rl.io_utils import atomic_write, atomic_write_csv
from zoo_rl.rl.report.curves import curve_table
from zoo_rl.rl.report.runs import find_runs


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
            x = np.array([r["agent_steps"] for r in pts]) / 1e3  # what --steps counts, as the gate figure
            seeds = max(r["seeds"] for r in pts)
            # A study draws a dozen methods per game: the single sources, dashed, follow the others.
            style = "--" if method in sources else "-"
            (line,) = ax.plot(x, [r["mean"] for r in pts], style, color=colors[i % len(colors)],
                              label=f"{method} (n={seeds})")  # fmt: skip
            ax.fill_between(x, [r["low"] for r in pts], [r["high"] for r in pts], alpha=0.2, color=line.get_color())
        ax.set_title(f"{game} ({title})" if title else game)
        ax.set_xlabel("agent steps (thousands)")
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
