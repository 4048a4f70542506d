"""A pretrained agent as a zoo member: its manifest entry, and its files added to a zoo folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from zoo_rl.io_utils import atomic_write, atomic_write_text
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.report.curve_figure import plot_runs
from zoo_rl.rl.zoo.manifest import EVAL_KEYS, MANIFEST_NAME, upsert_entry
from zoo_rl.rl.zoo.members import sha256


def manifest_entry(config: RunConfig, run_dir: Path) -> dict[str, Any]:
    """The manifest entry of a finished pretraining run (also written to its ``manifest_entry.json``):
    a multi-game agent's evaluation per game and its action set, a child's parent as it was
    when the child started."""
    evaluation = json.loads((run_dir / "eval.json").read_text())
    entry = {
        "file": f"{config.run_name().lower()}.zip",
        "game": config.game,
        "algorithm": config.algo,
        "agent_steps": config.steps,
        "seed": config.seed,
        "eval": {
            **{k: evaluation[k] for k in ("mean", "std", "episodes", "deterministic")},
            "sticky_actions": config.env["sticky_actions"],
        },
        "sha256": sha256(run_dir / "model.zip"),
    }
    if "per_game" in evaluation:
        entry["eval"]["per_game"] = {g: {k: ev[k] for k in EVAL_KEYS} for g, ev in evaluation["per_game"].items()}
    if config.env["full_action_space"]:
        entry["full_action_space"] = True
    if config.source is not None:
        entry["parent"] = json.loads((run_dir / "start.json").read_text())
    atomic_write_text(run_dir / "manifest_entry.json", json.dumps(entry, indent=2))
    return entry


def add_to_zoo(run_dir: Path, entry: dict[str, Any], zoo_dir: Path, algo: str) -> Path:
    """Copy the run's model and score log into ``zoo_dir``, draw its training curves there and
    add ``entry`` to the folder's manifest; return the member's file."""
    zoo_file = zoo_dir / entry["file"]
    atomic_write(zoo_file, lambda tmp: shutil.copyfile(run_dir / "model.zip", tmp))
    atomic_write(zoo_file.with_suffix(".scores.csv"), lambda tmp: shutil.copyfile(run_dir / "scores.csv", tmp))
    plot_runs([run_dir], zoo_file.with_suffix(".png"), title=algo)
    upsert_entry(zoo_dir / MANIFEST_NAME, entry)
    return zoo_file
