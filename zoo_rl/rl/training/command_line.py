"""The command line of a training run (``pretrain``, ``transfer``) and the run configs it
describes.  The CLI parses it; the sweep writes each grid point as such a command line (the
backends run it as a process) and checks it here, so neither imports the other."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from zoo_rl.errors import ConfigError
from zoo_rl.rl.defaults import RUN_DEFAULTS

if TYPE_CHECKING:  # imported where used: parsing a command line must not load torch and SB3
    from zoo_rl.rl.config import RunConfig


DEVICE_HELP = "torch device: auto (a CUDA GPU where there is one, else the CPU), cpu, cuda or cuda:N"


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default, except where its help already says it or
    there is none to show (None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default == [] or default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action) or text


class Parser(argparse.ArgumentParser):
    """The project's argument parser (sub-commands inherit it): defaults in ``--help``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The flags shared by ``pretrain`` and ``transfer``."""
    p.add_argument("--algo", default="ppo", help="ppo, a2c, dqn or qrdqn (default: ppo)")
    p.add_argument("--steps", type=int, required=True, help="agent steps (each is 4 emulator frames)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, the games and the training")
    p.add_argument("--out", type=Path, default=Path("runs"), help="where the run directory is made: "
                   "GAME_METHOD_ALGO_sSEED for transfer (e.g. DemonAttack_lite_ppo_s0), "
                   "GAME_ALGO_sSEED for pretrain")  # fmt: skip
    p.add_argument("--n-envs", type=int, default=None, help="parallel games (default: from configs/algos.yaml)")
    p.add_argument("--env-preset", default="default", help="Atari settings preset from envs/atari.yaml")
    p.add_argument("--sticky-actions", type=float, default=None, help="override the preset's sticky-action rate")
    p.add_argument("--backend", default=RUN_DEFAULTS["backend"], help="ale_vector (fast) or sb3 (make_atari_env)")
    p.add_argument("--eval-episodes", type=int, default=RUN_DEFAULTS["eval_episodes"], help="full games per evaluation")
    p.add_argument("--eval-freq", type=int, default=RUN_DEFAULTS["eval_freq"],
                   help="also evaluate every N agent steps (0: at the end only)")  # fmt: skip
    p.add_argument(
        "--checkpoint-freq",
        type=int,
        default=RUN_DEFAULTS["checkpoint_freq"],
        help="checkpoint every N agent steps (0: never)",
    )
    p.add_argument("--hyperparams", type=Path, default=None, help="YAML file instead of configs/algos.yaml")
    p.add_argument("--device", default=RUN_DEFAULTS["device"], help=DEVICE_HELP)


def add_transfer_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``transfer``."""
    p.add_argument("game", metavar="TARGET", help="ALE game name of the target")
    add_training_arguments(p)
    p.add_argument("--method", default="lite", help="lite (the cheapest Zoo-Tuning: it merges into one "
                   "NatureCNN), zoo, scratch, finetune, ensemble, distill, kflow or zoo-uniform "
                   "(default: lite)")  # fmt: skip
    p.add_argument("--zoo", nargs="+", default=[], help="zoo members (.zip), a zoo directory or its manifest")
    p.add_argument("--source", default=None, help="finetune: one zoo member, or 'all' for one run per member")
    p.add_argument("--method-option", action="append", default=[], help="KEY=VALUE option of the method")


def transfer_parser() -> argparse.ArgumentParser:
    """A parser of ``transfer TARGET ...`` command lines, as the CLI reads them."""
    parser = Parser(prog="zoo-rl")
    sub = parser.add_subparsers(dest="command", required=True)
    add_transfer_arguments(sub.add_parser("transfer"))
    return parser


def run_config(args: argparse.Namespace, command: str, **extra) -> RunConfig:
    """The run config of parsed ``args``, with the defaults of ``configs/algos.yaml`` and the env preset."""
    from zoo_rl.rl.config import RunConfig, algo_defaults, env_settings

    n_envs, hyperparams = algo_defaults(args.algo, args.hyperparams)
    overrides = {} if args.sticky_actions is None else {"sticky_actions": args.sticky_actions}
    games = args.game if isinstance(args.game, list) else [args.game]
    if len(games) > 1:  # one policy head for every game; the default envs shared out equally
        overrides["full_action_space"] = True
        n_envs = -(-n_envs // len(games)) * len(games)
    return RunConfig(
        command=command,
        game="+".join(games),
        algo=args.algo,
        steps=args.steps,
        seed=args.seed,
        n_envs=args.n_envs if args.n_envs is not None else n_envs,
        hyperparams=hyperparams,
        env=env_settings(args.env_preset, overrides).to_dict(),
        backend=args.backend,
        eval_episodes=args.eval_episodes,
        eval_freq=args.eval_freq,
        checkpoint_freq=args.checkpoint_freq,
        device=args.device,
        **extra,
    )


def transfer_configs(args: argparse.Namespace) -> list[RunConfig]:
    """The run configs of a ``transfer`` command line: one, or one per source with ``--source all``."""
    from zoo_rl.rl.methods import get_method
    from zoo_rl.rl.zoo.manifest import zoo_paths
    from zoo_rl.rl.zoo.members import pin_member

    zoo = zoo_paths(args.zoo) if args.zoo else []
    sources = zoo if args.source == "all" else [pin_member(args.source) if args.source else None]
    if args.source == "all" and (args.method != "finetune" or not zoo):
        raise ConfigError("--source all needs --method finetune and a --zoo to take the sources from")
    options = dict(parse_option(o) for o in args.method_option)
    run_zoo = zoo if get_method(args.method).needs_zoo else []  # scratch/finetune runs do not depend on it
    return [
        run_config(args, "transfer", method=args.method, zoo=run_zoo, source=source, method_options=options)
        for source in sources
    ]


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--method-option``, the value read as YAML (numbers, booleans, lists)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"error: --method-option expects KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)
