"""zoo-rl: transfer from a zoo of pretrained Atari agents (Zoo-Tuning and baselines), one verb per job."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

from zoo_rl.devices import check_device
from zoo_rl.errors import ConfigError, ZooWarning
from zoo_rl.rl.run_args import (
    DEVICE_HELP,
    Parser,
    add_training_arguments,
    add_transfer_arguments,
    parse_option,
    run_config,
    transfer_configs,
)

default_showwarning = warnings.showwarning


def cmd_pretrain(args: argparse.Namespace) -> None:
    from zoo_rl.rl.zoo_files import pin_member

    parent = {} if args.init is None else {"method": "finetune", "source": pin_member(args.init)}
    pretrain(run_config(args, "pretrain", **parent), args.out, args.zoo_dir)


def pretrain(config, out: Path, zoo_dir: Path | None) -> None:
    """Train (or resume) a source agent; with ``zoo_dir``, add it to that zoo."""
    from zoo_rl.io_utils import atomic_write, atomic_write_text
    from zoo_rl.rl.manifest import EVAL_KEYS, upsert_entry
    from zoo_rl.rl.train import train
    from zoo_rl.rl.zoo_files import sha256

    run_dir = train(config, out)
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
    if "per_game" in evaluation:  # a multi-game agent
        entry["eval"]["per_game"] = {g: {k: ev[k] for k in EVAL_KEYS} for g, ev in evaluation["per_game"].items()}
    if config.env["full_action_space"]:
        entry["full_action_space"] = True
    if config.source is not None:  # started from a parent (--init): its file as it was when the run started
        entry["parent"] = json.loads((run_dir / "start.json").read_text())
    atomic_write_text(run_dir / "manifest_entry.json", json.dumps(entry, indent=2))
    if zoo_dir is not None:
        from zoo_rl.rl.plotting import plot_runs

        zoo_file = zoo_dir / entry["file"]
        atomic_write(zoo_file, lambda tmp: shutil.copyfile(run_dir / "model.zip", tmp))
        atomic_write(zoo_file.with_suffix(".scores.csv"), lambda tmp: shutil.copyfile(run_dir / "scores.csv", tmp))
        plot_runs([run_dir], zoo_file.with_suffix(".png"), title=config.algo)
        upsert_entry(zoo_dir / "manifest.json", entry)
    report(run_dir)


def report(run_dir: Path) -> None:
    evaluation = json.loads((run_dir / "eval.json").read_text())
    for game, ev in evaluation.get("per_game", {}).items():
        print(f"{run_dir}: {game} {ev['mean']:.1f} +- {ev['std']:.1f} over {ev['episodes']} games")
    unit = " (human-normalised, mean over games)" if "per_game" in evaluation else ""
    score = f"{evaluation['mean']:.1f} +- {evaluation['std']:.1f}"
    print(f"{run_dir}: score {score} over {evaluation['episodes']} games{unit}")


def cmd_transfer(args: argparse.Namespace) -> None:
    from zoo_rl.rl.train import train

    for config in transfer_configs(args):
        report(train(config, args.out))


def cmd_resume(args: argparse.Namespace) -> None:
    from zoo_rl.rl.config import RunConfig
    from zoo_rl.rl.train import train

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
    from zoo_rl.rl.evaluate import evaluate
    from zoo_rl.rl.policies import load_actor

    device = str(check_device(args.device))
    act, game, settings, deterministic = load_actor(args.model, args.game, stochastic=args.stochastic, device=device)
    if args.video:
        from zoo_rl.rl.evaluate import record_games

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
    from zoo_rl.rl.gates import plot_gates
    from zoo_rl.rl.plotting import plot_runs

    if args.gates:
        print(plot_gates(args.rundirs, args.output, bins=args.bins))
        return
    png = plot_runs(args.rundirs, args.output, bins=args.bins, finished_only=args.finished)
    print(png)


def cmd_export(args: argparse.Namespace) -> None:
    from zoo_rl.rl.export import export_run

    print(export_run(args.rundir, args.output))


def cmd_cost(args: argparse.Namespace) -> None:
    from zoo_rl.rl.runs import find_runs

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
    from zoo_rl.sweep import run_sweep

    outcomes = run_sweep(
        args.config, backend=args.backend, jobs=args.jobs, address=args.address, device=args.device, out=args.out
    )
    if any(o.status == "failed" for o in outcomes):
        raise SystemExit(1)


def cmd_inspect(args: argparse.Namespace) -> None:
    from zoo_rl.io_utils import atomic_write_text
    from zoo_rl.rl.config import env_settings
    from zoo_rl.rl.inspection import format_report, inspect_zoo
    from zoo_rl.rl.manifest import zoo_paths

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
    from zoo_rl.rl.runs import find_runs
    from zoo_rl.rl.summary import write_summary

    print(write_summary(find_runs(args.rundirs, finished_only=True), args.output))


def cmd_vision_train(args: argparse.Namespace) -> None:
    from zoo_rl.vision.train import VisionConfig, train_vision

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(VisionConfig) if hasattr(args, f.name)}
    given.update(zoo=[str(p) for p in args.zoo], options=dict(parse_option(o) for o in args.method_option))
    config = VisionConfig(**given)
    run_dir = train_vision(config, args.out)
    scores = json.loads((run_dir / "eval.json").read_text())
    print(f"{run_dir}: {_vision_scores(scores)}")


def _vision_scores(scores: dict[str, float]) -> str:
    if "nme" in scores:
        return f"NME {scores['nme']:.4f}, failure rate {scores['failure_rate']:.4f}"
    return f"top-1 {scores['top1']:.4f}"


def cmd_vision_eval(args: argparse.Namespace) -> None:
    from zoo_rl.vision.train import evaluate, load_trained

    config, model, test_set = load_trained(args.rundir, ten_crop=args.ten_crop or None)
    crops = "face crops" if config.landmarks else "ten crops" if config.ten_crop else "centre crop"
    scores = _vision_scores(evaluate(model, test_set, config))
    print(f"{args.rundir}: {scores} ({crops}, {len(test_set)} images)")


def cmd_vision_export(args: argparse.Namespace) -> None:
    import torch

    from zoo_rl.io_utils import atomic_write
    from zoo_rl.vision.models import plain_state_dict, to_torchvision
    from zoo_rl.vision.train import load_trained

    config, model, _ = load_trained(args.rundir)
    model = model.cpu()
    if config.landmarks:
        state = plain_state_dict(model)
        points = model.head.out.out_channels
        built = f"zoo_rl.vision.models.model_from_sources({config.arch!r}, 'scratch', [], {points}, landmarks=True)"
    else:
        state = to_torchvision(model)
        built = f"torchvision.models.{config.arch}(num_classes={model.head.out_features})"
    atomic_write(args.output, lambda tmp: torch.save(state, tmp))
    print(f"{args.output}: weights of {built}")


def cmd_vision_cost(args: argparse.Namespace) -> None:
    from zoo_rl.vision.cost import PAPER, method_costs, model_cost
    from zoo_rl.vision.train import load_trained

    if args.rundirs:
        rows = [{"method": str(run), **model_cost(load_trained(run)[1], args.crop, args.train_batch)}
                for run in args.rundirs]  # fmt: skip
    elif args.landmarks:
        rows = method_costs(args.arch, args.sources, args.landmarks, args.crop, args.train_batch, landmarks=True)
    else:
        rows = method_costs(args.arch, args.sources, args.num_classes, args.crop, args.train_batch)
    print(f"per image at {args.crop}x{args.crop}, training batches of {args.train_batch}; MACs (= the paper's FLOPs)")
    print(f"{'method':<28} {'train GMACs':>12} {'train params':>13} {'infer GMACs':>12} {'infer params':>13}")
    for r in rows:
        print(f"{r['method']:<28} {r['train_gmacs']:>12.2f} {r['train_params'] / 1e6:>12.2f}M "
              f"{r['inference_gmacs']:>12.2f} {r['inference_params'] / 1e6:>12.2f}M")  # fmt: skip
    for name, (gflops, params) in PAPER.items():
        print(f"{'paper: ' + name:<28} {gflops:>12.2f} {params / 1e6:>12.2f}M")


def _vision_parser(sub) -> None:
    vision = sub.add_parser(
        "vision", help="image classification and facial landmarks on torchvision ResNets (train, eval, export, cost)"
    )
    verbs = vision.add_subparsers(dest="vision_command", required=True)
    p = verbs.add_parser("train", help="train a classifier or landmark model with a transfer method from a zoo")
    p.add_argument("--data", required=True, help="classification: imagefolder:DIR (DIR/train, DIR/val) or "
                   "cifar100:DIR; landmarks: 300w:DIR, wflw:DIR, cofw:DIR or synthetic:N")  # fmt: skip
    p.add_argument("--zoo", nargs="+", type=Path, default=[], help="checkpoint files (torchvision, MoCo, "
                   "Mask/Keypoint R-CNN, DeepLabV3)")  # fmt: skip
    p.add_argument(
        "--method", default="zoo", help="zoo, lite, finetune, scratch, ensemble, distill or kflow (default: zoo)"
    )
    p.add_argument("--method-option", action="append", default=[], help="KEY=VALUE option of the method "
                   "(distill: weight, decay_updates; kflow: dependency_weight, ramp_updates)")  # fmt: skip
    p.add_argument("--arch", default="resnet50", help="resnet18, resnet34, resnet50 or resnet101")
    p.add_argument("--iters", type=int, default=15_000, help="training iterations (batches)")
    p.add_argument("--batch-size", type=int, default=48, help="images per batch")
    p.add_argument("--lr", type=float, default=0.01, help="initial learning rate")
    p.add_argument("--optimizer", default="sgd", help="sgd (Nesterov momentum 0.9) or adam (default: sgd)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="L2 penalty of the optimizer (default: 5e-4)")
    p.add_argument("--lr-steps", type=int, nargs="*", default=[6_000, 12_000], help="iterations where lr drops x0.1")
    p.add_argument("--crop", type=int, default=224, help="input size (landmarks: the face crop, a multiple of 32)")
    p.add_argument("--resize", type=int, default=256, help="classification: shorter side before cropping")
    p.add_argument("--ten-crop", action="store_true", help="evaluate on ten crops (as the paper) instead of the centre")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, data order and augmentation")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes")
    p.add_argument("--checkpoint-freq", type=int, default=500, help="checkpoint every N iterations (0: never)")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    p.add_argument("--out", type=Path, default=Path("runs/vision"), help="where the run directory is created")
    p.set_defaults(func=cmd_vision_train)
    p = verbs.add_parser("eval", help="top-1 accuracy (or landmark NME) of a finished run on its test split")
    p.add_argument("rundir", type=Path)
    p.add_argument("--ten-crop", action="store_true", help="average the predictions of ten crops per image")
    p.set_defaults(func=cmd_vision_eval)
    p = verbs.add_parser("cost", help="Table 1's cost columns: MACs and parameters of every method, or of runs")
    p.add_argument("rundirs", nargs="*", type=Path, help="finished runs (default: every method on random trunks)")
    p.add_argument("--arch", default="resnet50", help="ResNet depth of every method")
    p.add_argument("--sources", type=int, default=5, help="zoo size m")
    p.add_argument("--num-classes", type=int, default=100, help="classes of the head")
    p.add_argument("--landmarks", type=int, default=0, help="K > 0: landmark models with K heatmaps instead")
    p.add_argument("--crop", type=int, default=224, help="input side in pixels")
    p.add_argument("--train-batch", type=int, default=48,
                   help="per-batch work (weight aggregation) is shared by it; 48: vision train's batch")  # fmt: skip
    p.set_defaults(func=cmd_vision_cost)
    p = verbs.add_parser("export", help="a run as one plain ResNet (+ head) state dict (all but zoo and ensemble)")
    p.add_argument("rundir", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(func=cmd_vision_export)


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    """How a sweep runs (``sweep`` and ``quickstart``, which is one sweep)."""
    p.add_argument("--backend", default="local", help="local (subprocesses) or ray")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (local; ray: size of a local Ray instance)")
    p.add_argument("--address", default=None, help="ray: address of an existing cluster, e.g. auto")
    p.add_argument("--device", default=None, help="torch device of every run (default: the config's)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: the config's out)")
    p.set_defaults(func=cmd_sweep)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="zoo-rl", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('zoo-rl')}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="train a source agent for the zoo (on one game, or on several at once)")
    p.add_argument("game", nargs="+", metavar="GAME", help="ALE game name, e.g. Pong or ALE/Pong-v5; several games "
                   "train one agent on all of them (ALE's full action set, the envs shared out equally)")  # fmt: skip
    add_training_arguments(p)
    p.add_argument("--zoo-dir", type=Path, default=None, help="also add the agent to this zoo (e.g. agents)")
    p.add_argument("--init", default=None, metavar="AGENT", help="start from this agent's weights (an SB3 zip): "
                   "its NatureCNN, its value head and, where its actions are the game's, its policy head")  # fmt: skip
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("transfer", help="train on a target game with a transfer method")
    add_transfer_arguments(p)
    p.set_defaults(func=cmd_transfer)

    p = sub.add_parser(
        "inspect",
        help="before training: LogME of each source on the target, weight similarity, step-0 zoo health",
    )
    p.add_argument("game", metavar="TARGET", help="ALE game name of the target")
    p.add_argument("--zoo", nargs="+", required=True, help="zoo members (.zip), a zoo directory or its manifest")
    p.add_argument("--steps", type=int, default=1000, help="steps of random play in each of 8 games (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the play and of the fresh member (default: 0)")
    p.add_argument("--env-preset", default="default", help="Atari settings preset from envs/atari.yaml")
    p.add_argument("-o", "--output", type=Path, default=Path("inspect.json"), help="the full report as JSON")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=cmd_inspect)

    _vision_parser(sub)

    p = sub.add_parser("sweep", help="run a grid of transfer runs from a YAML file (resumable), then summarise")
    p.add_argument("config", type=Path, help="sweep config, e.g. configs/study.yaml")
    add_sweep_arguments(p)

    p = sub.add_parser(
        "summary",
        help="study report of run directories: per game final score and AUC with 95%% bootstrap CIs and costs; "
        "across games IQM/mean of human-normalised scores, P(improvement), performance profile (rliable)",
    )
    p.add_argument("rundirs", nargs="+", type=Path, help="run directories (or folders holding them)")
    p.add_argument("-o", "--output", type=Path, default=Path("summary.md"), help="the table (.md; .csv beside it)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("resume", help="continue a run directory with its own config.yaml (or skip it if finished)")
    p.add_argument("rundir", type=Path)
    p.add_argument("--zoo-dir", type=Path, default=None, help="pretrain runs: also add the agent to this zoo")
    p.add_argument("--device", default=None, help="torch device to continue on (default: the run's own)")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("eval", help="play full games with a model zip or a run directory")
    p.add_argument("model", type=Path, help="an SB3 zip with a NatureCNN policy, or a run directory")
    p.add_argument("--game", default=None, help="game to play (default: the run's game)")
    p.add_argument("--episodes", type=int, default=10, help="full games to play")
    p.add_argument("--seed", type=int, default=20_000, help="seed of the games (apart from training seeds)")
    p.add_argument("--backend", default="ale_vector", help="ale_vector or sb3 (make_atari_env)")
    p.add_argument("--stochastic", action="store_true", help="sample actions (default for PPO/A2C runs)")
    p.add_argument("--video", type=Path, default=None, metavar="DIR",
                   help="also write each game as an MP4 in DIR (one game at a time; the video extra)")  # fmt: skip
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("plot", help="learning curves from run directories")
    p.add_argument("rundirs", nargs="+", type=Path, help="run directories (or folders holding them)")
    p.add_argument("-o", "--output", type=Path, default=Path("curves.png"), help="the figure (.csv beside it)")
    p.add_argument("--bins", type=int, default=20, help="points per curve")
    p.add_argument("--finished", action="store_true", help="leave out runs still training (no eval.json yet)")
    p.add_argument("--gates", action="store_true", help="draw each zoo layer's gate coefficients instead of scores")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "quickstart",
        help="the sweep configs/quickstart.yaml: transfer from the shipped zoo to a new game, summarise and plot",
    )
    p.add_argument("--config", type=Path, default=Path("configs") / "quickstart.yaml", help="sweep config")
    add_sweep_arguments(p)

    p = sub.add_parser("cost", help="score and train/inference cost of runs, as in the paper's Table 1")
    p.add_argument("rundirs", nargs="+", type=Path, help="run directories (or folders holding them)")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser(
        "export",
        help="a run as a plain SB3 NatureCNN zip (lite, zoo-uniform, distill, kflow, finetune, scratch)",
    )
    p.add_argument("rundir", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(func=cmd_export)
    return parser


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """zoo-rl's own warnings as one line on the terminal; everyone else's as Python shows them."""
    if issubclass(category, ZooWarning):
        print(f"zoo-rl: warning: {message}", file=sys.stderr, flush=True)
    else:
        default_showwarning(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from zoo_rl.errors import TrainingDiverged, ZooRlError

    warnings.showwarning = show_warning

    try:
        args.func(args)
    except TrainingDiverged as err:
        print(f"zoo-rl {args.command}: training diverged: {err}", file=sys.stderr)
        return 3
    except ZooRlError as err:  # anything else is a bug: its traceback is kept
        print(f"zoo-rl {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
