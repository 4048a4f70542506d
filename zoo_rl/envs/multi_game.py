"""Several games in one SB3 ``VecEnv``: the vector environments of each game side by side.

A multi-game agent trains on all its games at once with one rollout buffer, as IMPALA's and
the Multi-Game Decision Transformer's agents do; the games share ALE's full action set, so one
policy head acts in each.  Every step's ``info["game"]`` names the game of its env, for the
per-game score log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn


class MultiGameVecEnv(VecEnv):
    """The envs of ``parts`` (one ``VecEnv`` per game of ``games``, equal spaces) in order."""

    def __init__(self, games: Sequence[str], parts: Sequence[VecEnv]):
        first = parts[0]
        for game, part in zip(games, parts, strict=True):
            if part.observation_space != first.observation_space or part.action_space != first.action_space:
                raise ValueError(f"{game}: observation or action space differs from {games[0]}'s")
        self.games = list(games)
        self.parts = list(parts)
        self._bounds = np.cumsum([0] + [p.num_envs for p in parts])
        self.env_games = [g for g, p in zip(games, parts, strict=True) for _ in range(p.num_envs)]
        super().__init__(int(self._bounds[-1]), first.observation_space, first.action_space)

    def _slices(self):
        return zip(self.parts, self._bounds[:-1], self._bounds[1:], strict=True)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Each game's envs from their own seeds: env ``i`` of the whole gets ``seed + i``."""
        for part, lo, _ in self._slices():
            part.seed(None if seed is None else seed + int(lo))
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def reset(self) -> VecEnvObs:
        return np.concatenate([part.reset() for part in self.parts])

    def step_async(self, actions: np.ndarray) -> None:
        for part, lo, hi in self._slices():
            part.step_async(actions[lo:hi])

    def step_wait(self) -> VecEnvStepReturn:
        results = [part.step_wait() for part in self.parts]
        infos: list[dict[str, Any]] = []
        for game, (_, _, _, part_infos) in zip(self.games, results, strict=True):
            infos.extend({**info, "game": game} for info in part_infos)
        obs, rewards, dones = (np.concatenate([r[k] for r in results]) for k in range(3))
        return obs, rewards, dones, infos

    def close(self) -> None:
        for part in self.parts:
            part.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [image for part in self.parts for image in part.get_images()]

    def _each(self, indices) -> list[tuple[VecEnv, list[int]]]:
        """``(part, its own indices)`` for the whole's ``indices``."""
        chosen = self._get_indices(indices)
        return [(part, [i - int(lo) for i in chosen if lo <= i < hi]) for part, lo, hi in self._slices()]

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [v for part, own in self._each(indices) if own for v in part.get_attr(attr_name, own)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        for part, own in self._each(indices):
            if own:
                part.set_attr(attr_name, value, own)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return [v for part, own in self._each(indices) if own
                for v in part.env_method(method_name, *method_args, indices=own, **method_kwargs)]  # fmt: skip

    def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
        return [v for part, own in self._each(indices) if own for v in part.env_is_wrapped(wrapper_class, own)]
