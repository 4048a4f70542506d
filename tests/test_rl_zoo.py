"""RL Baselines3 Zoo trains a policy with the zoo extractor from a --conf-file, and the model it
saves loads back with plain SB3."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo_rl.rl import ZooNatureCNN
from zoo_rl.rl.zoo.manifest import zoo_paths

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
        "from zoo_rl.rl.training.rl_baselines3_zoo import rl_zoo_hyperparams\n"
        f"hyperparams = rl_zoo_hyperparams('ppo', zoo=[{str(tiny_zoo)!r}], lite=True, n_timesteps=256,\n"
        f"                                 hyperparams_file={str(tiny_hyperparams)!r}, start_steps=30)\n"
    )
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "BreakoutNoFrameskip-v4",
               "--conf-file", str(conf), "-f", str(tmp_path / "logs"), "--seed", "0", "--eval-freq", "-1",
               "--vec-env", "dummy"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # the default recipe's start ran before training (zoo_rl.rl.training.rl_baselines3_zoo.ZooStart)
    assert re.search(r"zoo start on BreakoutNoFrameskip-v4: reference \w+", done.stdout)
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


def test_zoo_start_starts_a_fresh_model_once_and_leaves_a_trained_one_alone(tiny_zoo):
    """RL Zoo's ``--trained-agent`` continues a model whose zoo started long ago: the callback
    must not match and restart it again."""
    from stable_baselines3 import PPO

    from zoo_rl.core import zoo_layers
    from zoo_rl.envs import make_atari_vec_env
    from zoo_rl.rl.training.rl_baselines3_zoo import ZooStart

    env = make_atari_vec_env("Breakout", 2, 0)
    policy_kwargs = dict(features_extractor_class=ZooNatureCNN,
                         features_extractor_kwargs=dict(zoo=zoo_paths([str(tiny_zoo)]), lite=True))  # fmt: skip
    model = PPO("CnnPolicy", env, policy_kwargs=policy_kwargs, n_steps=4, batch_size=8, n_epochs=1, device="cpu")
    first = ZooStart(steps=30, reference_prior=0.9, game="Breakout")  # zoo-rl's own env has no gymnasium spec
    model.learn(8, callback=first)
    assert first.start is not None and first.start["reference_prior"] == 0.9
    reference = model.policy.features_extractor.member_names.index(first.start["reference"])
    before = {name: layer.ema.clone() for name, layer in zoo_layers(model.policy.features_extractor.zoo).items()}
    assert all(ema.argmax() == reference for ema in before.values())
    again = ZooStart(steps=30, reference_prior=0.5, game="Breakout")
    model.learn(8, callback=again, reset_num_timesteps=True)
    assert again.start is None
    after = {name: layer.ema for name, layer in zoo_layers(model.policy.features_extractor.zoo).items()}
    assert all(ema[reference] > 0.6 for ema in after.values())  # not restarted at 0.5
    env.close()
