"""Gate figures: which members a target used, per zoo layer, over training.

Reads the gate coefficients every run logs to TensorBoard (``gate_last/<extractor>/<layer>/<member>``:
the mean coefficient of the last batch of each rollout) and draws, per game and zoo layer, each
member's coefficient over training, averaged over seeds with their min-max range as a band; and,
per run, which members each layer still uses at the end: whether the zoo mixed or selected.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from zoo_rl.errors import ConfigError
from zoo_rl.io_utils import atomic_write, atomic_write_csv
from zoo_rl.rl.report.curves import binned
from zoo_rl.rl.report.runs import find_runs, seed_groups


def read_gates(run_dir: Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``{layer: {member: (agent steps, coefficients)}}`` of the run's first zoo extractor."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    tags = [t for t in events.Tags()["scalars"] if t.startswith("gate_last/")]
    extractors = sorted({t.split("/")[1] for t in tags})
    gates: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for tag in tags:
        _, extractor, layer, member = tag.split("/", 3)
        if extractor != extractors[0]:
            continue
        points = events.Scalars(tag)
        gates[layer][member] = (np.array([p.step for p in points]), np.array([p.value for p in points]))
    return dict(gates)


# A member is in use in a layer when its final coefficient there is above this: a layer with two
# members in use mixes them, one whose every layer keeps one member selects it.
IN_USE = 0.1


def final_use(gates: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> dict[str, dict[str, float]]:
    """Per layer, the members in use at the end of training (the last logged rollout's
    coefficient above :data:`IN_USE`), largest first."""
    use = {}
    for layer, members in gates.items():
        final = {member: float(values[-1]) for member, (_, values) in members.items() if len(values)}
        use[layer] = dict(sorted(((m, c) for m, c in final.items() if c > IN_USE), key=lambda mc: -mc[1]))
    return use


def describe_use(use: dict[str, dict[str, float]]) -> str:
    """One line: the member selected in every layer, or the layers that mix, with their coefficients."""
    mixing = {layer: members for layer, members in use.items() if len(members) > 1}
    if not mixing:
        chosen = {next(iter(members), "none") for members in use.values()}
        return f"selects {' / '.join(sorted(chosen))} (one member above {IN_USE} in every layer)"
    return "mixes: " + "; ".join(
        f"{layer} " + " + ".join(f"{m} {c:.2f}" for m, c in members.items()) for layer, members in mixing.items()
    )


def plot_gates(paths: list[Path], output: Path, bins: int = 20) -> tuple[Path, list[str]]:
    """Write the gate figure (rows: game and method, columns: zoo layers), its CSV and, as
    ``<output>-final.csv``, every run's members in use at the end (:func:`final_use`); return
    the figure's path and one line per run (:func:`describe_use`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = seed_groups(find_runs(paths))
    rows: list[dict] = []
    final_rows: list[dict] = []
    lines: list[str] = []
    panels = []
    for (game, label), members in sorted(groups.items()):
        per_run = [read_gates(run) for _, run in members]
        if not per_run[0]:
            continue
        for (_, run), gates in zip(members, per_run, strict=True):
            use = final_use(gates)
            lines.append(f"{run.name}: {describe_use(use)}")
            final_rows += [dict(run=run.name, game=game, method=label, layer=layer, member=member, coefficient=c,
                                mixes=len(in_use) > 1)
                           for layer, in_use in use.items() for member, c in in_use.items()]  # fmt: skip
        steps = max(config.steps for config, _ in members)
        edges = np.linspace(0, steps, bins + 1)
        layers = list(per_run[0])
        panel = {}
        for layer in layers:
            panel[layer] = {}
            for member in per_run[0][layer]:
                # TensorBoard's last point is the last rollout's: a run still training, or killed, ends there.
                curves = np.stack([binned(*gates[layer][member], edges, stop_at_last=True) for gates in per_run])
                with warnings.catch_warnings():  # a bin no seed reached yet is NaN on purpose, not an error
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(curves, axis=0)
                    low, high = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
                panel[layer][member] = (edges[1:], mean, low, high)
                rows += [dict(game=game, method=label, layer=layer, member=member, agent_steps=int(s), mean=float(m),
                              low=float(lo), high=float(hi), seeds=len(per_run))
                         for s, m, lo, hi in zip(edges[1:], mean, low, high, strict=True)]  # fmt: skip
        panels.append((f"{game} {label} (n={len(per_run)})", panel))
    if not panels:
        raise ConfigError(f"no gate coefficients logged in the runs under {', '.join(map(str, paths))}")
    ncols = max(len(p) for _, p in panels)
    fig, axes = plt.subplots(len(panels), ncols, figsize=(3.6 * ncols, 2.8 * len(panels)), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    members = sorted({m for _, panel in panels for layer in panel.values() for m in layer})
    peak = {m: max(float(np.nanmax(layer[m][3])) for _, panel in panels for layer in panel.values() if m in layer)
            for m in members}  # fmt: skip
    for row, (title, panel) in zip(axes, panels, strict=True):
        for ax, (layer, curves) in zip(row, panel.items(), strict=False):
            for member, (x, mean, low, high) in sorted(curves.items()):
                color = colors[members.index(member) % len(colors)]
                # members that stay near 0 would hide under each other: thin dashed lines, said so in the legend
                style = dict(lw=0.8, ls="--") if peak[member] < 0.05 else dict(lw=1.5)
                ax.plot(x / 1e3, mean, color=color, **style)
                ax.fill_between(x / 1e3, low, high, color=color, alpha=0.15)
            ax.set_title(f"{title}\n{layer}", fontsize=8)
            ax.set_xlabel("agent steps (thousands)", fontsize=8)
            ax.set_ylim(0, None)
            ax.grid(alpha=0.3)
        row[0].set_ylabel("gate coefficient")
    handles = [plt.Line2D([], [], color=colors[i % len(colors)], **(dict(lw=0.8, ls="--") if peak[m] < 0.05 else {}))
               for i, m in enumerate(members)]  # fmt: skip
    labels = [f"{m} (never above {peak[m]:.2f})" if peak[m] < 0.05 else m for m in members]
    legend = fig.legend(handles, labels, loc="lower center", ncol=min(3, len(members)), fontsize=9,
                        bbox_to_anchor=(0.5, 0.0))  # fmt: skip
    legend_inches = 0.3 + 0.22 * ((len(members) + 2) // 3)
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
    output = Path(output)
    atomic_write(output, lambda tmp: fig.savefig(tmp, dpi=100, format="png", bbox_extra_artists=[legend]))
    plt.close(fig)
    atomic_write_csv(output.with_suffix(".csv"), rows)
    atomic_write_csv(output.with_name(output.stem + "-final.csv"), final_rows)
    return output, lines
