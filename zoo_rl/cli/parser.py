"""The command line's parser: every verb, its flags and the function it calls."""

from __future__ import annotations

import argparse
from importlib.metadata import version
from pathlib import Path

from zoo_rl.cli.commands import (
    cmd_cost,
    cmd_eval,
    cmd_export,
    cmd_inspect,
    cmd_plot,
    cmd_pretrain,
    cmd_resume,
    cmd_summary,
    cmd_sweep,
    cmd_transfer,
)
from zoo_rl.cli.vision import add_vision_parser
from zoo_rl.rl.training.command_line import (
    DEVICE_HELP,
    Parser,
    add_training_arguments,
    add_transfer_arguments,
)

DESCRIPTION = "zoo-rl: transfer from a zoo of pretrained Atari agents (Zoo-Tuning and baselines), one verb per job."


def add_sweep_arguments(p: argparse.ArgumentParser, jobs: int | None = 1) -> None:
    """How a sweep runs (``sweep`` and ``quickstart``, which is one sweep); ``jobs=None``: as many
    runs at once as the machine has cores, up to the grid's size."""
    p.add_argument("--backend", default="local", help="local (subprocesses) or ray")
    p.add_argument("--jobs", type=int, default=jobs, help="runs at once (local; ray: size of a local Ray instance)"
                   + ("; default: one per core, up to the number of runs" if jobs is None else ""))  # fmt: skip
    p.add_argument("--address", default=None, help="ray: address of an existing cluster, e.g. auto")
    p.add_argument("--device", default=None, help="torch device of every run (default: the config's)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: the config's out)")
    p.add_argument("--dry-run", action="store_true", help="print every run's command line and whether it is "
                   "finished, resumes from a checkpoint or is new; run nothing")  # fmt: skip
    p.set_defaults(func=cmd_sweep)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="zoo-rl", description=DESCRIPTION)
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

    add_vision_parser(sub)

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
    p.add_argument(
        "--against", nargs="+", default=[], metavar="METHOD",
        help="also compare every method with these, per target: mean AUC ratio and P(> METHOD) on AUC and "
        "final score, e.g. --against scratch finetune:phoenix_ppo_s0",
    )  # fmt: skip
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
    # Its two runs side by side with one torch thread each: on two cores 1.4x the steps/s of one
    # after the other (docs/performance.md, "Runs side by side").
    add_sweep_arguments(p, jobs=None)

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
