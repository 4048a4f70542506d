"""Rebuild a trained policy without unpickling anything.

A run directory is rebuilt from its ``config.yaml`` (plain YAML) and the weights in its
``model.zip``; any other SB3 zip with a NatureCNN policy is rebuilt from its weights
alone, which is enough to act: NatureCNN, then the action head of its algorithm.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn

from zoo_rl.envs import AtariSettings, display_name, make_atari_vec_env
from zoo_rl.errors import ConfigError
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.training.checkpoint import load_policy
from zoo_rl.rl.training.evaluate import Actor
from zoo_rl.rl.training.models import build_model
from zoo_rl.rl.zoo.members import NATURE_CNN_KEYS, action_head, extractor_prefix, read_policy_state_dict


def load_run_model(run_dir: Path, device: str | None = None) -> tuple[BaseAlgorithm, RunConfig]:
    """The run's SB3 model, built from its config, with its final weights (weights only), on
    ``device`` (default: the run's own, or the CPU where that is not here)."""

    config = RunConfig.load(run_dir / "config.yaml")
    if device is not None:
        config = dataclasses.replace(config, device=device)
    env = make_atari_vec_env(config.game, config.n_envs, config.seed, config.settings)
    try:
        model = build_model(config, env, rebuild=True)  # no zoo file is read: the run's weights replace them
    finally:
        env.close()
    load_policy(model, read_policy_state_dict(run_dir / "model.zip"), run_dir / "model.zip")
    return model, config


class ZipPolicy(nn.Module):
    """NatureCNN + the action head of a PPO/A2C, DQN or QR-DQN policy."""

    def __init__(self, state: dict[str, torch.Tensor], n_actions: int, path: Path):
        super().__init__()
        prefix = extractor_prefix(state)
        if prefix is None:
            raise ConfigError(f"{path}: not a NatureCNN policy")
        weights = {k: state[prefix + k] for k in NATURE_CNN_KEYS}
        channels = weights["cnn.0.weight"].shape[1]
        space = gym.spaces.Box(0, 255, (channels, 84, 84), np.uint8)
        self.cnn = NatureCNN(space, features_dim=weights["linear.0.weight"].shape[0])
        self.cnn.load_state_dict(weights)
        self.family, w, b = action_head(state)
        if w.shape[0] % n_actions:
            raise ConfigError(f"{path}: action head has {w.shape[0]} outputs, the game has {n_actions} actions")
        self.head = nn.Linear(w.shape[1], w.shape[0])
        self.head.load_state_dict({"weight": w, "bias": b})
        self.n_actions = n_actions

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Action preferences: logits, Q-values or mean quantiles."""
        out = self.head(self.cnn(obs.float() / 255.0))
        if self.family == "quantile":
            out = out.view(len(obs), -1, self.n_actions).mean(dim=1)
        return out


def load_actor(path: Path, game: str | None, stochastic: bool = False,
               device: str = "cpu") -> tuple[Actor, str, AtariSettings, bool]:  # fmt: skip
    """``(act, game, settings, deterministic)`` for a run directory or an SB3 zip, acting on ``device``."""
    path = Path(path)
    if path.is_dir():
        model, config = load_run_model(path, device)
        deterministic = config.deterministic_eval and not stochastic
        game = display_name(game or config.game)
        model.policy.set_training_mode(False)
        return (lambda obs: model.predict(obs, deterministic=deterministic)[0]), game, config.settings, deterministic
    if game is None:
        raise ConfigError(f"{path}: --game is required to evaluate a model zip")
    settings = AtariSettings()
    env = make_atari_vec_env(game, 1, 0, settings)
    n_actions = int(env.action_space.n)
    env.close()
    policy = ZipPolicy(read_policy_state_dict(path), n_actions, path).eval().to(device)
    deterministic = not (stochastic or policy.family == "actor_critic")

    def act(obs: np.ndarray) -> np.ndarray:
        prefs = policy(torch.as_tensor(obs, device=device)).cpu()
        if deterministic:
            return prefs.argmax(dim=1).numpy()
        return torch.distributions.Categorical(logits=prefs).sample().numpy()

    return act, display_name(game), settings, deterministic
