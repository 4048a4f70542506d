"""A zoo with a common ancestor: multi-game pretraining and specialists started from a parent (--init)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.torch_layers import NatureCNN

from tests.conftest import run_cli
from zoo_rl.envs import AtariSettings, full_action_indices, make_atari_vec_env
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.methods import nature_cnns
from zoo_rl.rl.report.curves import curve_table
from zoo_rl.rl.training.models import build_model
from zoo_rl.rl.zoo.members import nature_cnn_weights, read_policy_state_dict, sha256


@pytest.fixture(scope="session")
def ancestor(tmp_path_factory, tiny_hyperparams) -> Path:
    """A PPO agent pretrained on Pong and Breakout at once, in a zoo directory."""
    root = tmp_path_factory.mktemp("family")
    rc = run_cli("pretrain", "Pong", "Breakout", "--steps", 256, "--n-envs", 2, "--out", root / "runs",
                 "--eval-episodes", 1, "--hyperparams", tiny_hyperparams, "--zoo-dir", root / "agents")  # fmt: skip
    assert rc == 0
    return root


def test_multi_game_pretraining_trains_one_agent_for_every_game(ancestor):
    run = ancestor / "runs" / "Pong+Breakout_ppo_s0"
    config = RunConfig.load(run / "config.yaml")
    assert config.games == ["Pong", "Breakout"] and config.env["full_action_space"]
    assert read_policy_state_dict(run / "model.zip")["action_net.weight"].shape[0] == 18
    evaluation = json.loads((run / "eval.json").read_text())
    assert set(evaluation["per_game"]) == {"Pong", "Breakout"}
    (entry,) = json.loads((ancestor / "agents" / "manifest.json").read_text())["agents"]
    assert entry["game"] == "Pong+Breakout" and entry["full_action_space"] is True
    assert set(entry["eval"]["per_game"]) == {"Pong", "Breakout"}
    assert {row["game"] for row in curve_table([run], bins=4)} == {"Pong", "Breakout"}


def test_multi_game_env_tells_each_env_its_game():
    settings = AtariSettings(full_action_space=True)
    env = make_atari_vec_env("Pong+Breakout", 4, seed=3, settings=settings)
    try:
        assert env.action_space.n == 18 and env.num_envs == 4
        obs = env.reset()
        assert obs.shape == (4, 4, 84, 84)
        obs, rewards, dones, infos = env.step(np.zeros(4, dtype=np.int64))
        assert [info["game"] for info in infos] == ["Pong", "Pong", "Breakout", "Breakout"]
        assert rewards.shape == dones.shape == (4,)
    finally:
        env.close()


def test_a_child_starts_from_its_parents_weights_exactly(ancestor):
    parent = ancestor / "agents" / "pong+breakout_ppo_s0.zip"
    config = RunConfig(command="pretrain", game="Breakout", algo="ppo", steps=64, seed=1, method="finetune",
                       source=str(parent), n_envs=1, hyperparams={"n_steps": 32, "batch_size": 32})  # fmt: skip
    env = make_atari_vec_env("Breakout", 1, seed=1, settings=config.settings)
    try:
        model = build_model(config, env)
    finally:
        env.close()
    trunk = nature_cnn_weights(parent)
    for cnn in nature_cnns(model):
        for key, value in cnn.state_dict().items():
            assert torch.equal(value, trunk[key]), key
    state = read_policy_state_dict(parent)
    rows = full_action_indices("Breakout")
    assert torch.equal(model.policy.action_net.weight.data, state["action_net.weight"][rows])
    assert torch.equal(model.policy.value_net.weight.data, state["value_net.weight"])


def test_pretrain_init_records_the_parent_in_the_manifest(ancestor, tiny_hyperparams, tmp_path):
    parent = ancestor / "agents" / "pong+breakout_ppo_s0.zip"
    rc = run_cli("pretrain", "Pong", "--init", parent, "--steps", 64, "--n-envs", 1, "--out", tmp_path / "runs",
                 "--eval-episodes", 1, "--hyperparams", tiny_hyperparams, "--zoo-dir", tmp_path / "family")  # fmt: skip
    assert rc == 0
    (entry,) = json.loads((tmp_path / "family" / "manifest.json").read_text())["agents"]
    assert entry["parent"] == {"file": parent.name, "sha256": sha256(parent)}
    assert "full_action_space" not in entry  # the specialist plays its own game's actions


def other_shaped_trunk(tmp: Path) -> Path:
    cnn = NatureCNN(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), features_dim=256)
    torch.save({f"features_extractor.{k}": v for k, v in cnn.state_dict().items()}, tmp / "policy.pth")
    with zipfile.ZipFile(tmp / "wide.zip", "w") as z:
        z.write(tmp / "policy.pth", "policy.pth")
    return tmp / "wide.zip"


def corrupt_parent(tmp: Path) -> Path:
    (tmp / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    return tmp / "broken.zip"


BAD = {
    "parent trunk of another shape": (lambda t: ["Pong", "--init", other_shaped_trunk(t)], "has shape (256, 3136)"),
    "missing parent": (lambda t: ["Pong", "--init", t / "gone.zip"], "gone.zip: no such file"),
    "corrupt parent": (lambda t: ["Pong", "--init", corrupt_parent(t)], "broken.zip: not a zip file"),
    "unknown game in a multi-game list": (lambda t: ["Pong", "Breakot"], "unknown Atari game 'Breakot'"),
    "a game twice": (lambda t: ["Pong", "Breakout", "Pong"], "Pong named twice"),
    "a game without reference scores": (lambda t: ["Pong", "Carnival"], "no random/human reference score for Carnival"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_pretraining_input_is_one_line_and_makes_nothing(case, tiny_hyperparams, tmp_path, capsys):
    make, expected = BAD[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv = ["pretrain", *make(inputs), "--steps", 64, "--hyperparams", tiny_hyperparams, "--out", tmp_path / "out",
            "--zoo-dir", tmp_path / "zoo"]  # fmt: skip
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "zoo").exists()


def nature_cnn_zip(path: Path, seed: int) -> Path:
    """A zip holding only a freshly initialised NatureCNN, as an SB3 policy's extractor."""
    torch.manual_seed(seed)
    cnn = NatureCNN(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8))
    cnn.apply(lambda m: torch.nn.init.orthogonal_(m.weight, np.sqrt(2)) if hasattr(m, "weight") else None)
    torch.save({f"features_extractor.{k}": v for k, v in cnn.state_dict().items()}, path.with_suffix(".pth"))
    with zipfile.ZipFile(path, "w") as z:
        z.write(path.with_suffix(".pth"), "policy.pth")
    return path


def linearity(members: list[Path]) -> list[float]:
    from zoo_rl.rl.zoo.extractor import ZooNatureCNN
    from zoo_rl.rl.zoo.random_play import random_play

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    frames = random_play("Breakout", AtariSettings(), seed=0, n_envs=2, steps=120, every=2)[0]
    return ZooNatureCNN(space, [str(m) for m in members]).linearity_errors(frames, [(0, 1)])[0, 1]


def test_linearity_error_is_zero_for_one_network_twice(tmp_path):
    one = nature_cnn_zip(tmp_path / "a.zip", seed=0)
    twin = tmp_path / "twin.zip"
    twin.write_bytes(one.read_bytes())
    assert max(linearity([one, twin])) < 1e-5


@pytest.fixture(scope="module")
def specialists(ancestor, tiny_hyperparams) -> list[Path]:
    """Two short fine-tunes of the ancestor (Pong, Breakout), in a zoo directory with their manifest."""
    children = []
    for game in ("Pong", "Breakout"):
        rc = run_cli("pretrain", game, "--init", ancestor / "agents" / "pong+breakout_ppo_s0.zip", "--steps", 256,
                     "--n-envs", 1, "--out", ancestor / "specialist-runs", "--eval-episodes", 1, "--hyperparams",
                     tiny_hyperparams, "--zoo-dir", ancestor / "specialists")  # fmt: skip
        assert rc == 0
        children.append(ancestor / "specialists" / f"{game.lower()}_ppo_s0.zip")
    return children


def test_linearity_error_is_large_for_unrelated_networks_and_small_for_fine_tunes_of_one_parent(
    ancestor, specialists, tmp_path
):
    unrelated = linearity([nature_cnn_zip(tmp_path / "a.zip", seed=0), nature_cnn_zip(tmp_path / "b.zip", seed=1)])
    parent = ancestor / "agents" / "pong+breakout_ppo_s0.zip"
    first_layer = "cnn.0.weight"
    assert not torch.equal(nature_cnn_weights(specialists[0])[first_layer], nature_cnn_weights(parent)[first_layer])
    related = linearity(specialists)
    assert min(unrelated[1:]) > 0.3, unrelated
    assert max(related) < 0.05, related


def test_a_mixed_start_shares_the_prior_among_the_sources_mixable_with_the_reference(specialists, tmp_path):
    """With ``start_mixed``, the reference's 0.9 is shared by it and the other fine-tune of its
    ancestor; an unrelated network and the fresh member share the rest. Without it, the start
    puts 0.9 on the reference alone."""
    from zoo_rl.core import zoo_layers
    from zoo_rl.rl.zoo.extractor import ZooNatureCNN
    from zoo_rl.rl.zoo.manifest import member_game
    from zoo_rl.rl.zoo.recipes import recipe
    from zoo_rl.rl.zoo.start import start_zoo

    zoo = [str(p) for p in (*specialists, nature_cnn_zip(tmp_path / "stranger.zip", seed=5))]
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    coefficients = {}
    for mixed in (False, True):
        torch.manual_seed(0)
        extractor = ZooNatureCNN(space, zoo, recipe=recipe(start_mixed=mixed))
        games = {Path(p).stem: member_game(p) for p in zoo[:2]}
        start = start_zoo([extractor], "Breakout", AtariSettings(), seed=1, n_envs=2, steps=60, match_every=2,
                          reference_prior=0.9, mixed=mixed, games=games, files=extractor.member_files)  # fmt: skip
        assert start["reference"] == "breakout_ppo_s0", start["why"]
        layer = next(iter(zoo_layers(extractor.zoo).values()))
        coefficients[mixed] = dict(zip(extractor.member_names, layer.ema.tolist(), strict=True)), start
    plain, start = coefficients[False]
    assert start["starts_on"] == ["breakout_ppo_s0"] and start["mix_errors"] == {}
    assert plain["breakout_ppo_s0"] == pytest.approx(0.9) and plain["pong_ppo_s0"] == pytest.approx(0.1 / 3)
    mixed, start = coefficients[True]
    assert start["starts_on"] == ["breakout_ppo_s0", "pong_ppo_s0"]
    assert start["mix_errors"]["pong_ppo_s0"] < 0.05 < 0.3 < start["mix_errors"]["stranger"]
    assert mixed["breakout_ppo_s0"] == pytest.approx(0.45) and mixed["pong_ppo_s0"] == pytest.approx(0.45)
    assert mixed["stranger"] == pytest.approx(0.05) and sum(mixed.values()) == pytest.approx(1.0)


def test_matching_moves_the_fine_tunes_of_one_parent_together(specialists, tmp_path):
    """Matched to an unrelated reference, two fine-tunes of one parent get one permutation, so
    their linearity error stays what it was; matched to one of them, the other is not moved."""
    from zoo_rl.core import zoo_layers
    from zoo_rl.rl.zoo.extractor import ZooNatureCNN
    from zoo_rl.rl.zoo.matching import aligned_groups
    from zoo_rl.rl.zoo.random_play import random_play

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    frames = random_play("Breakout", AtariSettings(), seed=0, n_envs=2, steps=120, every=2)[0]
    zoo = [str(nature_cnn_zip(tmp_path / "stranger.zip", seed=5)), *map(str, specialists)]
    torch.manual_seed(0)
    extractor = ZooNatureCNN(space, zoo)  # members: stranger, pong, breakout, the fresh member
    layers = list(zoo_layers(extractor.zoo).values())
    assert [aligned_groups(layer) for layer in layers] == [[[0], [1, 2], [3]]] * len(layers)
    before = extractor.linearity_errors(frames, [(1, 2)])[1, 2]
    siblings = [layer.weights.detach()[1:3].clone() for layer in layers]
    extractor.match_channels(frames, reference=0)
    assert extractor.linearity_errors(frames, [(1, 2)])[1, 2] == pytest.approx(before, abs=1e-4)
    assert any(not torch.equal(layer.weights[1:3], w) for layer, w in zip(layers, siblings, strict=True))

    torch.manual_seed(0)
    extractor = ZooNatureCNN(space, zoo)
    layers = list(zoo_layers(extractor.zoo).values())
    untouched = [layer.weights.detach()[1:3].clone() for layer in layers]
    stranger = [layer.weights.detach()[0].clone() for layer in layers]
    extractor.match_channels(frames, reference=2)
    assert all(torch.equal(layer.weights[1:3], w) for layer, w in zip(layers, untouched, strict=True))
    assert any(not torch.equal(layer.weights[0], w) for layer, w in zip(layers, stranger, strict=True))
