"""Run configuration: YAML hyperparameters per algorithm, resolved into one record per run.

The resolved record is written to ``config.yaml`` in the run directory; it is all
that is needed to rebuild the run's model (for evaluation, export or resume).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from zoo_rl.envs import AtariSettings, display_name

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"
ENV_PRESETS = REPO_ROOT / "envs" / "atari.yaml"
ALGOS: tuple[str, ...] = ("ppo", "a2c", "dqn", "qrdqn")
ON_POLICY: frozenset[str] = frozenset({"ppo", "a2c"})


class ConfigError(ValueError):
    """A config file or value that is not what zoo-rl expects; the message names it."""


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such config file") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def algo_defaults(algo: str, path: Path | None = None) -> tuple[int, dict[str, Any]]:
    """``(n_envs, hyperparams)`` of ``algo`` from ``configs/algos.yaml``."""
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; expected one of {', '.join(ALGOS)}")
    path = path or CONFIG_DIR / "algos.yaml"
    entry = read_yaml(path).get(algo)
    if not isinstance(entry, dict) or "n_envs" not in entry:
        raise ConfigError(f"{path}: no entry {algo!r} with n_envs and hyperparams")
    return int(entry["n_envs"]), copy.deepcopy(entry.get("hyperparams") or {})


def env_settings(preset: str = "default", overrides: dict[str, Any] | None = None) -> AtariSettings:
    """The Atari settings preset ``preset`` from ``envs/atari.yaml``, with overrides."""
    presets = read_yaml(ENV_PRESETS).get("settings", {})
    if preset not in presets:
        raise ConfigError(f"{ENV_PRESETS}: no env preset {preset!r}; available: {', '.join(presets)}")
    values = {**presets[preset], **(overrides or {})}
    known = {f.name for f in fields(AtariSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown env setting(s) {unknown}; expected some of {sorted(known)}")
    return AtariSettings(**values)


def game_suite(name: str) -> list[str]:
    suites = read_yaml(ENV_PRESETS).get("suites", {})
    if name not in suites:
        raise ConfigError(f"{ENV_PRESETS}: no game suite {name!r}; available: {', '.join(suites)}")
    return list(suites[name])


@dataclass
class RunConfig:
    """Everything that defines one training run."""

    command: str  # "pretrain" or "transfer"
    game: str
    algo: str
    steps: int
    seed: int
    method: str = "scratch"
    zoo: list[str] = field(default_factory=list)
    source: str | None = None
    method_options: dict[str, Any] = field(default_factory=dict)
    n_envs: int = 8
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=lambda: AtariSettings().to_dict())
    backend: str = "ale_vector"
    eval_episodes: int = 10
    eval_freq: int = 0
    checkpoint_freq: int = 25_000
    device: str = "cpu"

    def __post_init__(self):
        self.game = display_name(self.game)
        if self.algo not in ALGOS:
            raise ConfigError(f"unknown algorithm {self.algo!r}; expected one of {', '.join(ALGOS)}")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.n_envs < 1:
            raise ConfigError(f"n_envs must be >= 1, got {self.n_envs}")
        if self.eval_episodes < 1:
            raise ConfigError(f"eval_episodes must be >= 1, got {self.eval_episodes}")
        if self.eval_freq < 0:
            raise ConfigError(f"eval_freq must be >= 0, got {self.eval_freq}")
        if self.checkpoint_freq < 0:
            raise ConfigError(f"checkpoint_freq must be >= 0, got {self.checkpoint_freq}")

    @property
    def settings(self) -> AtariSettings:
        return AtariSettings(**self.env)

    @property
    def deterministic_eval(self) -> bool:
        """Greedy evaluation for value-based agents, sampling for actor-critics (as RL Zoo does on Atari)."""
        return self.algo not in ON_POLICY

    def run_name(self) -> str:
        if self.command == "pretrain":
            return f"{self.game}_{self.algo}_s{self.seed}"
        method = self.method
        if self.method == "finetune" and self.source:
            method += "-" + Path(self.source).stem
        return f"{self.game}_{method}_{self.algo}_s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """What makes two configs the same run (how often it checkpoints and where it trains do not)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("checkpoint_freq", "device")}

    def save(self, path: Path) -> None:
        from zoo_rl.io_utils import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        data = read_yaml(path)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {unknown}")
        try:
            return cls(**data)
        except TypeError as err:
            raise ConfigError(f"{path}: {err}") from err
