"""Checkpoints that let a killed run continue where it stopped, and the guard that stops a
diverged run before it overwrites its last good checkpoint.

A checkpoint is taken only at the start of an SB3 rollout: the model has just been
updated and no transition is pending, so restoring the parameters, the optimizer
moments, the step counters and the random generators continues the same run on the
same learning-rate and clip-range schedules (both depend only on the step counter).
Games in progress at the checkpoint are not saved: the resumed run starts new ones
(with environment seeds derived from the step, so it does not replay the first games).

A checkpoint is a ``torch.save`` of tensors and plain numbers, read back with
``weights_only=True``; an off-policy replay buffer is an ``.npz`` of arrays read with
``allow_pickle=False``. Neither can carry code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from zoo_rl.errors import CheckpointError, TrainingDiverged
from zoo_rl.io_utils import atomic_write, read_weights
from zoo_rl.rng import rng_state, set_rng_state

CHECKPOINT = "checkpoint.pt"
# Written last, after model.zip: a finished run is one with its final evaluation. The marker is
# a small file so that a study's results can be kept (in git, say) without the model weights.
FINISHED = "eval.json"
FORMAT = 1
_BUFFER_SCALARS = ("pos", "full")


def assert_finite(model: BaseAlgorithm, last_good: int | None) -> None:
    """Raise :class:`TrainingDiverged` if a parameter or a logged training loss is not finite."""
    for name, value in model.logger.name_to_value.items():
        if name.startswith("train/") and "loss" in name and not np.isfinite(value):
            raise TrainingDiverged(f"{name} is {value} at step {model.num_timesteps}; {_kept(last_good)}")
    for name, param in model.policy.state_dict().items():
        if param.is_floating_point() and not torch.isfinite(param).all():
            raise TrainingDiverged(f"parameter {name} is not finite at step {model.num_timesteps}; {_kept(last_good)}")


def as_divergence(err: Exception, model: BaseAlgorithm, last_good: int | None) -> TrainingDiverged | None:
    """The divergence behind an error raised inside SB3's training step, if it is one.

    Non-finite values usually surface first as an exception (torch refuses NaN logits
    when it builds the action distribution) rather than as a NaN parameter.
    """
    try:
        assert_finite(model, last_good)
    except TrainingDiverged as diverged:
        return diverged
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    if re.search(r"\b(nan|inf)\b|invalid values", message):
        where = f"non-finite values at step {model.num_timesteps}"
        return TrainingDiverged(f"{where} ({message[:160]}); {_kept(last_good)}")
    return None


def _kept(last_good: int | None) -> str:
    return f"the last good checkpoint (step {last_good}) is kept" if last_good else "no checkpoint was written yet"


def save_checkpoint(model: BaseAlgorithm, run_dir: Path, extra: dict[str, Any]) -> None:
    """Write ``run_dir/checkpoint.pt`` (and the replay buffer it points to) atomically."""
    buffer_file = None
    if isinstance(model, OffPolicyAlgorithm):
        buffer_file = f"replay_buffer_{model.num_timesteps}.npz"
        atomic_write(run_dir / buffer_file, lambda tmp: _save_buffer(model, tmp))
    state = {
        "format": FORMAT,
        "num_timesteps": int(model.num_timesteps),
        "counters": {k: int(getattr(model, k, 0)) for k in ("_n_updates", "_n_calls", "_episode_num")},
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "rng": rng_state(),
        "replay_buffer": buffer_file,
        "extra": extra,
    }
    atomic_write(run_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))
    for old in run_dir.glob("replay_buffer_*.npz"):
        if old.name != buffer_file:
            old.unlink()


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CHECKPOINT
    state = read_weights(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a zoo-rl checkpoint of format {FORMAT}")
    return state


def load_policy(model: BaseAlgorithm, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Load a run's saved policy weights into the model its config.yaml describes.

    Weights that do not fit (config.yaml edited after the run, or a run made by a zoo-rl whose
    defaults built another model) are a one-line error naming ``path`` and a key that differs,
    not torch's many-line report."""
    expected = model.policy.state_dict()
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    reshaped = sorted(k for k in expected.keys() & weights.keys() if expected[k].shape != weights[k].shape)
    if missing or unexpected or reshaped:
        first = (missing + unexpected + reshaped)[0]
        raise CheckpointError(
            f"{path}: weights do not fit the model of config.yaml ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(reshaped)} of another shape, e.g. {first}); "
            "was config.yaml edited, or the run made by another version of zoo-rl?"
        )
    model.policy.load_state_dict(weights)


def restore(model: BaseAlgorithm, state: dict[str, Any], run_dir: Path, seed: int) -> None:
    """Put ``model`` where the checkpoint left it. ``seed`` reseeds the environments."""
    model.set_random_seed(seed + state["num_timesteps"])
    load_policy(model, state["policy"], run_dir / CHECKPOINT)
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = state["num_timesteps"]
    for key, value in state["counters"].items():
        if hasattr(model, key):
            setattr(model, key, value)
    if state["replay_buffer"] is not None:
        _load_buffer(model, run_dir / state["replay_buffer"])
    set_rng_state(state["rng"])


def remove_checkpoint(run_dir: Path) -> None:
    (run_dir / CHECKPOINT).unlink(missing_ok=True)
    for old in run_dir.glob("replay_buffer_*.npz"):
        old.unlink()


class Checkpointer(BaseCallback):
    """Every ``every_steps`` agent steps, checks that training is finite and saves a checkpoint.

    The finiteness check runs at the start of every rollout, so a diverged update stops
    the run before it can reach a checkpoint. ``extra_fn`` returns what the rest of the
    training loop needs back on resume (elapsed times).
    """

    def __init__(self, run_dir: Path, every_steps: int, extra_fn, last_saved: int = 0):
        super().__init__()
        self.run_dir = run_dir
        self.every_steps = every_steps
        self.extra_fn = extra_fn
        self.last_saved = last_saved

    def _on_rollout_start(self) -> None:
        assert_finite(self.model, self.last_saved)
        if self.every_steps and self.num_timesteps - self.last_saved >= self.every_steps:
            save_checkpoint(self.model, self.run_dir, self.extra_fn())
            self.last_saved = self.num_timesteps

    def _on_step(self) -> bool:
        return True


def _save_buffer(model: OffPolicyAlgorithm, tmp: Path) -> None:
    buffer = model.replay_buffer
    arrays = {k: v for k, v in vars(buffer).items() if isinstance(v, np.ndarray)}
    scalars = {k: np.asarray(getattr(buffer, k)) for k in _BUFFER_SCALARS}
    with open(tmp, "wb") as f:
        np.savez(f, **arrays, **scalars)


def _load_buffer(model: OffPolicyAlgorithm, path: Path) -> None:
    buffer = model.replay_buffer
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except Exception as err:  # missing, truncated or not an npz file
        raise CheckpointError(f"{path}: not a readable replay buffer ({err})") from err
    for key, value in data.items():
        current = getattr(buffer, key, None)
        if key in _BUFFER_SCALARS:
            setattr(buffer, key, type(current)(value))
        elif not isinstance(current, np.ndarray) or current.shape != value.shape:
            raise CheckpointError(f"{path}: array {key!r} does not fit this run's replay buffer")
        else:
            current[...] = value
