"""What survives a crash: checkpoints, resume after SIGKILL, the NaN guard, determinism."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import Logger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import crash_after_checkpoint, run_cli
from zoo_rl.io_utils import atomic_write, atomic_write_text
from zoo_rl.rl.config import RunConfig, algo_defaults
from zoo_rl.rl.training.checkpoint import (
    CHECKPOINT,
    FINISHED,
    Checkpointer,
    TrainingDiverged,
    assert_finite,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from zoo_rl.rl.training.models import build_model, make_env


def tiny_config(algo: str, hyperparams_file: Path, steps: int = 256, method: str = "scratch", zoo=()) -> RunConfig:
    n_envs, hyperparams = algo_defaults(algo, hyperparams_file)
    return RunConfig(command="transfer", game="Breakout", algo=algo, steps=steps, seed=3, n_envs=n_envs,
                     hyperparams=hyperparams, eval_episodes=1, method=method, zoo=list(zoo))  # fmt: skip


def column(path: Path, name: str) -> list[float]:
    with open(path) as f:
        return [float(row[name]) for row in csv.DictReader(f)]


def num_timesteps_in_zip(path: Path) -> int:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("data"))["num_timesteps"]


def test_killed_run_resumes_to_the_same_total_with_a_continuous_log(tiny_hyperparams, tmp_path, capsys):
    argv = ["pretrain", "Breakout", "--steps", "2048", "--checkpoint-freq", "128", "--eval-episodes", "1",
            "--hyperparams", str(tiny_hyperparams), "--out", str(tmp_path)]  # fmt: skip
    run_dir = tmp_path / "Breakout_ppo_s0"
    proc = subprocess.Popen([sys.executable, "-m", "zoo_rl.cli", *argv], stdout=subprocess.DEVNULL)
    try:
        saved = 0
        deadline = time.monotonic() + 300
        while saved < 512 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if (run_dir / CHECKPOINT).exists():
                saved = load_checkpoint(run_dir)["num_timesteps"]
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (run_dir / "model.zip").exists()
    killed_at = load_checkpoint(run_dir)["num_timesteps"]
    assert killed_at >= saved

    assert run_cli(*argv) == 0
    assert f"resuming from the checkpoint at step {killed_at} of 2048" in capsys.readouterr().out
    assert num_timesteps_in_zip(run_dir / "model.zip") == 2048
    assert not (run_dir / CHECKPOINT).exists()
    steps = column(run_dir / "scores.csv", "agent_steps")
    assert steps == sorted(steps) and steps[0] <= killed_at < steps[-1]
    wall = column(run_dir / "scores.csv", "wall_s")
    assert wall == sorted(wall)
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    logged = [e.step for e in events.Scalars("time/fps")]
    assert logged == list(range(64, 2048 + 1, 64))  # every PPO iteration once: nothing repeated, nothing lost


@pytest.mark.parametrize(("algo", "method"), [("ppo", "scratch"), ("dqn", "scratch"), ("ppo", "lite")])
def test_checkpoint_restores_weights_optimizer_counters_and_replay_buffer(
    algo, method, tiny_hyperparams, tiny_zoo, tmp_path
):
    zoo = [str(p) for p in sorted(tiny_zoo.glob("*.zip"))] if method == "lite" else []
    config = tiny_config(algo, tiny_hyperparams, method=method, zoo=zoo)
    env = make_env(config)
    model = build_model(config, env)
    model.learn(config.steps)
    save_checkpoint(model, tmp_path, {"train_seconds": 1.0, "wall_s": 2.0})
    env.close()

    env = make_env(config)
    fresh = build_model(config, env)
    state = load_checkpoint(tmp_path)
    restore(fresh, state, tmp_path, config.seed)
    env.close()
    assert fresh.num_timesteps == model.num_timesteps and fresh._n_updates == model._n_updates
    for (name, a), b in zip(model.policy.state_dict().items(), fresh.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # for lite this includes the gates' EMA buffers
    assert str(fresh.policy.optimizer.state_dict()) == str(model.policy.optimizer.state_dict())
    assert state["extra"] == {"train_seconds": 1.0, "wall_s": 2.0}
    if algo == "dqn":
        buffers = fresh.replay_buffer, model.replay_buffer
        assert [(b.pos, b.full) for b in buffers] == [(model.replay_buffer.pos, model.replay_buffer.full)] * 2
        np.testing.assert_array_equal(fresh.replay_buffer.observations, model.replay_buffer.observations)
        np.testing.assert_array_equal(fresh.replay_buffer.actions, model.replay_buffer.actions)
        assert len(list(tmp_path.glob("replay_buffer_*.npz"))) == 1


def test_nan_parameter_stops_training(tiny_hyperparams):
    config = tiny_config("ppo", tiny_hyperparams)
    env = make_env(config)
    model = build_model(config, env)
    env.close()
    model.set_logger(Logger(None, []))
    assert_finite(model, None)
    with torch.no_grad():
        next(model.policy.parameters())[0] = float("nan")
    with pytest.raises(TrainingDiverged, match="not finite at step 0; no checkpoint was written yet"):
        assert_finite(model, None)


def test_exploding_learning_rate_is_reported_as_divergence(tmp_path, capsys):
    hyperparams = tmp_path / "explode.yaml"
    hyperparams.write_text("ppo:\n  n_envs: 2\n  hyperparams: {n_steps: 32, batch_size: 32, learning_rate: 1.0e+30}\n")
    rc = run_cli("pretrain", "Breakout", "--steps", 4096, "--hyperparams", hyperparams, "--out", tmp_path)
    err = capsys.readouterr().err.strip()
    assert rc == 3 and len(err.splitlines()) == 1 and "training diverged: non-finite values" in err, err
    assert not (tmp_path / "Breakout_ppo_s0" / "model.zip").exists()


def test_nan_after_a_checkpoint_exits_3_and_keeps_the_good_checkpoint(tiny_hyperparams, tmp_path, capsys, monkeypatch):
    save = Checkpointer._on_rollout_start

    def save_then_poison(self):
        save(self)
        if self.last_saved >= 128:
            with torch.no_grad():
                next(self.model.policy.parameters()).fill_(float("nan"))

    monkeypatch.setattr(Checkpointer, "_on_rollout_start", save_then_poison)
    rc = run_cli("pretrain", "Breakout", "--steps", 1024, "--checkpoint-freq", 128, "--hyperparams", tiny_hyperparams,
                 "--out", tmp_path)  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 3 and len(err.splitlines()) == 1, err
    assert "not finite at step 128; the last good checkpoint (step 128) is kept" in err
    run_dir = tmp_path / "Breakout_ppo_s0"
    assert not (run_dir / "model.zip").exists()
    state = load_checkpoint(run_dir)
    assert state["num_timesteps"] == 128
    assert all(torch.isfinite(v).all() for v in state["policy"].values() if v.is_floating_point())


def test_same_config_and_seed_give_the_same_games(tiny_hyperparams, tmp_path):
    for out in ("a", "b"):
        rc = run_cli("pretrain", "Breakout", "--steps", 512, "--seed", 5, "--hyperparams", tiny_hyperparams,
                     "--out", tmp_path / out, "--eval-episodes", 2)  # fmt: skip
        assert rc == 0
    a, b = (tmp_path / out / "Breakout_ppo_s5" for out in ("a", "b"))
    for name in ("agent_steps", "score", "episode_frames"):
        first = column(a / "scores.csv", name)
        assert first and first == column(b / "scores.csv", name)
    assert json.loads((a / "eval.json").read_text())["scores"] == json.loads((b / "eval.json").read_text())["scores"]
    with zipfile.ZipFile(a / "model.zip") as za, zipfile.ZipFile(b / "model.zip") as zb:
        assert za.read("policy.pth") == zb.read("policy.pth")


def test_interrupted_write_never_replaces_a_good_file(tmp_path):
    good = tmp_path / "model.zip"
    good.write_bytes(b"good")

    def crash_halfway(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(good, crash_halfway)
    assert good.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]  # no temporary file left behind
    atomic_write_text(good, "new")
    assert good.read_text() == "new" and oct(good.stat().st_mode & 0o777) != "0o600"


def test_resume_verb_continues_a_crashed_run_from_its_own_config(tiny_hyperparams, tmp_path, capsys, monkeypatch):
    with crash_after_checkpoint(monkeypatch):
        run_cli("pretrain", "Breakout", "--steps", 384, "--checkpoint-freq", 128, "--hyperparams", tiny_hyperparams,
                "--out", tmp_path, "--eval-episodes", 1)  # fmt: skip
    run_dir = tmp_path / "Breakout_ppo_s0"
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("device: auto", "device: cuda:7"))  # as if it began on a GPU machine
    assert run_cli("resume", run_dir, "--device", "cpu") == 0  # needs nothing but the run directory
    assert "resuming from the checkpoint at step 128 of 384" in capsys.readouterr().out
    assert num_timesteps_in_zip(run_dir / "model.zip") == 384
    assert run_cli("resume", run_dir) == 0
    assert "already finished, skipping" in capsys.readouterr().out
    assert run_cli("resume", tmp_path) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_run_killed_before_its_first_checkpoint_starts_again_clean(tiny_hyperparams, tmp_path, monkeypatch):
    pretrain = ("pretrain", "Breakout", "--steps", 256, "--checkpoint-freq", 10_000, "--hyperparams", tiny_hyperparams,
                "--out", tmp_path, "--eval-episodes", 1)  # fmt: skip
    save = Checkpointer._on_rollout_start

    def crash_after_the_first_rollout(self):
        if self.num_timesteps:
            raise KeyboardInterrupt
        save(self)

    monkeypatch.setattr(Checkpointer, "_on_rollout_start", crash_after_the_first_rollout)
    with pytest.raises(KeyboardInterrupt):
        run_cli(*pretrain)
    monkeypatch.setattr(Checkpointer, "_on_rollout_start", save)
    run_dir = tmp_path / "Breakout_ppo_s0"
    assert not (run_dir / "checkpoint.pt").exists() and (run_dir / "tb").is_dir()
    (run_dir / "tb" / "stale").write_text("left by the killed run")
    assert run_cli(*pretrain) == 0
    assert not (run_dir / "tb" / "stale").exists()
    assert num_timesteps_in_zip(run_dir / "model.zip") == 256


def test_a_run_held_by_another_process_is_refused_and_left_alone(tiny_hyperparams, tmp_path, capsys):
    pretrain = ("pretrain", "Breakout", "--steps", 128, "--hyperparams", tiny_hyperparams, "--out", tmp_path,
                "--eval-episodes", 1)  # fmt: skip
    holder = ("import sys, time; from pathlib import Path; from zoo_rl.run_dir import claim\n"
              "with claim(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(120)")  # fmt: skip
    run_dir = tmp_path / "Breakout_ppo_s0"
    held = subprocess.Popen([sys.executable, "-c", holder, run_dir], stdout=subprocess.PIPE, text=True)
    try:
        assert held.stdout.readline() == "held\n"
        assert run_cli(*pretrain) == 2
        assert "another process is training this run right now" in capsys.readouterr().err
        assert list(run_dir.iterdir()) == []  # the holder's (empty) directory: nothing written into it
    finally:
        held.kill()
        held.wait()
    assert run_cli(*pretrain) == 0  # the lock dies with its process
    assert (run_dir / "model.zip").is_file()


def test_a_run_finished_by_another_process_while_this_one_started_is_left_alone(tiny_hyperparams, tmp_path, capsys,
                                                                                  monkeypatch):  # fmt: skip
    import zoo_rl.run_dir

    pretrain = ("pretrain", "Breakout", "--steps", 128, "--hyperparams", tiny_hyperparams, "--out", tmp_path,
                "--eval-episodes", 1)  # fmt: skip
    assert run_cli(*pretrain) == 0
    run_dir = tmp_path / "Breakout_ppo_s0"
    finished = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    (run_dir / FINISHED).unlink()  # as this process sees it when it starts: died before its first checkpoint
    real_claim = zoo_rl.run_dir.claim

    @contextmanager
    def claim_after_the_other_finished(path):
        (run_dir / FINISHED).write_bytes(finished[FINISHED])  # the other process ends before the lock is ours
        with real_claim(path):
            yield

    monkeypatch.setattr(zoo_rl.run_dir, "claim", claim_after_the_other_finished)
    assert run_cli(*pretrain) == 0
    assert "finished by another process meanwhile" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == finished


def test_background_runs_print_their_progress(tiny_hyperparams, tmp_path, capsys):
    assert run_cli("pretrain", "Breakout", "--steps", 256, "--checkpoint-freq", 128, "--hyperparams",
                   tiny_hyperparams, "--out", tmp_path, "--eval-episodes", 1) == 0  # fmt: skip
    lines = [line for line in capsys.readouterr().out.splitlines() if " steps/s, " in line]
    assert [line.split(",")[0] for line in lines] == ["Breakout_ppo_s0: step 128/256", "Breakout_ppo_s0: step 256/256"]
