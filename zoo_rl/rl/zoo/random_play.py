"""Frames of a uniformly random policy: what the start and ``zoo-rl inspect`` measure models on."""

from __future__ import annotations

import numpy as np

from zoo_rl.envs import AtariSettings, make_atari_vec_env

GAMMA = 0.99
# Random play runs on seeds this far from a run's seed, apart from training's and evaluation's.
SEED_OFFSET = 20_000


def random_play(game: str, settings: AtariSettings, seed: int, n_envs: int, steps: int,
                every: int = 1) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Frames of a uniformly random policy in the training env (clipped rewards, a lost life
    ends an episode) and their discounted returns, shape (steps // every, n_envs, ...)."""
    env = make_atari_vec_env(game, n_envs, seed, settings, training=True)
    rng = np.random.default_rng(seed)
    frames, rewards, dones = [], [], []
    try:
        obs = env.reset()
        for _ in range(steps):
            frames.append(obs)
            obs, reward, done, _ = env.step(rng.integers(env.action_space.n, size=n_envs))
            rewards.append(reward)
            dones.append(done)
    finally:
        env.close()
    returns = np.zeros((steps, n_envs), dtype=np.float64)
    running = np.zeros(n_envs)
    for t in range(steps - 1, -1, -1):
        running = rewards[t] + GAMMA * running * (1.0 - dones[t])
        returns[t] = running
    kept = slice(every - 1, None, every)
    return np.stack(frames)[kept].reshape(-1, *frames[0].shape[1:]), returns[kept].reshape(-1)
