"""Run configuration: YAML hyperparameters per algorithm, resolved into one record per run.

The resolved record is written to ``config.yaml`` in the run directory; it is all
that is needed to rebuild the run's model (for evaluation, export or resume).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3.common.utils import LinearSchedule

from zoo_rl.envs import AtariSettings, UnknownGameError, display_name, game_list
from zoo_rl.envs.scores import REFERENCE_SCORES
from zoo_rl.errors import ConfigError
from zoo_rl.io_utils import atomic_write_text, read_yaml
from zoo_rl.records import check_types, from_mapping
from zoo_rl.rl.defaults import RUN_DEFAULTS
from zoo_rl.rl.zoo.members import member_name
from zoo_rl.rl.zoo.recipes import DEFAULT_RECIPE

# The defaults ship inside the package (an installed zoo-rl finds them wherever it runs); the
# repository's configs/algos.yaml and envs/atari.yaml are links to these files, for users to edit.
DEFAULTS = Path(str(resources.files("zoo_rl") / "data"))
ALGOS_YAML = DEFAULTS / "algos.yaml"
ENV_PRESETS = DEFAULTS / "atari.yaml"
ALGOS: tuple[str, ...] = ("ppo", "a2c", "dqn", "qrdqn")
ON_POLICY: frozenset[str] = frozenset({"ppo", "a2c"})
COMMANDS: tuple[str, ...] = ("pretrain", "transfer")


# Constructor arguments that zoo-rl sets itself; everything else may come from the YAML.
_RESERVED = frozenset({"self", "policy", "env", "seed", "device", "verbose", "_init_setup_model"})


def algorithm_class(algo: str) -> type:
    """The SB3 (or sb3-contrib) class of ``algo``."""
    if algo == "qrdqn":
        from sb3_contrib import QRDQN

        return QRDQN
    from stable_baselines3 import A2C, DQN, PPO

    return {"ppo": PPO, "a2c": A2C, "dqn": DQN}[algo]


def unknown_hyperparams(algo: str, hyperparams: dict[str, Any]) -> list[str]:
    """Keys of ``hyperparams`` that the constructor of ``algo`` does not take."""
    accepted = set(inspect.signature(algorithm_class(algo).__init__).parameters) - _RESERVED
    return sorted(set(hyperparams) - accepted)


def algo_defaults(algo: str, path: Path | None = None) -> tuple[int, dict[str, Any]]:
    """``(n_envs, hyperparams)`` of ``algo`` from ``configs/algos.yaml``."""
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; expected one of {', '.join(ALGOS)}")
    path = path or ALGOS_YAML
    entry = read_yaml(path).get(algo)
    if not isinstance(entry, dict) or "n_envs" not in entry:
        raise ConfigError(f"{path}: no entry {algo!r} with n_envs and hyperparams")
    extra = sorted(set(entry) - {"n_envs", "hyperparams"})
    if extra:
        raise ConfigError(f"{path}: {algo}: unknown key(s) {extra}; expected n_envs and hyperparams")
    hyperparams = entry.get("hyperparams") or {}
    if not isinstance(entry["n_envs"], int) or not isinstance(hyperparams, dict):
        raise ConfigError(f"{path}: {algo}: n_envs must be an integer and hyperparams a mapping")
    unknown = unknown_hyperparams(algo, hyperparams)
    if unknown:
        raise ConfigError(f"{path}: {algo}.hyperparams: unknown key(s) {unknown} for {algo}")
    return entry["n_envs"], copy.deepcopy(hyperparams)


def resolve_schedules(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """``"lin_X"`` becomes SB3's own ``LinearSchedule`` (so saved models need no zoo_rl)."""
    resolved = dict(hyperparams)
    for key, value in hyperparams.items():
        if isinstance(value, str) and value.startswith("lin_"):
            try:
                resolved[key] = LinearSchedule(float(value[4:]), 0.0, 1.0)
            except ValueError:
                raise ConfigError(f"hyperparams: {key}: expected lin_<number>, got {value!r}") from None
    return resolved


def atari_hyperparams(algo: str = "ppo", **policy_kwargs: Any) -> tuple[int, dict[str, Any]]:
    """``(n_envs, kwargs)``: the Atari hyperparameters zoo-rl trains ``algo`` with (RL Zoo's,
    ``configs/algos.yaml``), ready for the SB3 constructor, with ``policy_kwargs`` added to
    theirs::

        n_envs, kwargs = atari_hyperparams("ppo", features_extractor_class=ZooNatureCNN, ...)
        model = PPO("CnnPolicy", make_atari_vec_env("Pong", n_envs, seed=0), **kwargs)
    """
    n_envs, hyperparams = algo_defaults(algo)
    kwargs = resolve_schedules(hyperparams)
    kwargs["policy_kwargs"] = {**(kwargs.get("policy_kwargs") or {}), **policy_kwargs}
    return n_envs, kwargs


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
    backend: str = RUN_DEFAULTS["backend"]
    eval_episodes: int = RUN_DEFAULTS["eval_episodes"]
    eval_freq: int = RUN_DEFAULTS["eval_freq"]
    checkpoint_freq: int = RUN_DEFAULTS["checkpoint_freq"]
    device: str = RUN_DEFAULTS["device"]

    def __post_init__(self):
        check_types(self)
        unknown_env = sorted(set(self.env) - {f.name for f in fields(AtariSettings)})
        if unknown_env:
            raise ConfigError(f"env: unknown setting(s) {unknown_env}")
        try:
            self.game = display_name(self.game)
            # every setting written out, so that a run made before a setting existed is the same
            # experiment as one made after, where it holds the default
            self.env = AtariSettings(**self.env).to_dict()
        except (UnknownGameError, TypeError, ValueError) as err:
            raise ConfigError(str(err)) from err
        games = self.games
        if len(games) > 1:
            if self.command != "pretrain":
                raise ConfigError(f"game {self.game!r}: several games are for pretrain; transfer has one target")
            if not self.env["full_action_space"]:
                raise ConfigError(f"game {self.game!r}: several games need env setting full_action_space: true")
            if self.n_envs % len(games):
                raise ConfigError(f"n_envs must be a multiple of the {len(games)} games, got {self.n_envs}")
            unscored = [g for g in games if g not in REFERENCE_SCORES]
            if unscored:  # a multi-game run reports the mean of its games' human-normalised scores
                raise ConfigError(f"game {self.game!r}: no random/human reference score for {', '.join(unscored)}")
            if self.eval_freq:
                raise ConfigError("eval_freq: periodic evaluation plays one game; multi-game runs evaluate at the end")
        if self.command not in COMMANDS:
            raise ConfigError(f"command must be one of {COMMANDS}, got {self.command!r}")
        if self.algo not in ALGOS:
            raise ConfigError(f"unknown algorithm {self.algo!r}; expected one of {', '.join(ALGOS)}")
        unknown = unknown_hyperparams(self.algo, self.hyperparams)
        if unknown:
            raise ConfigError(f"hyperparams: unknown key(s) {unknown} for {self.algo}")
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
    def games(self) -> list[str]:
        """The games of the run: one, or those of a multi-game pretraining (``game`` joins them with ``+``)."""
        return game_list(self.game)

    @property
    def settings(self) -> AtariSettings:
        return AtariSettings(**self.env)

    @property
    def deterministic_eval(self) -> bool:
        """Greedy evaluation for value-based agents, sampling for actor-critics (as RL Zoo does on Atari)."""
        return self.algo not in ON_POLICY

    def method_label(self) -> str:
        """The method as run names and reports show it: ``finetune-<source>``, and
        ``<method>-<recipe>`` for a Zoo-Tuning recipe other than the default."""
        method = self.method
        if self.method == "finetune" and self.source:
            method += "-" + member_name(self.source)
        recipe = self.method_options.get("recipe", DEFAULT_RECIPE)
        if recipe != DEFAULT_RECIPE:
            method += f"-{recipe}"
        return method

    def run_name(self) -> str:
        if self.command == "pretrain":
            return f"{self.game}_{self.algo}_s{self.seed}"
        return f"{self.game}_{self.method_label()}_{self.algo}_s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """What makes two configs the same run.

        How often it checkpoints, where it trains and where the zoo lies do not: a sweep records
        absolute zoo paths, and a run must stay resumable from a clone elsewhere, so zoo members
        count by file name.
        """
        same = {k: v for k, v in self.to_dict().items() if k not in ("checkpoint_freq", "device")}
        same["zoo"] = [Path(p).name for p in self.zoo]
        same["source"] = self.source and Path(self.source).name
        return same

    def save(self, path: Path) -> None:

        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        return cls.from_dict(read_yaml(path), where=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> RunConfig:
        """A checked config; any problem is a :class:`ConfigError` naming ``where`` and the key."""
        return from_mapping(cls, data, where)
