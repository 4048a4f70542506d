"""ale-py's C++ ``AtariVectorEnv`` as a Stable-Baselines3 ``VecEnv``.

The C++ environment does frame skip with max-pooling, 84x84 grayscale, frame
stacking, noop and fire resets itself, about 2.8x faster than SB3's Python wrappers
on 2 cores.  Episodic life and reward clipping are done here rather than in C++ so that
the score this class reports is the raw score of the full game (all lives, unclipped),
exactly like SB3's ``Monitor`` placed under the ``AtariWrapper``:
``info["episode"] = {"r": score, "l": emulator frames, "t": seconds}`` at game over
only (SB3's Monitor sits below the frame skip, so it counts frames too).

In games whose action 1 is FIRE, the action after every lost life is replaced by FIRE
(as SB3's FireResetEnv does on each episodic-life reset): otherwise a greedy agent that
never fires can stall a Breakout game until the 108K-frame limit.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn


class AleVecEnv(VecEnv):
    """``num_envs`` Atari games stepped by ale-py's vector interface, seen as an SB3 VecEnv."""

    def __init__(
        self,
        rom: str,
        num_envs: int,
        *,
        frame_stack: int = 4,
        frame_skip: int = 4,
        screen_size: int = 84,
        noop_max: int = 30,
        sticky_actions: float = 0.25,
        terminal_on_life_loss: bool = False,
        clip_reward: bool = False,
        max_episode_frames: int = 108_000,
        full_action_space: bool = False,
        num_threads: int = 0,
    ):
        from ale_py.env import AtariEnv
        from ale_py.vector_env import AtariVectorEnv

        self._env = AtariVectorEnv(
            rom,
            num_envs,
            num_threads=num_threads,
            repeat_action_probability=sticky_actions,
            max_num_frames_per_episode=max_episode_frames,
            full_action_space=full_action_space,
            autoreset_mode="SameStep",
            img_height=screen_size,
            img_width=screen_size,
            stack_num=frame_stack,
            frameskip=frame_skip,
            noop_max=noop_max,
            episodic_life=False,
            reward_clipping=False,
        )
        self.terminal_on_life_loss = terminal_on_life_loss
        self.clip_reward = clip_reward
        self.frame_skip = frame_skip
        self.render_mode = None
        super().__init__(num_envs, self._env.single_observation_space, self._env.single_action_space)
        assert isinstance(self.action_space, spaces.Discrete)
        meanings = AtariEnv(rom).get_action_meanings()  # the game's own set: FIRE is action 1 in the full set too
        self._fire_after_life_loss = len(meanings) >= 3 and meanings[1] == "FIRE"
        self._pending_fire = np.zeros(num_envs, dtype=bool)
        self._actions = np.zeros(num_envs, dtype=np.int64)
        self._lives = np.zeros(num_envs, dtype=np.int64)
        self._scores = np.zeros(num_envs, dtype=np.float64)
        self._lengths = np.zeros(num_envs, dtype=np.int64)
        self._t0 = time.time()

    def reset(self) -> VecEnvObs:
        seeds = self._seeds
        seed = None if seeds[0] is None else np.asarray(seeds, dtype=np.int64)
        obs, info = self._env.reset(seed=seed)
        self._reset_seeds()
        self._lives[:] = info["lives"]
        self._pending_fire[:] = False
        self._scores[:] = 0.0
        self._lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs).copy()
        self._actions[self._pending_fire] = 1

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, terminated, truncated, info = self._env.step(self._actions)
        reward = reward.astype(np.float64)
        self._scores += reward
        self._lengths += 1
        game_over = terminated | truncated
        lives = info["lives"].astype(np.int64)
        life_lost = (lives < self._lives) & ~game_over
        done = game_over | life_lost if self.terminal_on_life_loss else game_over
        infos: list[dict[str, Any]] = [{"lives": int(lives[i])} for i in range(self.num_envs)]
        now = time.time()
        for i in np.flatnonzero(done):
            # On game over the C++ env has already reset (same-step autoreset): the final
            # observation comes in info; on a life loss the game goes on.
            infos[i]["terminal_observation"] = info["final_obs"][i] if game_over[i] else obs[i].copy()
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        for i in np.flatnonzero(game_over):
            infos[i]["episode"] = {
                "r": float(self._scores[i]),
                "l": int(self._lengths[i] * self.frame_skip),
                "t": round(now - self._t0, 6),
            }
            self._scores[i] = 0.0
            self._lengths[i] = 0
        self._lives = lives
        self._pending_fire = life_lost & self._fire_after_life_loss
        rewards = np.sign(reward) if self.clip_reward else reward
        return obs, rewards.astype(np.float32), done, infos

    def close(self) -> None:
        self._env.close()

    # The VecEnv attribute protocol: the C++ vector env has no per-env Python objects.
    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(self._get_indices(indices))
        raise AttributeError(f"AleVecEnv has no per-environment attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"AleVecEnv cannot set per-environment attribute {attr_name!r}")

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        raise AttributeError(f"AleVecEnv has no per-environment method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
