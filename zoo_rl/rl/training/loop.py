"""One training loop for every job: pretraining a source agent and every transfer method.

Read top to bottom: resolve the run directory, build the environment and the SB3
model (the method decides the features extractor and its initialisation), train with
the shared callbacks, evaluate on full games, save.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
from torch.utils.tensorboard import SummaryWriter

from zoo_rl.envs.scores import human_normalized
from zoo_rl.io_utils import atomic_write, atomic_write_text
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.methods import Method, get_method
from zoo_rl.rl.training.callbacks import ActingCache, ExtractorLogger, PeriodicEval, ProgressBar, ScoreLogger
from zoo_rl.rl.training.checkpoint import (
    CHECKPOINT,
    FINISHED,
    Checkpointer,
    as_divergence,
    assert_finite,
    load_checkpoint,
    remove_checkpoint,
    restore,
)
from zoo_rl.rl.training.evaluate import evaluate
from zoo_rl.rl.training.models import build_model, make_env, validate
from zoo_rl.rl.training.policy_cost import policy_cost
from zoo_rl.rl.zoo.extractor import detach_from_zoo
from zoo_rl.run_dir import RunDirectory


def train(config: RunConfig, out: Path) -> Path:
    """Train one run under ``out`` and return its run directory.

    Re-running the same command resumes: a finished run is skipped, an unfinished one
    continues from its last checkpoint (or starts again if it died before its first).
    """
    run = RunDirectory(Path(out) / config.run_name(), config, RunConfig.load, FINISHED, CHECKPOINT)
    if run.finished_before():
        return run.path
    method = get_method(config.method)
    validate(config, method, read_files=not run.resumable)  # the checkpoint holds every weight: no zoo file needed
    env = make_env(config)
    try:
        model = build_model(config, env, rebuild=run.resumable)  # before any file is made: bad options leave nothing
        with run.open(need_checkpoint=run.resumable) as now:
            if now == "finished":
                return run.path
            done, previous = begin(model, config, run.path, method, resume=now == "checkpoint")
            seconds = learn(model, config, run.path, method, done, previous)
            finish(model, config, run.path, seconds)
            return run.path
    finally:
        env.close()


def begin(model: BaseAlgorithm, config: RunConfig, run_dir: Path, method: Method, resume: bool) -> tuple[int, dict]:
    """Start the method on a fresh run (its ``start.json``) or restore the checkpoint; return the
    steps done and the time already spent."""
    if not resume:
        started = method.start(model, config)
        if started is not None:
            atomic_write_text(run_dir / "start.json", json.dumps(started, indent=2))
        return 0, {"train_seconds": 0.0, "wall_s": 0.0}
    checkpoint = load_checkpoint(run_dir)
    restore(model, checkpoint, run_dir, config.seed)
    done = checkpoint["num_timesteps"]
    for log in ("scores.csv", "evals.csv"):
        truncate_log(run_dir / log, done)
    print(f"{run_dir}: resuming from the checkpoint at step {done} of {config.steps}", flush=True)
    return done, checkpoint["extra"]


def learn(model: BaseAlgorithm, config: RunConfig, run_dir: Path, method: Method, done: int, previous: dict) -> float:
    """Train from step ``done`` to the end with the shared callbacks; return the training
    seconds of the whole run (periodic evaluations and checkpoints included)."""
    model.set_logger(run_logger(run_dir, purge_step=done + 1 if done else 0))
    score_log = ScoreLogger(run_dir / "scores.csv", config.settings.frame_skip, config.game,
                            wall_offset=previous["wall_s"], report_every=config.checkpoint_freq or 25_000)  # fmt: skip
    start = time.perf_counter()

    def elapsed() -> dict[str, float]:
        seconds = previous["train_seconds"] + time.perf_counter() - start
        return {"train_seconds": seconds, "wall_s": score_log.wall_s}

    checkpointer = Checkpointer(run_dir, config.checkpoint_freq, elapsed, last_saved=done)
    callbacks = [ProgressBar(config.steps), score_log, checkpointer]
    if method.needs_zoo:
        callbacks += [ExtractorLogger(), ActingCache()]
    if config.eval_freq:
        evaluate_fn = partial(evaluate_model, config=config)
        callbacks.append(PeriodicEval(run_dir / "evals.csv", config.eval_freq, evaluate_fn, start_steps=done))
    try:
        model.learn(
            total_timesteps=config.steps - done, callback=CallbackList(callbacks), reset_num_timesteps=done == 0
        )
    except (ValueError, RuntimeError) as err:
        diverged = as_divergence(err, model, checkpointer.last_saved)
        if diverged is None:
            raise
        raise diverged from err
    assert_finite(model, checkpointer.last_saved)
    return elapsed()["train_seconds"]


def finish(model: BaseAlgorithm, config: RunConfig, run_dir: Path, seconds: float) -> None:
    """Cost, final evaluation and model; ``eval.json`` last, as it marks the run finished."""
    cost = {**policy_cost(model), "train_env_steps_per_s": config.steps / seconds, "train_seconds": seconds}
    atomic_write_text(run_dir / "cost.json", json.dumps(cost, indent=2))
    scores = evaluate_games(model, config)
    if config.command == "pretrain":
        drop_optimizer_state(model)
    detach_from_zoo(model)  # the saved zip loads with plain SB3, without the zoo's files
    atomic_write(run_dir / "model.zip", lambda tmp: model.save(tmp))
    write_eval(run_dir / FINISHED, scores, config)
    remove_checkpoint(run_dir)


def truncate_log(path: Path, steps: int) -> None:
    """Drop the rows a killed run logged after its checkpoint, so the resumed log has no duplicates."""
    if not path.exists():
        return
    header, *rows = path.read_text().splitlines(keepends=True)
    kept = [row for row in rows if row.strip() and int(row.split(",", 1)[0]) <= steps]
    atomic_write_text(path, header + "".join(kept))


def run_logger(run_dir: Path, purge_step: int) -> Logger:
    """TensorBoard logger of the run; on resume, TensorBoard hides what a killed run
    wrote from ``purge_step`` on (the step after its checkpoint)."""
    output = TensorBoardOutputFormat(str(run_dir / "tb"))
    if purge_step:
        output.writer.close()
        output.writer = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=purge_step)
    return Logger(folder=str(run_dir / "tb"), output_formats=[output])


def evaluate_model(model: BaseAlgorithm, config: RunConfig) -> list[float]:
    """Full-game scores of ``model`` on the run's game, with evaluation seeds apart from training's."""
    return evaluate_games(model, config)[config.game]


def evaluate_games(model: BaseAlgorithm, config: RunConfig) -> dict[str, list[float]]:
    """Full-game scores of ``model`` on each of the run's games (``eval_episodes`` each)."""
    return {
        game: evaluate(
            actor(model, config.deterministic_eval),
            game,
            config.eval_episodes,
            seed=config.seed + 10_000,
            settings=config.settings,
            backend=config.backend,
        )
        for game in config.games
    }


def actor(model: BaseAlgorithm, deterministic: bool):
    model.policy.set_training_mode(False)
    return lambda obs: model.predict(obs, deterministic=deterministic)[0]


def write_eval(path: Path, scores: dict[str, list[float]], config: RunConfig) -> dict[str, Any]:
    """``eval.json``: the scores of the run's game; a multi-game run's per game, with its mean
    human-normalised score over the games as ``mean`` (raw scores of different games do not add)."""
    common = {"deterministic": config.deterministic_eval, "env": config.env}
    if len(scores) == 1:
        (game_scores,) = scores.values()
        result = {**summarise(game_scores), "scores": game_scores, **common}
    else:
        per_game = {game: summarise(s) for game, s in scores.items()}
        normalised = [human_normalized(game, ev["mean"]) for game, ev in per_game.items()]
        result = {"mean": float(np.mean(normalised)), "std": float(np.std(normalised)),
                  "episodes": sum(len(s) for s in scores.values()), "unit": "human-normalised mean over games",
                  "per_game": {g: {**ev, "scores": scores[g]} for g, ev in per_game.items()}, **common}  # fmt: skip
    atomic_write_text(path, json.dumps(result, indent=2))
    return result


def summarise(scores: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "episodes": len(scores)}


def drop_optimizer_state(model: BaseAlgorithm) -> None:
    """Replace the optimizer by a fresh one, so the saved zip carries no moment buffers
    (half the file) yet still loads with ``Algo.load``, which expects an optimizer entry."""
    policy = model.policy
    lr = policy.optimizer.param_groups[0]["lr"]
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=lr, **policy.optimizer_kwargs)
