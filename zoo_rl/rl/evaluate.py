"""Evaluation on full games: raw scores, all lives, no reward clipping."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zoo_rl.envs import AtariSettings, make_atari_vec_env

Actor = Callable[[np.ndarray], np.ndarray]


def evaluate(
    act: Actor,
    game: str,
    episodes: int,
    *,
    seed: int = 10_000,
    settings: AtariSettings | None = None,
    backend: str = "ale_vector",
    n_envs: int | None = None,
) -> list[float]:
    """Scores of ``episodes`` full games played by ``act`` (observations -> actions).

    Each of the parallel games plays a fixed share of the episodes, so that short games
    are not over-represented (as in SB3's ``evaluate_policy``).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    n_envs = min(n_envs or episodes, episodes)
    targets = np.array([(episodes + i) // n_envs for i in range(n_envs)])
    env = make_atari_vec_env(game, n_envs, seed, settings, backend=backend, training=False)
    counts = np.zeros(n_envs, dtype=int)
    scores: list[float] = []
    obs = env.reset()
    try:
        while (counts < targets).any():
            obs, _, _, infos = env.step(act(obs))
            for i, info in enumerate(infos):
                if "episode" in info and counts[i] < targets[i]:
                    scores.append(float(info["episode"]["r"]))
                    counts[i] += 1
    finally:
        env.close()
    return scores
