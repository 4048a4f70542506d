"""The two Atari backends: same observations, same full-game score bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from zoo_rl.envs import BACKENDS, AtariSettings, UnknownGameError, gym_id, make_atari_vec_env, rom_id


@pytest.mark.parametrize(
    ("name", "rom"),
    [("Pong", "pong"), ("ALE/Pong-v5", "pong"), ("PongNoFrameskip-v4", "pong"), ("MsPacman", "ms_pacman"),
     ("space_invaders", "space_invaders")],
)  # fmt: skip
def test_game_names(name, rom):
    assert rom_id(name) == rom


def test_unknown_game_suggests_close_names():
    with pytest.raises(UnknownGameError, match="unknown Atari game 'Breakut'; did you mean Breakout"):
        rom_id("Breakut")
    assert gym_id("breakout") == "ALE/Breakout-v5"


def play(backend: str, training: bool, steps: int = 700, n_envs: int = 2):
    env = make_atari_vec_env("Breakout", n_envs, 0, backend=backend, training=training)
    obs = env.reset()
    rng = np.random.default_rng(0)
    totals = np.zeros(n_envs)
    episodes, dones, all_rewards = [], 0, []
    first_obs = obs
    for _ in range(steps):
        obs, rewards, done, infos = env.step(rng.integers(0, env.action_space.n, n_envs))
        totals += rewards
        all_rewards.extend(rewards.tolist())
        dones += int(done.sum())
        for i, info in enumerate(infos):
            if done[i]:
                assert info["terminal_observation"].shape == (4, 84, 84)
            if "episode" in info:
                episodes.append((info["episode"]["r"], totals[i], info["episode"]["l"]))
                totals[i] = 0.0
    env.close()
    return first_obs, episodes, dones, np.array(all_rewards)


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluation_scores_are_raw_full_games(backend):
    obs, episodes, dones, _ = play(backend, training=False)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert len(episodes) >= 2 and dones == len(episodes)  # done only at game over
    for score, summed, frames in episodes:
        assert score == pytest.approx(summed)  # the logged score is the sum of raw rewards
        assert frames > 4 * 100  # a full Breakout game of random play: five lives


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_clips_rewards_and_ends_on_life_loss(backend):
    _, episodes, dones, rewards = play(backend, training=True)
    assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
    assert len(episodes) >= 1 and dones >= 4 * len(episodes)  # five lives per game


def test_backends_give_equally_scaled_observations():
    a, *_ = play("ale_vector", training=False, steps=1)
    b, *_ = play("sb3", training=False, steps=1)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert abs(float(a.mean()) - float(b.mean())) < 0.1 * float(b.mean())
    assert a.max() <= 255 and abs(int(a.max()) - int(b.max())) < 40


def test_settings_are_validated():
    with pytest.raises(ValueError, match="sticky_actions must be in"):
        AtariSettings(sticky_actions=1.5)
    with pytest.raises(ValueError, match="n_envs must be >= 1"):
        make_atari_vec_env("Pong", 0, 0)
