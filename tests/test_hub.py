"""Zoo members from the Hugging Face Hub (``hf://owner/repo``), offline against a cache in the
library's own layout, each run in a fresh process (the library reads its settings at import)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from zoo_rl.rl.zoo.manifest import zoo_paths

pytest.importorskip("huggingface_hub", reason="the hub extra is installed by scripts/test.sh")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cache_agent(cache: Path, repo: str, agent: bytes) -> None:
    """``agent`` as the cache holds a downloaded ``<repo>/<name>.zip`` at COMMIT of main."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    (folder / "snapshots" / COMMIT).mkdir(parents=True)
    (folder / "snapshots" / COMMIT / f"{repo.split('/')[1]}.zip").write_bytes(agent)


def with_policy(agent: Path, change) -> bytes:
    """A copy of the SB3 zip ``agent`` whose policy.pth state dict went through ``change``."""
    out = io.BytesIO()
    with zipfile.ZipFile(agent) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "policy.pth":
                state = change(torch.load(io.BytesIO(data), weights_only=True))
                buffer = io.BytesIO()
                torch.save(state, buffer)
                data = buffer.getvalue()
            dst.writestr(name, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def hub_cache(tiny_zoo, tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("hub")
    breakout = next(tiny_zoo.glob("breakout_ppo_*.zip"))
    cache_agent(cache, "sb3/ppo-BreakoutNoFrameskip-v4", breakout.read_bytes())
    two_frames = with_policy(
        breakout, lambda s: {k: (v[:, :2] if k.endswith("cnn.0.weight") else v) for k, v in s.items()}
    )
    cache_agent(cache, "sb3/ppo-TwoFramesNoFrameskip-v4", two_frames)
    mlp = with_policy(breakout, lambda s: {"mlp_extractor.policy_net.0.weight": torch.zeros(64, 4)})
    cache_agent(cache, "sb3/ppo-CartPole-v1", mlp)
    return cache


def zoo_rl(cache: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "zoo_rl", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_hub_member_trains_and_is_recorded_with_its_commit(hub_cache, tiny_zoo, tiny_hyperparams, tmp_path):
    pong = next(tiny_zoo.glob("pong_dqn_*.zip"))
    done = zoo_rl(hub_cache, "transfer", "Breakout", "--method", "lite", "--zoo", "hf://sb3/ppo-BreakoutNoFrameskip-v4",
                  pong, "--steps", 64, "--n-envs", 1, "--out", tmp_path, "--eval-episodes", 1,
                  "--hyperparams", tiny_hyperparams)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "Breakout_lite_ppo_s0"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["zoo"] == [f"hf://sb3/ppo-BreakoutNoFrameskip-v4@{COMMIT}", str(pong)]
    assert "ppo-BreakoutNoFrameskip-v4" in (run / "start.json").read_text()
    # the pinned member is read back from the cache by the run's own config (eval of the run)
    assert zoo_rl(hub_cache, "eval", run, "--episodes", 1).returncode == 0


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("hf://sb3/ppo-CartPole-v1", "not a NatureCNN policy"),
        ("hf://sb3/ppo-TwoFramesNoFrameskip-v4", "takes 2 input channels (frame stack), the environment gives 4"),
        ("hf://sb3/ppo-NotCachedNoFrameskip-v4", "cannot get ppo-NotCachedNoFrameskip-v4.zip from the Hub"),
        ("hf://no-repo-name", "expected hf://<owner>/<repo>[@<revision>]"),
    ],
)
def test_unusable_hub_members_are_one_line_errors(hub_cache, tiny_hyperparams, tmp_path, member, expected):
    done = zoo_rl(hub_cache, "transfer", "Breakout", "--method", "lite", "--zoo", member, "--steps", 64,
                  "--out", tmp_path, "--hyperparams", tiny_hyperparams)  # fmt: skip
    assert done.returncode == 2
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and member in err and expected in err, err
    assert not list(tmp_path.iterdir())


def test_hub_member_spellings(monkeypatch):
    """``Path()`` folds hf:// into hf:/; both name the same pinned member."""
    monkeypatch.setattr("zoo_rl.rl.zoo.members.hub_download", lambda member: (Path("/c/snapshots/abc/x.zip"), "abc"))
    assert zoo_paths(["hf://sb3/a-B", str(Path("hf://sb3/a-B@main"))]) == ["hf://sb3/a-B@abc", "hf://sb3/a-B@abc"]
