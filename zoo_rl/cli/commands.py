"""The RL verbs of the command line: one function per verb, each turning parsed arguments into a call.

Each verb imports what it needs when it runs (deliberately lazy): ``zoo-rl --help`` and a
mistyped flag answer without loading torch, Stable-Baselines3 or the emulator."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from zoo_rl.errors import ConfigError
from zoo_rl.rl.training.command_line import (
    run_config,
    transfer_configs,
)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from zoo_rl.rl.zoo.members import pin_member

    parent = {} if args.init is None else {"method": "finetune", "source": pin_member(args.init)}
    pretrain(run_config(args, "pretrain", **parent), args.out, args.zoo_dir)


def pretrain(config, out: Path, zoo_dir: Path | None) -> None:
    """Train (or resume) a source agent; with ``zoo_dir``, add it to that zoo."""
    from zoo_rl.rl.report.zoo_entry import add_to_zoo, manifest_entry
    from zoo_rl.rl.training.loop import train

    run_dir = train(config, out)
    entry = manifest_entry(config, run_dir)
    if zoo_dir is not None:
        add_to_zoo(run_dir, entry, zoo_dir, config.algo)
    report(run_dir)


def report(run_dir: Path) -> None:
    evaluation = json.loads((run_dir / "eval.json").read_text())
    for game, ev in evaluation.get("per_game", {}).items():
        print(f"{run_dir}: {game} {ev['mean']:.1f} +- {ev['std']:.1f} over {ev['episodes']} games")
    unit = " (human-normalised, mean over games)" if "per_game" in evaluation else ""
    score = f"{evaluation['mean']:.1f} +- {evaluation['std']:.1f}"
    print(f"{run_dir}: score {score} over {evaluation['episodes']} games{unit}")


def cmd_transfer(args: argparse.Namespace) -> None:
    from zoo_rl.rl.training.loop import train

    for config in transfer_configs(args):
        report(train(config, args.out))


def cmd_resume(args: argparse.Namespace) -> None:
    from zoo_rl.rl.config import RunConfig
    from zoo_rl.rl.training.loop import train

    if not (args.rundir / "config.yaml").is_file():
        raise ConfigError(f"{args.rundir}: not a run directory (no config.yaml)")
    config = RunConfig.load(args.rundir / "config.yaml")
    if config.run_name() != args.rundir.name:
        raise ConfigError(f"{args.rundir}: its config.yaml describes run {config.run_name()!r}; was it renamed?")
    if args.device is not None:  # a run may move between machines: where it trains is not part of its identity
        config = dataclasses.replace(config, device=args.device)
    if config.command == "pretrain":
        pretrain(config, args.rundir.parent, args.zoo_dir)
    else:
        report(train(config, args.rundir.parent))


def cmd_eval(args: argparse.Namespace) -> None:
    from zoo_rl.devices import check_device
    from zoo_rl.rl.report.load import load_actor
    from zoo_rl.rl.training.evaluate import evaluate

    device = str(check_device(args.device))
    act, game, settings, deterministic = load_actor(args.model, args.game, stochastic=args.stochastic, device=device)
    if args.video:
        from zoo_rl.rl.training.evaluate import record_games

        games = record_games(act, game, args.episodes, args.video, seed=args.seed, settings=settings)
        for path, score, frames in games:
            print(f"{path}: score {score:.1f}, {frames} frames")
        scores = [score for _, score, _ in games]
    else:
        scores = evaluate(act, game, args.episodes, seed=args.seed, settings=settings, backend=args.backend)
    import numpy as np

    mode = "greedy" if deterministic else "sampled"
    print(f"{game}: {np.mean(scores):.1f} +- {np.std(scores):.1f} over {len(scores)} full games ({mode} actions)")


def cmd_plot(args: argparse.Namespace) -> None:
    from zoo_rl.rl.report.curve_figure import plot_runs
    from zoo_rl.rl.report.gate_figure import plot_gates

    if args.gates:
        png, lines = plot_gates(args.rundirs, args.output, bins=args.bins)
        print("\n".join([*lines, str(png)]))
        return
    png = plot_runs(args.rundirs, args.output, bins=args.bins, finished_only=args.finished)
    print(png)


def cmd_export(args: argparse.Namespace) -> None:
    from zoo_rl.rl.report.export import export_run

    print(export_run(args.rundir, args.output))


def cmd_cost(args: argparse.Namespace) -> None:
    from zoo_rl.rl.report.runs import find_runs

    header = ("run", "score", "train MMACs", "train params", "infer MMACs", "infer params", "train steps/s")
    rows = []
    for run in find_runs(args.rundirs, finished_only=True):
        cost = json.loads((run / "cost.json").read_text())
        ev = json.loads((run / "eval.json").read_text())
        rows.append((
            run.name, f"{ev['mean']:.1f} +- {ev['std']:.1f}", f"{cost['train_gmacs'] * 1e3:.1f}",
            f"{cost['train_params'] / 1e6:.2f}M", f"{cost['inference_gmacs'] * 1e3:.1f}",
            f"{cost['inference_params'] / 1e6:.2f}M", f"{cost['train_env_steps_per_s']:.0f}",
        ))  # fmt: skip
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


def cmd_sweep(args: argparse.Namespace) -> None:
    from zoo_rl.sweep import load_sweep, run_states, run_sweep

    if args.dry_run:
        states = run_states(load_sweep(args.config, args.device, args.out))
        for spec, state in states:
            print(f"{state:8s} {spec.name}: zoo-rl {' '.join(spec.argv)}")
        counts = {s: sum(1 for _, state in states if state == s) for s in ("finished", "resumes", "new")}
        print(f"{len(states)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        return
    outcomes = run_sweep(
        args.config, backend=args.backend, jobs=args.jobs, address=args.address, device=args.device, out=args.out
    )
    if any(o.status == "failed" for o in outcomes):
        raise SystemExit(1)


def cmd_inspect(args: argparse.Namespace) -> None:
    from zoo_rl.devices import check_device
    from zoo_rl.io_utils import atomic_write_text
    from zoo_rl.rl.config import env_settings
    from zoo_rl.rl.report.inspect import format_report, inspect_zoo
    from zoo_rl.rl.zoo.manifest import zoo_paths

    settings = env_settings(args.env_preset)
    started = time.perf_counter()

    def progress(stage: str) -> None:
        print(f"[{time.perf_counter() - started:5.1f} s] {stage}", file=sys.stderr, flush=True)

    device = check_device(args.device)
    report = inspect_zoo(args.game, zoo_paths(args.zoo), settings, seed=args.seed, steps=args.steps, progress=progress,
                         device=device)  # fmt: skip
    progress("done")
    print(format_report(report))
    atomic_write_text(args.output, json.dumps(report, indent=2))
    print(f"written: {args.output}")


def cmd_summary(args: argparse.Namespace) -> None:
    from zoo_rl.rl.report.runs import find_runs
    from zoo_rl.rl.report.summary import write_summary

    print(write_summary(find_runs(args.rundirs, finished_only=True), args.output, args.against))
