"""Bad input: one line naming the file or key, exit status 2, nothing half-made, nothing run.

Every case goes through the real command line on a target run that would otherwise train.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.torch_layers import NatureCNN

from tests.conftest import run_cli
from zoo_rl.errors import CheckpointError
from zoo_rl.rl import ZooFileError, nature_cnn_weights
from zoo_rl.rl.training.checkpoint import CHECKPOINT, load_checkpoint
from zoo_rl.rl.zoo.manifest import zoo_paths


class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes], drop: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            if item not in drop:
                zout.writestr(item, replace.get(item, zin.read(item)))
        for item, data in replace.items():
            if item not in zin.namelist():
                zout.writestr(item, data)
    return dst


def agent(tiny_zoo: Path) -> Path:
    return Path(zoo_paths([str(tiny_zoo)])[0])


def not_a_zip(zoo: Path, tmp: Path) -> dict:
    (tmp / "agent.zip").write_text("hello")
    return {"--zoo": [tmp / "agent.zip"]}


def truncated_zip(zoo: Path, tmp: Path) -> dict:
    data = agent(zoo).read_bytes()
    (tmp / "cut.zip").write_bytes(data[: len(data) // 2])
    return {"--zoo": [tmp / "cut.zip"]}


def zip_without_weights(zoo: Path, tmp: Path) -> dict:
    return {"--zoo": [rewrite_zip(agent(zoo), tmp / "nopolicy.zip", {}, drop=("policy.pth",))]}


def mlp_policy_agent(zoo: Path, tmp: Path) -> dict:
    PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=8, batch_size=8, device="cpu").save(tmp / "mlp.zip")
    return {"--zoo": [agent(zoo), tmp / "mlp.zip"]}


def other_frame_stack(zoo: Path, tmp: Path) -> dict:
    cnn = NatureCNN(gym.spaces.Box(0, 255, (3, 84, 84), np.uint8))
    torch.save({f"features_extractor.{k}": v for k, v in cnn.state_dict().items()}, tmp / "policy.pth")
    with zipfile.ZipFile(tmp / "rgb.zip", "w") as z:
        z.write(tmp / "policy.pth", "policy.pth")
    return {"--zoo": [agent(zoo), tmp / "rgb.zip"]}


def same_agent_twice(zoo: Path, tmp: Path) -> dict:
    return {"--zoo": [agent(zoo), agent(zoo)]}


def empty_zoo(zoo: Path, tmp: Path) -> dict:
    (tmp / "empty").mkdir()
    (tmp / "empty" / "manifest.json").write_text('{"agents": []}')
    return {"--zoo": [tmp / "empty"]}


def hyperparams_file(tmp: Path, entry: dict) -> Path:
    path = tmp / "hp.yaml"
    path.write_text(yaml.safe_dump({"ppo": entry}))
    return path


def unknown_hyperparameter(zoo: Path, tmp: Path) -> dict:
    return {"--hyperparams": hyperparams_file(tmp, {"n_envs": 1, "hyperparams": {"n_stepz": 32}})}


def unknown_algo_entry_key(zoo: Path, tmp: Path) -> dict:
    return {"--hyperparams": hyperparams_file(tmp, {"n_envs": 1, "hyperparam": {"n_steps": 32}})}


def bad_schedule(zoo: Path, tmp: Path) -> dict:
    return {"--hyperparams": hyperparams_file(tmp, {"n_envs": 1, "hyperparams": {"learning_rate": "lin_abc"}})}


def rejected_hyperparameter_value(zoo: Path, tmp: Path) -> dict:
    return {"--hyperparams": hyperparams_file(tmp, {"n_envs": 1, "hyperparams": {"n_steps": 0}})}


BAD = {
    "not a zip": (not_a_zip, "agent.zip: not a zip file"),
    "truncated zip": (truncated_zip, "cut.zip: not a zip file"),
    "zip without weights": (zip_without_weights, "nopolicy.zip: no policy.pth in the zip"),
    "MlpPolicy agent": (mlp_policy_agent, "mlp.zip: not a NatureCNN policy"),
    "other frame stack": (other_frame_stack, "rgb.zip: the agent takes 3 input channels"),
    "same agent twice": (same_agent_twice, "is twice in the zoo"),
    "empty zoo": (empty_zoo, "method 'lite' needs a zoo"),
    "unknown game": (lambda z, t: {"--target": "Pongg"}, "unknown Atari game 'Pongg'"),
    "unknown method": (lambda z, t: {"--method": "zootuning"}, "unknown method 'zootuning'"),
    "unknown method option": (lambda z, t: {"--method-option": "gates=2"}, "unknown option(s) ['gates']"),
    "method option out of range": (
        lambda z, t: {"--method-option": "gate_temperature=0"},
        "recipe transfer: gate_temperature must be > 0, got 0",
    ),
    "scratch start without a fresh member": (
        lambda z, t: {"--method-option": ("scratch_member=false", "scratch_start=true")},
        "method option scratch_start needs the fresh member (scratch_member=true)",
    ),
    "unknown hyperparameter": (unknown_hyperparameter, "hp.yaml: ppo.hyperparams: unknown key(s) ['n_stepz']"),
    "unknown algo entry key": (unknown_algo_entry_key, "hp.yaml: ppo: unknown key(s) ['hyperparam']"),
    "bad schedule": (bad_schedule, "learning_rate: expected lin_<number>, got 'lin_abc'"),
    "hyperparameter value": (rejected_hyperparameter_value, "cannot build the ppo model from its hyperparameters"),
    "negative steps": (lambda z, t: {"--steps": -5}, "steps must be >= 1, got -5"),
    "zero environments": (lambda z, t: {"--n-envs": 0}, "n_envs must be >= 1, got 0"),
    "sticky actions out of range": (lambda z, t: {"--sticky-actions": 1.5}, "sticky_actions must be in [0, 1)"),
    "unknown env preset": (lambda z, t: {"--env-preset": "fast"}, "no env preset 'fast'"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_exits_2_with_one_line_and_makes_nothing(case, tiny_zoo, tiny_hyperparams, tmp_path, capsys):
    make, expected = BAD[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    options = {"--target": "Breakout", "--zoo": [agent(tiny_zoo)], "--steps": 64, "--n-envs": 1,
               "--hyperparams": tiny_hyperparams, **make(tiny_zoo, inputs)}  # fmt: skip
    argv = ["transfer", options.pop("--target"), "--out", tmp_path / "out"]
    for key, value in options.items():  # a list: the values of one flag; a tuple: the flag repeated
        if isinstance(value, tuple):
            argv += [x for v in value for x in (key, v)]
        else:
            argv += [key, *value] if isinstance(value, list) else [key, value]

    assert run_cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_output_dir_holding_a_different_run_is_refused_and_kept(tiny_hyperparams, tmp_path, capsys):
    argv = ["pretrain", "Breakout", "--steps", 64, "--hyperparams", tiny_hyperparams, "--out", tmp_path]
    run_dir = tmp_path / "Breakout_ppo_s0"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    assert run_cli(*argv) == 2 and "not a zoo-rl run directory" in capsys.readouterr().err
    assert (run_dir / "notes.txt").read_text() == "mine"

    (run_dir / "notes.txt").unlink()
    assert run_cli("pretrain", "Breakout", "--steps", 96, "--hyperparams", tiny_hyperparams, "--out", tmp_path) == 0
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert run_cli(*argv) == 2
    assert "already holds a different run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_malicious_pickle_outside_the_weights_is_never_run(tiny_zoo, tmp_path):
    marker = tmp_path / "pwned"
    evil = rewrite_zip(agent(tiny_zoo), tmp_path / "evil.zip", {"data": pickle.dumps(Payload(marker)), "x.pkl": b"x"})
    weights = nature_cnn_weights(evil)
    assert weights["cnn.0.weight"].shape == (32, 4, 8, 8)
    assert not marker.exists()


def test_malicious_pickle_in_the_weights_is_refused(tiny_zoo, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"x": Payload(marker)}, tmp_path / "evil.pth")
    evil = rewrite_zip(agent(tiny_zoo), tmp_path / "evil.zip", {"policy.pth": (tmp_path / "evil.pth").read_bytes()})
    with pytest.raises(ZooFileError, match="not a plain weights file"):
        nature_cnn_weights(evil)
    assert not marker.exists()


def test_malicious_pickle_in_a_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": 1, "policy": Payload(marker)}, tmp_path / CHECKPOINT)
    with pytest.raises(CheckpointError, match="not a readable zoo-rl checkpoint"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / CHECKPOINT).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: not a readable zoo-rl checkpoint"):
        load_checkpoint(tmp_path)


def test_main_reports_user_errors_in_one_line_and_lets_bugs_crash(tmp_path, monkeypatch, capsys):
    """A ZooRlError is one line and exit 2; any other exception is a bug and keeps its traceback
    (main used to catch every ValueError, so a numpy or torch bug looked like a user error)."""
    from zoo_rl.cli import main

    assert main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo-rl summary: error: ") and err.count("\n") == 1

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr("zoo_rl.rl.report.runs.find_runs", bug)
    with pytest.raises(ValueError, match="could not be broadcast"):
        main(["summary", str(tmp_path)])


@pytest.mark.parametrize("verb", [["transfer"], ["eval"], ["vision", "train"], ["sweep"], ["quickstart"]])
def test_help_shows_the_defaults(verb, capsys):
    """Every option with a default says it in --help (argparse alone only prints the flag)."""
    from zoo_rl.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([*verb, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    sub = parser._subparsers._group_actions[0].choices[verb[0]]
    if len(verb) == 2:
        sub = sub._subparsers._group_actions[0].choices[verb[1]]
    for action in sub._actions:
        default = action.default
        shown = default is not None and default is not False and default not in ([], "==SUPPRESS==")
        if action.option_strings and shown:
            assert f"default: {action.default}" in text or "default" in (action.help or ""), action.dest
