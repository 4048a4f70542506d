"""Shared fixtures: a tiny two-agent zoo (PPO and DQN) made with the real CLI."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml

from zoo_rl.cli import main

TINY = {
    "ppo": {
        "n_envs": 2,
        "hyperparams": {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "learning_rate": "lin_2.5e-4"},
    },
    "a2c": {"n_envs": 2, "hyperparams": {"n_steps": 5}},
    "dqn": {
        "n_envs": 1,
        "hyperparams": {
            "buffer_size": 500,
            "learning_starts": 64,
            "batch_size": 8,
            "train_freq": 4,
            "target_update_interval": 50,
            "optimize_memory_usage": True,
            "replay_buffer_kwargs": {"handle_timeout_termination": False},
        },
    },
    "qrdqn": {"n_envs": 1, "hyperparams": {"buffer_size": 500, "learning_starts": 64, "batch_size": 8}},
}


@pytest.fixture(autouse=True)
def fewer_bootstrap_replications(monkeypatch):
    """The reports' estimator with 200 replications instead of 2,000: the same intervals,
    coarser, in a tenth of the time (rliable resamples in Python)."""
    monkeypatch.setattr("zoo_rl.stats.REPS", 200)


@pytest.fixture(scope="session")
def tiny_hyperparams(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def run_cli(*argv: str) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory, tiny_hyperparams) -> Path:
    """agents/-style directory with a PPO Breakout and a DQN Pong agent and their manifest."""
    root = tmp_path_factory.mktemp("zoo")
    for game, algo in (("Breakout", "ppo"), ("Pong", "dqn")):
        rc = run_cli("pretrain", game, "--algo", algo, "--steps", 128, "--out", root / "runs",
                     "--eval-episodes", 1, "--hyperparams", tiny_hyperparams, "--zoo-dir", root / "agents")  # fmt: skip
        assert rc == 0
    return root / "agents"


@pytest.fixture(scope="session")
def resnet18_zoo(tmp_path_factory) -> list[Path]:
    """Two randomly initialised torchvision ResNet-18 checkpoints."""
    import torch
    import torchvision

    folder = tmp_path_factory.mktemp("r18")
    paths = []
    for i in range(2):
        torch.manual_seed(i)
        paths.append(folder / f"source{i}.pth")
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), paths[-1])
    return paths


@contextlib.contextmanager
def crash_after_checkpoint(monkeypatch, steps: int = 128):
    """Within the block, a training run dies (KeyboardInterrupt) right after writing its first
    checkpoint at ``steps`` or later, as a killed process would; checkpoints are normal after."""
    from zoo_rl.rl.training.checkpoint import Checkpointer

    save = Checkpointer._on_rollout_start

    def save_then_crash(self):
        save(self)
        if self.last_saved >= steps:
            raise KeyboardInterrupt  # the process dies here, after writing its checkpoint

    monkeypatch.setattr(Checkpointer, "_on_rollout_start", save_then_crash)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(Checkpointer, "_on_rollout_start", save)
