"""Evaluation on full games: raw scores, all lives, no reward clipping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from zoo_rl.envs import AtariSettings, make_atari_vec_env
from zoo_rl.errors import ConfigError

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
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
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


def record_games(
    act: Actor,
    game: str,
    episodes: int,
    directory: Path,
    *,
    seed: int = 10_000,
    settings: AtariSettings | None = None,
) -> list[tuple[Path, float, int]]:
    """Play ``episodes`` full games with ``act`` and write each as an MP4 in ``directory``
    (``<game>-<k>.mp4``: the RGB screen the agent acted on at every agent step, played at
    the emulator's real speed); return (path, score, video frames) per game.

    One game at a time on the sb3 backend (its emulators keep their screens); the agent sees
    the same 84x84 stacked frames as on the default backend.  Needs the ``video`` extra
    (imageio with its ffmpeg wheel).
    """
    try:
        import imageio.v3 as iio
    except ImportError as e:  # an optional extra
        raise ImportError("recording video needs the video extra: pip install 'zoo-rl[video]'") from e
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    settings = settings or AtariSettings()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fps = 60 / settings.frame_skip  # the Atari runs at 60 frames per second
    env = make_atari_vec_env(game, 1, seed, settings, backend="sb3", training=False, render=True)
    games: list[tuple[Path, float, int]] = []
    try:
        obs = env.reset()
        frames = []
        while len(games) < episodes:
            frames.append(env.get_images()[0])
            obs, _, dones, infos = env.step(act(obs))
            if dones[0]:  # the env has reset: obs is the next game's first frame
                path = directory / f"{game}-{len(games)}.mp4"
                # macro_block_size=1: keep the 160x210 screen instead of resizing it to multiples of 16
                iio.imwrite(path, np.stack(frames), fps=fps, codec="libx264", macro_block_size=1)
                games.append((path, float(infos[0]["episode"]["r"]), len(frames)))
                frames = []
    finally:
        env.close()
    return games
