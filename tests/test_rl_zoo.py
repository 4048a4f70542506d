"""RL Baselines3 Zoo trains a policy with the zoo extractor from a --conf-file, and the model it
saves loads back with plain SB3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo_rl.rl import ZooNatureCNN
from zoo_rl.rl.manifest import zoo_paths

pytest.importorskip("rl_zoo3", reason="the rl-zoo extra is installed by scripts/test.sh")
ROOT = Path(__file__).resolve().parents[1]


def test_shipped_conf_file_is_rl_zoo_ppo_with_the_shipped_zoo(monkeypatch):
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec((ROOT / "configs" / "rl_zoo_ppo.py").read_text(), namespace)  # what RL Zoo does with a .py conf file
    atari = namespace["hyperparams"]["atari"]
    assert atari["policy_kwargs"]["features_extractor_class"] is ZooNatureCNN
    assert atari["policy_kwargs"]["features_extractor_kwargs"]["zoo"] == zoo_paths(["agents"])
    assert atari["n_steps"] == 128 and atari["learning_rate"] == "lin_2.5e-4" and atari["frame_stack"] == 4


def test_rl_zoo_trains_with_the_zoo_extractor_and_the_model_loads_back(tiny_zoo, tiny_hyperparams, tmp_path):
    conf = tmp_path / "zoo_conf.py"
    conf.write_text(
        "from zoo_rl.rl.rl_zoo import rl_zoo_hyperparams\n"
        f"hyperparams = rl_zoo_hyperparams('ppo', zoo=[{str(tiny_zoo)!r}], lite=True, n_timesteps=256,\n"
        f"                                 hyperparams_file={str(tiny_hyperparams)!r})\n"
    )
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "BreakoutNoFrameskip-v4",
               "--conf-file", str(conf), "-f", str(tmp_path / "logs"), "--seed", "0", "--eval-freq", "-1",
               "--vec-env", "dummy"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (saved,) = (tmp_path / "logs" / "ppo").glob("BreakoutNoFrameskip-v4_*/BreakoutNoFrameskip-v4.zip")

    from stable_baselines3 import PPO

    model = PPO.load(saved, device="cpu")
    extractor = model.policy.features_extractor
    assert isinstance(extractor, ZooNatureCNN) and extractor.member_names[:2] == ["breakout_ppo_s0", "pong_dqn_s0"]
    assert model.num_timesteps >= 256
    obs = np.random.default_rng(0).integers(0, 255, (3, 4, 84, 84), dtype=np.uint8)
    again = PPO.load(saved, device="cpu")
    with torch.no_grad():
        a = model.policy.predict_values(model.policy.obs_to_tensor(obs)[0])
        b = again.policy.predict_values(again.policy.obs_to_tensor(obs)[0])
    assert torch.equal(a, b) and a.shape == (3, 1)
