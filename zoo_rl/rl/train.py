"""One training loop for every job: pretraining a source agent and every transfer method.

Read top to bottom: resolve the run directory, build the environment and the SB3
model (the method decides the features extractor and its initialisation), train with
the shared callbacks, evaluate on full games, save.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from zoo_rl.io_utils import atomic_write, atomic_write_text
from zoo_rl.rl.callbacks import ExtractorLogger, PeriodicEval, ScoreLogger
from zoo_rl.rl.config import ConfigError, RunConfig
from zoo_rl.rl.cost import policy_cost
from zoo_rl.rl.evaluate import evaluate
from zoo_rl.rl.methods import get_method
from zoo_rl.rl.zoo_files import ZooFileError, nature_cnn_weights, sha256


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    if algo == "qrdqn":
        from sb3_contrib import QRDQN

        return QRDQN
    return {"ppo": PPO, "a2c": A2C, "dqn": DQN}[algo]


def resolve_schedules(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """``"lin_X"`` becomes SB3's own ``LinearSchedule`` (so saved models need no zoo_rl)."""
    return {
        k: LinearSchedule(float(v[4:]), 0.0, 1.0) if isinstance(v, str) and v.startswith("lin_") else v
        for k, v in hyperparams.items()
    }


def build_model(config: RunConfig, env: VecEnv) -> BaseAlgorithm:
    """The SB3 model of ``config``, initialised by its method."""
    method = get_method(config.method)
    hyperparams = resolve_schedules(config.hyperparams)
    policy_kwargs = {**(hyperparams.pop("policy_kwargs", None) or {}), **method.policy_kwargs(config)}
    model = algorithm_class(config.algo)(
        "CnnPolicy", env, seed=config.seed, device=config.device, policy_kwargs=policy_kwargs, verbose=0, **hyperparams
    )
    method.initialize(model, config)
    return model


def validate(config: RunConfig) -> None:
    """Check everything that can be checked before a run directory is made."""
    method = get_method(config.method)
    if method.needs_zoo and not config.zoo:
        raise ConfigError(f"method {config.method!r} needs a zoo (--zoo FILE... or --zoo agents)")
    if method.needs_source and not config.source:
        raise ConfigError(f"method {config.method!r} needs --source FILE")
    channels = config.settings.frame_stack
    paths = list(config.zoo) + ([config.source] if config.source else [])
    digests = {}
    for path in paths:
        nature_cnn_weights(path, in_channels=channels)
    for path in config.zoo:
        digest = sha256(path)
        if digest in digests:
            raise ZooFileError(
                f"{path}: the same agent as {digests[digest]} (sha256 {digest[:12]}) is twice in the zoo"
            )
        digests[digest] = path


def source_names(zoo: list[str]) -> list[str]:
    return [Path(p).stem for p in zoo]


def train(config: RunConfig, out: Path) -> Path:
    """Train one run under ``out``; return its run directory."""
    validate(config)
    run_dir = Path(out) / config.run_name()
    if (run_dir / "model.zip").exists():
        previous = RunConfig.load(run_dir / "config.yaml")
        if previous.to_dict() != config.to_dict():
            raise ConfigError(f"{run_dir}: already holds a different finished run; choose another --out")
        print(f"{run_dir}: already finished, skipping")
        return run_dir
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished run without checkpoints: start again
    run_dir.mkdir(parents=True)
    config.save(run_dir / "config.yaml")

    env = make_env(config)
    try:
        model = build_model(config, env)
        model.set_logger(configure(str(run_dir / "tb"), ["tensorboard", "csv"]))
        callbacks = [ScoreLogger(run_dir / "scores.csv", config.settings.frame_skip)]
        if get_method(config.method).needs_zoo:
            callbacks.append(ExtractorLogger(source_names(config.zoo)))
        if config.eval_freq:
            callbacks.append(PeriodicEval(run_dir / "evals.csv", config.eval_freq, lambda m: evaluate_model(m, config)))
        start = time.perf_counter()
        model.learn(total_timesteps=config.steps, callback=CallbackList(callbacks), progress_bar=True)
        seconds = time.perf_counter() - start
    finally:
        env.close()
    cost = {**policy_cost(model), "train_env_steps_per_s": config.steps / seconds, "train_seconds": seconds}
    atomic_write_text(run_dir / "cost.json", json.dumps(cost, indent=2))

    scores = evaluate_model(model, config)
    write_eval(run_dir / "eval.json", scores, config)
    if config.command == "pretrain":
        drop_optimizer_state(model)
    atomic_write(run_dir / "model.zip", lambda tmp: model.save(tmp))
    return run_dir


def make_env(config: RunConfig) -> VecEnv:
    from zoo_rl.envs import make_atari_vec_env

    return make_atari_vec_env(
        config.game, config.n_envs, config.seed, config.settings, backend=config.backend, training=True
    )


def evaluate_model(model: BaseAlgorithm, config: RunConfig) -> list[float]:
    """Full-game scores of ``model`` on the run's game, with evaluation seeds apart from training's."""
    return evaluate(
        actor(model, config.deterministic_eval),
        config.game,
        config.eval_episodes,
        seed=config.seed + 10_000,
        settings=config.settings,
        backend=config.backend,
    )


def actor(model: BaseAlgorithm, deterministic: bool):
    model.policy.set_training_mode(False)
    return lambda obs: model.predict(obs, deterministic=deterministic)[0]


def write_eval(path: Path, scores: list[float], config: RunConfig) -> dict[str, Any]:
    result = {
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "episodes": len(scores),
        "scores": scores,
        "deterministic": config.deterministic_eval,
        "env": config.env,
    }
    atomic_write_text(path, json.dumps(result, indent=2))
    return result


def drop_optimizer_state(model: BaseAlgorithm) -> None:
    """Replace the optimizer by a fresh one, so the saved zip carries no moment buffers
    (half the file) yet still loads with ``Algo.load``, which expects an optimizer entry."""
    policy = model.policy
    lr = policy.optimizer.param_groups[0]["lr"]
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=lr, **policy.optimizer_kwargs)
