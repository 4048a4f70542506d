"""What a new user meets first: their own SB3 model with a zoo extractor, devices, zoo folders,
the command line's small promises."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from tests.conftest import crash_after_checkpoint, run_cli
from zoo_rl.envs import make_atari_vec_env
from zoo_rl.errors import ZooWarning
from zoo_rl.rl import ZooNatureCNN, atari_hyperparams, prepare_zoo
from zoo_rl.rl.zoo.manifest import zoo_paths

LOAD_ELSEWHERE = """
import sys, numpy as np, torch
from stable_baselines3 import PPO
model = PPO.load(sys.argv[1], device="cpu")
obs = torch.as_tensor(np.load(sys.argv[2]))
with torch.no_grad():
    np.save(sys.argv[3], model.policy.extract_features(obs, model.policy.features_extractor).numpy())
"""


def test_a_model_saved_from_user_code_loads_anywhere_without_its_zoo(tiny_zoo, tmp_path):
    zoo_dir = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, zoo_dir)
    env = make_atari_vec_env("Breakout", 2, seed=0)
    zoo = zoo_paths([str(zoo_dir)])
    _, kwargs = atari_hyperparams("ppo", features_extractor_class=ZooNatureCNN,
                                  features_extractor_kwargs=dict(zoo=zoo, lite=True), net_arch=[])  # fmt: skip
    kwargs.update(n_steps=16, batch_size=32)
    model = PPO("CnnPolicy", env, seed=0, device="cpu", **kwargs)
    prepare_zoo(model, "Breakout", seed=0, steps=20)
    model.learn(32)
    model.save(tmp_path / "mine.zip")
    env.close()
    zoo_dir.rename(tmp_path / "zoo-moved-away")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    obs = np.random.default_rng(0).integers(0, 255, size=(3, 4, 84, 84), dtype=np.uint8)
    np.save(tmp_path / "obs.npy", obs)
    done = subprocess.run([sys.executable, "-c", LOAD_ELSEWHERE, tmp_path / "mine.zip", tmp_path / "obs.npy",
                           tmp_path / "features.npy"], cwd=elsewhere, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    model.policy.set_training_mode(False)
    with torch.no_grad():
        ours = model.policy.extract_features(torch.as_tensor(obs), model.policy.features_extractor).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "features.npy"), ours, rtol=1e-5, atol=1e-6)


def test_atari_hyperparams_are_rl_zoos_with_the_users_policy_kwargs():
    n_envs, kwargs = atari_hyperparams("ppo", net_arch=[])
    assert n_envs == 8 and kwargs["n_steps"] == 128 and kwargs["batch_size"] == 256
    assert callable(kwargs["learning_rate"]) and kwargs["learning_rate"](1.0) == pytest.approx(2.5e-4)
    assert kwargs["policy_kwargs"] == {"net_arch": []}


@pytest.mark.parametrize("verb", [["transfer", "Pong", "--method", "scratch", "--steps", 64], ["pretrain", "Pong",
                                  "--steps", 64]])  # fmt: skip
def test_a_device_that_is_not_there_is_refused_before_anything_is_made(verb, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run_cli(*verb, "--device", "cuda", "--out", tmp_path / "out") == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("verb", ["eval", "inspect"])
def test_eval_and_inspect_refuse_a_device_that_is_not_there(verb, tiny_zoo, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    member = next(tiny_zoo.glob("*.zip"))
    argv = {"eval": ["eval", member, "--game", "Breakout"], "inspect": ["inspect", "Breakout", "--zoo", tiny_zoo,
                                                                         "-o", tmp_path / "i.json"]}[verb]  # fmt: skip
    assert run_cli(*argv, "--device", "cuda") == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "i.json").exists()


def test_a_folder_of_agents_without_a_manifest_is_a_zoo_with_a_warning(tiny_zoo, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for zip_file in tiny_zoo.glob("*.zip"):
        shutil.copy(zip_file, bare)
    with pytest.warns(ZooWarning, match="no manifest.json"):
        paths = zoo_paths([str(bare)])
    assert sorted(Path(p).name for p in paths) == sorted(z.name for z in tiny_zoo.glob("*.zip"))


def test_an_agent_the_manifest_does_not_list_is_named_in_a_warning(tiny_zoo, tmp_path):
    zoo = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, zoo)
    shutil.copy(next(zoo.glob("*.zip")), zoo / "stray_agent.zip")
    with pytest.warns(ZooWarning, match="stray_agent.zip"):
        paths = zoo_paths([str(zoo)])
    assert "stray_agent.zip" not in {Path(p).name for p in paths}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo_paths([str(tiny_zoo)])  # a zoo whose manifest lists every zip: nothing to say


def test_a_zoo_run_says_what_its_start_chose_and_that_the_target_is_in_the_zoo(tiny_zoo, tiny_hyperparams, tmp_path,
                                                                              capsys):  # fmt: skip
    assert run_cli("transfer", "Breakout", "--method", "lite", "--zoo", tiny_zoo, "--steps", 64, "--n-envs", 1,
                   "--hyperparams", tiny_hyperparams, "--out", tmp_path, "--eval-episodes", 1) == 0  # fmt: skip
    start = json.loads((tmp_path / "Breakout_lite_ppo_s0" / "start.json").read_text())
    assert start["target_in_zoo"] == ["breakout_ppo_s0"]
    out = capsys.readouterr().out
    assert start["reference"] in out and start["why"] in out


def test_version_is_the_installed_packages(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        run_cli("--version")
    assert exit_.value.code == 0 and version("zoo-rl") in capsys.readouterr().out


def test_the_progress_bar_of_a_resumed_run_ends_at_its_budget(tiny_hyperparams, tmp_path, monkeypatch):
    from zoo_rl.rl.training import callbacks

    seen = []
    real = callbacks.ProgressBar._on_training_end

    def record(bar):
        seen.append((bar._bar.n, bar._bar.total))
        real(bar)

    with crash_after_checkpoint(monkeypatch):
        run_cli("pretrain", "Breakout", "--steps", 300, "--checkpoint-freq", 128, "--hyperparams", tiny_hyperparams,
                "--out", tmp_path, "--eval-episodes", 1)  # fmt: skip
    monkeypatch.setattr(callbacks.ProgressBar, "_on_training_end", record)
    assert run_cli("resume", tmp_path / "Breakout_ppo_s0") == 0
    assert seen == [(300, 300)]
