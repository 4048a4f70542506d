"""The RL path end to end, with real ALE games and real (tiny) SB3 training."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import DQN, PPO

from zoo_rl.core import freeze_gates, zoo_layers
from zoo_rl.envs import AtariSettings, make_atari_vec_env
from zoo_rl.errors import ConfigError
from zoo_rl.rl import RECIPES, ZooNatureCNN, nature_cnn_weights, prepare_zoo, recipe
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.methods import METHODS
from zoo_rl.rl.methods.zoo_tuning import copy_scratch_start
from zoo_rl.rl.report.curves import binned_curve
from zoo_rl.rl.report.load import load_run_model
from zoo_rl.rl.training.checkpoint import FINISHED
from zoo_rl.rl.zoo.manifest import read_manifest, zoo_paths
from zoo_rl.rl.zoo.members import read_policy_state_dict

from .conftest import crash_after_checkpoint, run_cli


def zoo_files(tiny_zoo: Path) -> list[str]:
    return zoo_paths([str(tiny_zoo)])


def test_manifest_lists_both_agents_with_hashes(tiny_zoo):
    entries = read_manifest(tiny_zoo / "manifest.json")
    assert sorted((e["game"], e["algorithm"]) for e in entries) == [("Breakout", "ppo"), ("Pong", "dqn")]
    for e in entries:
        assert (tiny_zoo / e["file"]).exists() and len(e["sha256"]) == 64
        assert e["eval"]["episodes"] == 1 and e["agent_steps"] == 128


def test_mixed_algorithm_zoo_loads_into_one_extractor(tiny_zoo):
    env = make_atari_vec_env("DemonAttack", 2, 0)
    extractor = ZooNatureCNN(env.observation_space, zoo=zoo_files(tiny_zoo))
    obs = torch.as_tensor(env.reset()).float() / 255
    assert extractor(obs).shape == (2, 512)
    layers = zoo_layers(extractor.zoo)
    assert set(layers) == {"cnn.0", "cnn.2", "cnn.4", "linear.0"}
    dqn_weights = nature_cnn_weights(zoo_files(tiny_zoo)[1])
    torch.testing.assert_close(layers["cnn.0"].weights[1], dqn_weights["cnn.0.weight"])
    env.close()


@pytest.mark.parametrize("algo", ["ppo_unshared", "dqn"])
def test_extractor_plugs_into_sb3(tiny_zoo, algo):
    env = make_atari_vec_env("DemonAttack", 2, 0)
    kwargs = dict(features_extractor_class=ZooNatureCNN, features_extractor_kwargs=dict(zoo=zoo_files(tiny_zoo)))
    if algo == "dqn":
        model = DQN("CnnPolicy", env, policy_kwargs=kwargs, buffer_size=100, learning_starts=10, device="cpu")
        targets = [model.q_net.features_extractor, model.q_net_target.features_extractor]
    else:
        kwargs["share_features_extractor"] = False
        model = PPO("CnnPolicy", env, policy_kwargs=kwargs, n_steps=16, batch_size=32, device="cpu")
        targets = [model.policy.pi_features_extractor, model.policy.vf_features_extractor]
    assert all(isinstance(t, ZooNatureCNN) for t in targets) and targets[0] is not targets[1]
    model.learn(64)
    if algo == "dqn":  # the target network follows the online network's state dict layout
        model.q_net_target.load_state_dict(model.q_net.state_dict())
    env.close()


@pytest.fixture(scope="module")
def transfer_runs(tiny_zoo, tiny_hyperparams, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("transfer")
    for method in METHODS:
        source = ["--source", zoo_files(tiny_zoo)[0]] if method == "finetune" else []
        # Breakout: random play ends a game in ~150 steps, so even a tiny run logs scores.
        rc = run_cli("transfer", "Breakout", "--method", method, "--zoo", tiny_zoo, *source, "--steps", 320,
                     "--n-envs", 1, "--out", out, "--eval-episodes", 1, "--hyperparams", tiny_hyperparams)  # fmt: skip
        assert rc == 0
    return out


@pytest.mark.parametrize("method", [m for m in METHODS if m != "finetune"])
def test_transfer_writes_a_complete_run_directory(transfer_runs, method):
    run = transfer_runs / f"Breakout_{method}_ppo_s0"
    for name in ("config.yaml", "scores.csv", "eval.json", "model.zip", "cost.json"):
        assert (run / name).exists(), name
    with open(run / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["frames"]) == 4 * float(r["agent_steps"]) for r in rows)
    assert json.loads((run / "eval.json").read_text())["episodes"] == 1
    events = list((run / "tb").glob("events.out.tfevents.*"))
    assert events
    if method not in ("scratch", "ensemble", "distill", "kflow"):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        tags = EventAccumulator(str(events[0])).Reload().Tags()["scalars"]
        assert any(t.startswith("gate_last/features_extractor/zoo.cnn.0/") for t in tags)
    if method in ("distill", "kflow"):  # the logger finds the shared core modules inside the extractor
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        tags = EventAccumulator(str(events[0])).Reload().Tags()["scalars"]
        expected = {
            "distill": "distill/features_extractor/distillation/weight",
            "kflow": "kflow/features_extractor/flow/layer0/student",
        }
        assert expected[method] in tags


def test_a_run_whose_weights_do_not_fit_its_config_is_a_one_line_error(transfer_runs, tmp_path, capsys):
    """config.yaml edited after the run (here: trainable channel alignments switched on) describes a
    model the saved weights do not fit: eval says so in one line naming model.zip and a key;
    with the config as it was, the run loads again."""
    run = tmp_path / "run"
    shutil.copytree(transfer_runs / "Breakout_lite_ppo_s0", run)
    original = (run / "config.yaml").read_text()
    config = yaml.safe_load(original)
    config["method_options"]["align"] = True
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert run_cli("eval", run, "--episodes", 1) == 2
    err = capsys.readouterr().err
    assert "model.zip" in err and ".align" in err and re.search(r"[1-9]\d* missing", err) and err.count("\n") == 1
    (run / "config.yaml").write_text(original)
    model, _ = load_run_model(run)
    assert all(layer.align is None for layer in zoo_layers(model.policy.features_extractor.zoo).values())


def test_rerunning_a_finished_run_skips_it(transfer_runs, tiny_zoo, tiny_hyperparams, capsys):
    model = transfer_runs / "Breakout_scratch_ppo_s0" / "model.zip"
    before = model.stat().st_mtime_ns
    rc = run_cli("transfer", "Breakout", "--method", "scratch", "--steps", 320, "--n-envs", 1, "--out", transfer_runs,
                 "--eval-episodes", 1, "--hyperparams", tiny_hyperparams)  # fmt: skip
    assert rc == 0 and model.stat().st_mtime_ns == before
    assert "already finished" in capsys.readouterr().out


def test_finished_run_is_found_again_with_its_zoo_elsewhere(transfer_runs, tiny_zoo, tiny_hyperparams, tmp_path,
                                                            capsys):  # fmt: skip
    moved = shutil.copytree(tiny_zoo, tmp_path / "moved")  # a clone at another path records other zoo paths
    rc = run_cli("transfer", "Breakout", "--method", "zoo", "--zoo", moved, "--steps", 320, "--n-envs", 1,
                 "--out", transfer_runs, "--eval-episodes", 1, "--hyperparams", tiny_hyperparams)  # fmt: skip
    assert rc == 0 and "already finished" in capsys.readouterr().out


def test_eval_of_run_and_of_zip(transfer_runs, tiny_zoo, capsys):
    assert run_cli("eval", transfer_runs / "Breakout_zoo_ppo_s0", "--episodes", 1) == 0
    assert run_cli("eval", zoo_files(tiny_zoo)[1], "--game", "Pong", "--episodes", 1) == 0
    out = capsys.readouterr().out
    assert "Breakout:" in out and "Pong:" in out and "greedy" in out


def test_training_and_evaluation_on_the_sb3_backend(tiny_hyperparams, tmp_path, capsys):
    """``--backend sb3`` (SB3's make_atari_env wrappers) end to end: the run records its backend,
    scores games while training, and ``zoo-rl eval`` plays its full games on it."""
    rc = run_cli("transfer", "Breakout", "--method", "scratch", "--backend", "sb3", "--steps", 320, "--n-envs", 1,
                 "--out", tmp_path, "--eval-episodes", 1, "--hyperparams", tiny_hyperparams)  # fmt: skip
    assert rc == 0
    run = tmp_path / "Breakout_scratch_ppo_s0"
    assert RunConfig.load(run / "config.yaml").backend == "sb3"
    with open(run / "scores.csv") as f:
        assert len(list(csv.DictReader(f))) >= 1  # random Breakout ends a game in ~150 steps
    assert len(json.loads((run / FINISHED).read_text())["scores"]) == 1
    capsys.readouterr()
    assert run_cli("eval", run, "--backend", "sb3", "--episodes", 1) == 0
    assert "over 1 full games" in capsys.readouterr().out


def test_eval_records_each_game_as_a_decodable_video(transfer_runs, tmp_path, capsys):
    iio = pytest.importorskip("imageio.v3", reason="the video extra is installed by scripts/test.sh")
    assert run_cli("eval", transfer_runs / "Breakout_lite_ppo_s0", "--episodes", 2, "--video", tmp_path) == 0
    lines = capsys.readouterr().out.splitlines()
    videos = sorted(tmp_path.glob("*.mp4"))
    assert [p.name for p in videos] == ["Breakout-0.mp4", "Breakout-1.mp4"]
    for video in videos:
        frames = iio.imread(video)
        printed = next(line for line in lines if line.startswith(str(video)))
        assert printed.endswith(f", {len(frames)} frames")  # one video frame per agent step of the game
        assert frames.shape[1:] == (210, 160, 3) and len(frames) > 50
        assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).max() > 0  # the game moved
    assert "Breakout:" in lines[-1] and "over 2 full games" in lines[-1]


def test_plot_writes_png_and_csv(transfer_runs, tmp_path):
    png = tmp_path / "curves.png"
    assert run_cli("plot", transfer_runs, "-o", png) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(png.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {m for m in METHODS if m != "finetune"} | {"finetune:breakout_ppo_s0"}


def test_gate_figure_draws_every_member_of_every_zoo_layer(transfer_runs, tiny_zoo, tmp_path, capsys):
    png = tmp_path / "gates.png"
    assert run_cli("plot", "--gates", transfer_runs / "Breakout_lite_ppo_s0", "-o", png) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(png.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    members = {Path(p).stem for p in zoo_files(tiny_zoo)} | {"scratch"}
    assert {r["layer"] for r in rows} == {"zoo.cnn.0", "zoo.cnn.2", "zoo.cnn.4", "zoo.linear.0"}
    assert {r["member"] for r in rows} == members
    for layer in ("zoo.cnn.0", "zoo.linear.0"):  # the coefficients of one point sum to one
        last = [r for r in rows if r["layer"] == layer and r["agent_steps"] == rows[-1]["agent_steps"]]
        assert sum(float(r["mean"]) for r in last) == pytest.approx(1.0, abs=1e-4)
    start = json.loads((transfer_runs / "Breakout_lite_ppo_s0" / "start.json").read_text())
    assert start["reference"] in members and set(start["logme"]) == members
    with open(tmp_path / "gates-final.csv") as f:
        final = list(csv.DictReader(f))
    assert {r["run"] for r in final} == {"Breakout_lite_ppo_s0"} and {r["member"] for r in final} <= members
    assert all(float(r["coefficient"]) > 0.1 for r in final)
    assert "Breakout_lite_ppo_s0: " in capsys.readouterr().out
    assert run_cli("plot", "--gates", transfer_runs / "Breakout_scratch_ppo_s0", "-o", png) == 2


def test_final_gate_use_tells_a_zoo_that_mixes_from_one_that_selects():
    from zoo_rl.rl.report.gate_figure import describe_use, final_use

    steps = np.array([0, 1])
    gates = {"conv1": {"a": (steps, np.array([0.2, 0.95])), "b": (steps, np.array([0.8, 0.05]))},
             "linear": {"a": (steps, np.array([0.5, 0.3])), "b": (steps, np.array([0.5, 0.7]))}}  # fmt: skip
    use = final_use(gates)
    assert use == {"conv1": {"a": 0.95}, "linear": {"b": 0.7, "a": 0.3}}
    assert describe_use(use) == "mixes: linear b 0.70 + a 0.30"
    assert describe_use(final_use({"conv1": gates["conv1"]})) == "selects a (one member above 0.1 in every layer)"


def test_study_reports_leave_out_live_runs(transfer_runs, tmp_path, capsys):
    # the live run has its cost record already: only eval.json marks a run as finished
    study = tmp_path / "study"
    for name, files in [("Breakout_scratch_ppo_s0", ("config.yaml", "scores.csv", "cost.json", FINISHED)),
                        ("Breakout_lite_ppo_s0", ("config.yaml", "scores.csv", "cost.json"))]:  # fmt: skip
        (study / name).mkdir(parents=True)
        for file in files:
            shutil.copy(transfer_runs / name / file, study / name / file)
    png = tmp_path / "curves.png"
    assert run_cli("plot", study, "--finished", "-o", png) == 0
    with open(png.with_suffix(".csv")) as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"scratch"}
    assert run_cli("summary", study, "-o", tmp_path / "summary.md") == 0
    with open(tmp_path / "summary.csv") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["scratch"]
    capsys.readouterr()
    assert run_cli("cost", study) == 0
    listed = capsys.readouterr().out
    assert "Breakout_scratch_ppo_s0" in listed and "Breakout_lite_ppo_s0" not in listed
    (study / "Breakout_scratch_ppo_s0" / FINISHED).unlink()
    for verb in (
        ["plot", study, "--finished", "-o", png],
        ["summary", study, "-o", tmp_path / "s.md"],
        ["cost", study],
    ):
        assert run_cli(*verb) != 0
        assert "no finished runs" in capsys.readouterr().err


def test_runs_differing_in_more_than_the_seed_are_not_averaged(transfer_runs, tmp_path, capsys):
    study = tmp_path / "study"
    shutil.copytree(transfer_runs / "Breakout_scratch_ppo_s0", study / "Breakout_scratch_ppo_s0")
    longer = RunConfig.load(study / "Breakout_scratch_ppo_s0" / "config.yaml")
    longer.seed, longer.steps = 1, 640  # a seed 1 with another budget is not a second seed of the same run
    shutil.copytree(transfer_runs / "Breakout_scratch_ppo_s0", study / longer.run_name())
    longer.save(study / longer.run_name() / "config.yaml")
    for verb in (["summary", study, "-o", tmp_path / "s.md"], ["plot", study, "-o", tmp_path / "c.png"]):
        assert run_cli(*verb) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "not another seed of" in err and "differs in steps" in err, err
    assert not (tmp_path / "s.md").exists() and not (tmp_path / "c.png").exists()


def test_curve_of_a_live_run_stops_at_its_last_game(tmp_path):
    (tmp_path / "scores.csv").write_text("agent_steps,frames,score,episode_frames,wall_s\n25,100,3.0,100,1.0\n")
    edges = np.array([0.0, 200.0, 400.0, 600.0])
    assert np.isnan(binned_curve(tmp_path, edges)[1:]).all()  # still training: nothing after 100 frames
    (tmp_path / FINISHED).write_text("{}")
    assert binned_curve(tmp_path, edges).tolist() == [3.0, 3.0, 3.0]  # finished: carried to the end


EXPORT_CHECK = """
import sys, numpy as np
sys.modules["zoo_rl"] = None  # importing zoo_rl now fails
from stable_baselines3 import PPO
model = PPO.load(sys.argv[1], device="cpu")
obs = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(obs, deterministic=True)[0])
"""


@pytest.mark.parametrize("method", ["lite", "scratch", "zoo-uniform", "distill", "finetune-breakout_ppo_s0"])
def test_export_loads_without_zoo_rl_and_acts_the_same(transfer_runs, tmp_path, method):
    assert_export_acts_the_same(transfer_runs / f"Breakout_{method}_ppo_s0", tmp_path)


def test_kflow_free_of_its_teachers_exports_and_acts_the_same(tiny_zoo, tmp_path):
    """A large dependency weight and learning rate free the student within a tiny run (the
    dependency loss must outweigh the RL gradients under PPO's global gradient clipping)."""
    hyperparams = tmp_path / "fast.yaml"
    fast = {"n_steps": 8, "batch_size": 8, "n_epochs": 1, "learning_rate": 0.05}
    hyperparams.write_text(yaml.safe_dump({"ppo": {"n_envs": 1, "hyperparams": fast}}))
    rc = run_cli("transfer", "Breakout", "--method", "kflow", "--zoo", tiny_zoo, "--steps", 480, "--hyperparams",
                 hyperparams, "--method-option", "dependency_weight=1000", "--method-option", "ramp_updates=1",
                 "--out", tmp_path, "--eval-episodes", 1)  # fmt: skip
    assert rc == 0
    assert_export_acts_the_same(tmp_path / "Breakout_kflow_ppo_s0", tmp_path)


def assert_export_acts_the_same(run: Path, tmp_path: Path) -> None:
    """The exported zip, loaded by plain SB3 in a process without zoo_rl, picks the run's actions."""
    exported = tmp_path / "plain.zip"
    assert run_cli("export", run, "-o", exported) == 0
    env = make_atari_vec_env("Breakout", 4, 3, training=False)
    obs = env.reset()
    for _ in range(30):
        obs, *_ = env.step(np.random.default_rng(0).integers(0, 4, 4))
    env.close()
    np.save(tmp_path / "obs.npy", obs)
    subprocess.run(
        [sys.executable, "-c", EXPORT_CHECK, exported, tmp_path / "obs.npy", tmp_path / "act.npy"],
        check=True,
        cwd=tmp_path,
    )
    model, _ = load_run_model(run)
    model.policy.set_training_mode(False)
    expected = model.predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(np.load(tmp_path / "act.npy"), expected)


NATURE_CNN_MACS = 20 * 20 * 32 * 4 * 64 + 9 * 9 * 64 * 32 * 16 + 7 * 7 * 64 * 64 * 9 + 3136 * 512
NATURE_CNN_PARAMS = (32 * 4 * 64 + 32) + (64 * 32 * 16 + 64) + (64 * 64 * 9 + 64) + (3136 * 512 + 512)


def test_cost_records_match_analytic_counts_and_table(transfer_runs, capsys):
    n_actions, head = 4, 512 * 4 + 4  # Breakout; PPO acts with action_net only
    scratch = json.loads((transfer_runs / "Breakout_scratch_ppo_s0" / "cost.json").read_text())
    assert scratch["inference_gmacs"] * 1e9 == pytest.approx(NATURE_CNN_MACS + 512 * n_actions)
    assert scratch["inference_params"] == NATURE_CNN_PARAMS + head
    assert scratch["train_params"] == NATURE_CNN_PARAMS + head + 513  # + value head
    ensemble = json.loads((transfer_runs / "Breakout_ensemble_ppo_s0" / "cost.json").read_text())
    assert ensemble["inference_params"] == 2 * NATURE_CNN_PARAMS + head
    lite = json.loads((transfer_runs / "Breakout_lite_ppo_s0" / "cost.json").read_text())
    assert lite["inference_params"] == scratch["inference_params"]
    assert lite["train_params"] > 2 * NATURE_CNN_PARAMS
    assert run_cli("cost", transfer_runs) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("run") and len(table) == 1 + len(METHODS)


def lite_ppo(tiny_zoo: Path) -> PPO:
    env = make_atari_vec_env("Breakout", 2, 0)
    extractor = dict(zoo=zoo_files(tiny_zoo), lite=True)
    kwargs = dict(features_extractor_class=ZooNatureCNN, features_extractor_kwargs=extractor)
    return PPO("CnnPolicy", env, policy_kwargs=kwargs, n_steps=16, batch_size=32, device="cpu").learn(32)


def test_measuring_cost_leaves_the_lite_policy_as_it_was(tiny_zoo):
    from zoo_rl.rl.training.policy_cost import policy_cost

    model = lite_ppo(tiny_zoo)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.policy.set_training_mode(False)
    policy_cost(model)
    assert not model.policy.training
    for key, value in model.policy.state_dict().items():  # a training forward would move the gates' EMA
        torch.testing.assert_close(value, before[key], msg=key)
    model.env.close()


def test_periodic_evaluation_hands_the_rollout_back_in_eval_mode(tiny_zoo, tmp_path):
    from stable_baselines3.common.logger import configure

    from zoo_rl.rl.training.callbacks import PeriodicEval

    model = lite_ppo(tiny_zoo)
    model.set_logger(configure(None, []))

    def evaluate(m):  # like evaluate_model: leaves the policy in eval mode
        m.policy.set_training_mode(False)
        return [1.0]

    callback = PeriodicEval(tmp_path / "evals.csv", 16, evaluate)
    callback.init_callback(model)
    model.policy.set_training_mode(False)  # SB3 collects rollouts in eval mode: lite acts on its EMA gates
    model.num_timesteps = 16
    callback.on_step()
    assert (tmp_path / "evals.csv").exists() and not model.policy.training
    model.env.close()


def test_full_zoo_run_refuses_export(transfer_runs, tmp_path, capsys):
    assert run_cli("export", transfer_runs / "Breakout_zoo_ppo_s0", "-o", tmp_path / "x.zip") == 2
    assert "cannot become one NatureCNN" in capsys.readouterr().err


@pytest.mark.parametrize("algo", ["a2c", "qrdqn"])
def test_a2c_and_qrdqn_zips_are_zoo_members(algo, tmp_path, tiny_zoo):
    from zoo_rl.rl.config import algorithm_class
    from zoo_rl.rl.report.load import ZipPolicy
    from zoo_rl.rl.zoo.members import read_policy_state_dict

    env = make_atari_vec_env("Pong", 1, 0)
    kwargs = {"buffer_size": 100} if algo == "qrdqn" else {}
    algorithm_class(algo)("CnnPolicy", env, device="cpu", **kwargs).save(tmp_path / f"{algo}.zip")
    weights = nature_cnn_weights(tmp_path / f"{algo}.zip")
    assert weights["linear.0.weight"].shape == (512, 3136)
    policy = ZipPolicy(read_policy_state_dict(tmp_path / f"{algo}.zip"), int(env.action_space.n), tmp_path)
    assert policy(torch.as_tensor(env.reset())).shape == (1, env.action_space.n)
    extractor = ZooNatureCNN(env.observation_space, zoo=[tmp_path / f"{algo}.zip", *zoo_files(tiny_zoo)])
    assert extractor(torch.zeros(1, 4, 84, 84)).shape == (1, 512)
    env.close()


def test_periodic_evaluation_writes_evals_csv(tiny_zoo, tiny_hyperparams, tmp_path):
    rc = run_cli("transfer", "Breakout", "--method", "lite", "--zoo", tiny_zoo, "--steps", 128, "--n-envs", 1,
                 "--eval-freq", 64, "--eval-episodes", 1, "--out", tmp_path,
                 "--hyperparams", tiny_hyperparams)  # fmt: skip
    assert rc == 0
    with open(tmp_path / "Breakout_lite_ppo_s0" / "evals.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["agent_steps"]) for r in rows] == [64, 128]


def test_distillation_loss_trains_the_student_towards_the_teachers(tiny_zoo):
    from zoo_rl.rl.methods.distill import DistillNatureCNN

    env = make_atari_vec_env("Breakout", 2, 0)
    extractor = DistillNatureCNN(env.observation_space, zoo=zoo_files(tiny_zoo), weight=1.0, decay_updates=50)
    obs = torch.as_tensor(env.reset()).float() / 255
    env.close()
    teacher_before = [t.cnn[0].weight.clone() for t in extractor.distillation.teachers]
    optimizer = torch.optim.Adam(extractor.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        extractor(obs).sum().mul(0).backward()  # no RL signal: only the distillation loss
        optimizer.step()
        losses.append(extractor.distillation.last_loss)
    assert losses[-1] < 0.5 * losses[0]
    assert extractor.distillation.current_weight() == pytest.approx(1.0 - 20 / 50)
    teachers = extractor.distillation.teachers
    assert all(torch.equal(a, t.cnn[0].weight) for a, t in zip(teacher_before, teachers, strict=True))
    extractor.eval()
    torch.testing.assert_close(extractor(obs), extractor.student(obs))


def test_kflow_without_teacher_weight_is_the_student_alone(tiny_zoo):
    from zoo_rl.rl.methods.kflow import KnowledgeFlowNatureCNN

    env = make_atari_vec_env("Breakout", 2, 0)
    extractor = KnowledgeFlowNatureCNN(
        env.observation_space, zoo=zoo_files(tiny_zoo), dependency_weight=1.0, ramp_updates=1
    )
    obs = torch.as_tensor(env.reset()).float() / 255
    env.close()
    with pytest.raises(ValueError, match="still depends on its teachers"):
        extractor.as_nature_cnn()
    optimizer = torch.optim.Adam([extractor.flow.dependency], lr=0.05)
    for _ in range(200):  # only the dependency loss: it must free the student
        optimizer.zero_grad()
        extractor(obs).sum().mul(0).backward()
        optimizer.step()
        if not extractor.flow.teachers_in_use():
            break
    assert not extractor.flow.teachers_in_use()
    with_teachers = extractor(obs)
    student = extractor.as_nature_cnn()
    extractor.flow.teachers = torch.nn.ModuleList()  # remove the teachers entirely
    torch.testing.assert_close(extractor(obs), with_teachers, rtol=0, atol=0)
    torch.testing.assert_close(student(obs), with_teachers, rtol=0, atol=0)


def test_kflow_still_using_teachers_refuses_export(transfer_runs, tmp_path, capsys):
    assert run_cli("export", transfer_runs / "Breakout_kflow_ppo_s0", "-o", tmp_path / "x.zip") == 2
    assert "still depends on its teachers" in capsys.readouterr().err


def test_finetune_source_all_makes_one_run_per_member(tiny_zoo, tiny_hyperparams, tmp_path):
    rc = run_cli("transfer", "Breakout", "--method", "finetune", "--source", "all", "--zoo", tiny_zoo,
                 "--steps", 64, "--n-envs", 1, "--eval-episodes", 1, "--out", tmp_path,
                 "--hyperparams", tiny_hyperparams)  # fmt: skip
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Breakout_finetune-breakout_ppo_s0_ppo_s0",
        "Breakout_finetune-pong_dqn_s0_ppo_s0",
    ]
    config = RunConfig.load(tmp_path / "Breakout_finetune-pong_dqn_s0_ppo_s0" / "config.yaml")
    assert Path(config.source).name == "pong_dqn_s0.zip" and config.zoo == []


def test_matching_channels_keeps_every_member_the_same_function(tiny_zoo):
    """After matching, each member alone (a one-hot gate) computes the same features up to a
    permutation of its units, and the reference member's are unchanged."""
    env = make_atari_vec_env("DemonAttack", 2, 0)
    env.reset()
    frames = np.concatenate([env.step(np.arange(2) % env.action_space.n)[0] for _ in range(16)])
    env.close()
    extractor = ZooNatureCNN(env.observation_space, zoo=zoo_files(tiny_zoo))
    assert extractor.member_names == [Path(p).stem for p in zoo_files(tiny_zoo)] + ["scratch"]
    x = torch.as_tensor(frames).float() / 255

    def member_features() -> list[torch.Tensor]:
        out = []
        for i in range(3):
            freeze_gates(extractor.zoo, torch.nn.functional.one_hot(torch.tensor(i), 3).float())
            with torch.no_grad():
                out.append(extractor(x))
        for layer in zoo_layers(extractor.zoo).values():
            layer.unfreeze_gate()
        return out

    before = member_features()
    quality = extractor.match_channels(frames, reference=2)
    after = member_features()
    assert len(quality) == 4 and all(-1 <= q <= 1 for q in quality)
    torch.testing.assert_close(after[2], before[2])
    for b, a in zip(before[:2], after[:2], strict=True):
        torch.testing.assert_close(a.sort(dim=1).values, b.sort(dim=1).values, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(a, b)  # the units did move
    same = ZooNatureCNN(env.observation_space, zoo=[zoo_files(tiny_zoo)[0]] * 2, recipe=recipe(scratch_member=False))
    assert same.match_channels(frames) == pytest.approx([1.0] * 4, abs=1e-4)


def test_sb3_policy_keeps_the_gates_initialisation(tiny_zoo):
    """SB3 orthogonally re-initialises a features extractor's nn.Linear layers; the softmax
    gates must still start at zero output weights and bias (the shared prior, uniform)."""
    env = make_atari_vec_env("DemonAttack", 2, 0)
    kwargs = dict(features_extractor_class=ZooNatureCNN, features_extractor_kwargs=dict(zoo=zoo_files(tiny_zoo)))
    model = PPO("CnnPolicy", env, policy_kwargs=kwargs, n_steps=16, batch_size=32, device="cpu")
    env.close()
    for name, layer in zoo_layers(model.policy.features_extractor.zoo).items():
        assert torch.count_nonzero(layer.gate.fc2.weight) == 0, name
        assert torch.count_nonzero(layer.gate.fc2.bias) == 0, name
        assert layer.gate.fc1.weight.std() > 0.1, name  # Kaiming fan-out, not SB3's gain


def test_dqn_target_network_of_lite_zoo_acts_as_the_online_network_after_an_update(tiny_zoo):
    env = make_atari_vec_env("DemonAttack", 1, 0)
    extractor = dict(zoo=zoo_files(tiny_zoo), lite=True)
    kwargs = dict(features_extractor_class=ZooNatureCNN, features_extractor_kwargs=extractor,
                  optimizer_kwargs=dict(fused=True))  # fmt: skip
    model = DQN("CnnPolicy", env, policy_kwargs=kwargs, buffer_size=200, learning_starts=16, batch_size=8,
                train_freq=1, target_update_interval=40, device="cpu")  # fmt: skip
    model.learn(40)
    obs = torch.as_tensor(env.reset()).float()
    env.close()
    with torch.no_grad():
        model.q_net_target(obs)  # acting with the target before the update
    model._n_calls = model.target_update_interval - 1
    model._on_step()  # SB3's own target update: parameters and "running_" buffers
    model.q_net.set_training_mode(False)
    with torch.no_grad():
        online = model.q_net(obs)
        target = model.q_net_target(obs)
    assert not torch.allclose(zoo_layers(model.q_net.features_extractor.zoo)["cnn.0"].ema, torch.full((3,), 1 / 3))
    torch.testing.assert_close(target, online)


def test_paper_recipe_is_the_published_layer(tiny_zoo):
    env = make_atari_vec_env("DemonAttack", 2, 0)
    env.close()
    paper = ZooNatureCNN(env.observation_space, zoo=zoo_files(tiny_zoo), recipe="paper")
    assert paper.member_names == [Path(p).stem for p in zoo_files(tiny_zoo)]
    for name, layer in zoo_layers(paper.zoo).items():
        assert layer.gate.norm == "normalized" and layer.gate.prior is None
        assert not layer.options.rescale and layer.options == RECIPES["paper"].replace(lite=False)
        assert (layer.align is not None) == name.startswith("cnn"), name  # trainable alignment on convs
    with pytest.raises(ValueError, match="recipe must be one of"):
        ZooNatureCNN(env.observation_space, zoo=zoo_files(tiny_zoo), recipe="nope")


def test_transfer_recipe_gives_its_members_the_plain_step_unless_told_otherwise(tiny_zoo):
    """The default recipe: no trainable alignment (a zoo on one member trains as that member
    alone; tests/test_core.py), the fresh member added; an option changed over the recipe wins."""
    env = make_atari_vec_env("DemonAttack", 2, 0)
    env.close()
    files = zoo_files(tiny_zoo)
    transfer = ZooNatureCNN(env.observation_space, zoo=files)
    assert transfer.member_names[-1] == "scratch"
    for layer in zoo_layers(transfer.zoo).values():
        assert layer.align is None and layer.options.rescale
        assert layer.gate.norm == "softmax" and layer.num_sources == len(files) + 1
    told = ZooNatureCNN(env.observation_space, zoo=files, recipe=recipe("transfer", align=True, gate_temperature=0.2))
    for name, layer in zoo_layers(told.zoo).items():
        assert (layer.align is not None) == name.startswith("cnn") and layer.gate.temperature == 0.2, name
    with pytest.raises(ConfigError, match=r"recipe transfer: unknown option\(s\) \['source_grad_scale'\]"):
        recipe("transfer", source_grad_scale=3.0)


def test_inspect_reports_scores_similarity_and_step0_health(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "inspect.json"
    assert run_cli("inspect", "Breakout", "--zoo", tiny_zoo, "--steps", 40, "-o", out) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    sources = [Path(p).stem for p in zoo_files(tiny_zoo)]
    assert set(report["logme"]) == {*sources, "random0", "random1"}
    for s in report["logme"].values():
        assert s["low"] <= s["logme"] <= s["high"] or s["low"] <= s["high"]
        assert 0.0 <= s["p_first"] <= 1.0
    assert sum(s["p_first"] for s in report["logme"].values()) == pytest.approx(1.0)
    assert list(report["weight_cosine"]) == [f"{sources[0]}~{sources[1]}"]
    assert set(report["step0"]) == {"paper", "transfer"}
    for name, health in report["step0"].items():
        assert 0.0 <= health["dead_units"] <= 1.0 and health["feature_variance"] >= 0.0
        assert set(health["cka"]) == set(sources), name
    start = report["step0"]["transfer"]["start"]
    assert start["reference"] in [*sources, "scratch"] and len(start["match_quality"]) == 4
    assert report["step0"]["paper"]["start"] is None
    (pair,) = report["linearity"]["pairs"]
    assert pair == f"{sources[0]}~{sources[1]}" and len(report["linearity"]["pairs"][pair]) == 4
    assert start["reference"] in "\n".join(printed.splitlines()[:3])  # the verdict comes first
    for name in sources:
        assert name in printed
        # a source's features are perfectly similar to themselves
        assert report["features"][name]["cka"][name] == pytest.approx(1.0, abs=1e-4)


def test_inspect_verdict_says_what_a_mixed_start_would_share():
    """The verdict names the sources start_mixed would start on: the reference and every source
    of a mixable pair with it, no other."""
    from zoo_rl.rl.report.inspect import verdict

    def report(reference: str, mixable: list[str]) -> dict:
        start = {"reference": reference, "why": "closest", "reference_prior": 0.95}
        pairs = {pair: [0.5, 0.5, 0.5, 0.1 if pair in mixable else 0.8] for pair in ("a~b", "a~c", "b~c")}
        return {"game": "Pong", "step0": {"transfer": {"start": start}},
                "linearity": {"pairs": pairs, "mixable_pairs": mixable, "threshold": 0.3}}  # fmt: skip

    assert "shared by b + a + c," in "\n".join(verdict(report("b", ["a~b", "b~c"])))
    assert "shared by a + c," in "\n".join(verdict(report("a", ["a~c", "b~c"])))
    assert "would change nothing: no source is mixable with c" in "\n".join(verdict(report("c", ["a~b"])))
    assert not any("start_mixed" in line for line in verdict(report("scratch", ["a~b"])))


def test_inspect_measures_the_step0_zoo_on_the_frames_the_sources_are_measured_on(tiny_zoo, tmp_path):
    """Two copies of one agent: the paper's step-0 zoo (identity alignment, coefficients that sum
    to one) computes that agent's function, so its health row must equal the agent's; dead
    units depend on how many frames are seen, so a row measured on fewer frames would not."""
    from zoo_rl.rl.report.inspect import inspect_zoo

    source = next(Path(p) for p in zoo_files(tiny_zoo) if "breakout" in Path(p).name)
    twin = tmp_path / "twin.zip"
    shutil.copy(source, twin)
    report = inspect_zoo("Breakout", [source, twin], AtariSettings(), n_envs=2, steps=60)
    own, step0 = report["features"][source.stem], report["step0"]["paper"]
    assert step0["dead_units"] == pytest.approx(own["dead_units"])
    assert step0["feature_variance"] == pytest.approx(own["feature_variance"], rel=1e-4)
    assert step0["cka"][source.stem] == pytest.approx(1.0, abs=1e-4)


def test_start_scores_matches_and_can_start_on_the_reference(tiny_zoo):
    from zoo_rl.rl.zoo.start import start_zoo

    env = make_atari_vec_env("Breakout", 1, 0)
    env.close()
    extractor = ZooNatureCNN(env.observation_space, zoo=zoo_files(tiny_zoo))
    start = start_zoo([extractor], "Breakout", AtariSettings(), seed=1, n_envs=2, steps=30, match_every=2,
                      reference_prior=0.6)  # fmt: skip
    assert set(start["logme"]) == set(extractor.member_names)
    assert start["reference"] == max(start["logme"], key=start["logme"].get)
    reference = extractor.member_names.index(start["reference"])
    expected = torch.full((3,), 0.2)
    expected[reference] = 0.6
    for layer in zoo_layers(extractor.zoo).values():
        torch.testing.assert_close(layer.ema, expected)
        x = torch.rand(2, *layer_input_shape(layer))
        torch.testing.assert_close(layer.gate(x), expected.expand(2, 3))


def test_start_chooses_the_source_whose_own_game_the_target_resembles(tiny_zoo):
    """With the members' games known (the zoo's manifest), the reference is the source closest
    to the target by domain shift: on Breakout, the agent trained on Breakout."""
    from zoo_rl.rl.zoo.manifest import member_game
    from zoo_rl.rl.zoo.start import start_zoo

    env = make_atari_vec_env("Breakout", 1, 0)
    env.close()
    zoo = zoo_files(tiny_zoo)
    extractor = ZooNatureCNN(env.observation_space, zoo=zoo)
    games = {Path(p).stem: member_game(p) for p in zoo}
    assert sorted(games.values()) == ["Breakout", "Pong"]
    start = start_zoo([extractor], "Breakout", AtariSettings(), seed=1, n_envs=2, steps=60, match_every=2,
                      reference_prior=0.95, games=games)  # fmt: skip
    breakout = next(name for name, game in games.items() if game == "Breakout")
    assert set(start["domain_shift"]) == set(games)
    assert start["reference"] == breakout and "closest source" in start["why"]
    assert start["target_in_zoo"] == [breakout]  # and the start says so
    assert start["domain_shift"][breakout] < start["domain_shift"][next(n for n in games if n != breakout)]


def test_a_sources_own_game_is_measured_once_and_again_when_its_file_changes(tiny_zoo, tmp_path):
    """The start's statistics of a source on its own game depend on the source alone: kept
    beside its file, keyed by its sha256, so a second start does not play its game again."""
    from zoo_rl.rl.zoo.own_games import CACHE_NAME, own_game_statistics

    member = tmp_path / "agent.zip"
    shutil.copy(zoo_files(tiny_zoo)[0], member)
    calls = []

    def measure(frames):
        calls.append(len(frames))
        return torch.rand(len(frames), 512)

    first = own_game_statistics(member, "Breakout", AtariSettings(), measure)
    assert len(calls) == 1 and (tmp_path / CACHE_NAME).is_file()
    assert own_game_statistics(member, "Breakout", AtariSettings(), measure) == first and len(calls) == 1
    own_game_statistics(member, "Breakout", AtariSettings(sticky_actions=0.0), measure)
    assert len(calls) == 2  # other preprocessing: other features
    member.write_bytes(member.read_bytes() + b"another agent")
    changed = own_game_statistics(member, "Breakout", AtariSettings(), measure)
    assert len(calls) == 3 and changed["mean"] != first["mean"]


def test_prepare_zoo_gives_a_hand_built_sb3_model_the_start_of_a_transfer_run(tiny_zoo):
    """The README's own-code path: PPO built by hand with ZooNatureCNN (actor and critic each
    with their own), then ``prepare_zoo``: the members' games are read from the manifest, the
    Breakout agent is found closer to Breakout than the Pong agent, and both extractors start at
    the recipe's prior on the reference the start chose."""
    env = make_atari_vec_env("Breakout", 1, 0)
    zoo = zoo_files(tiny_zoo)
    policy_kwargs = dict(features_extractor_class=ZooNatureCNN, features_extractor_kwargs=dict(zoo=zoo, lite=True),
                         share_features_extractor=False)  # fmt: skip
    model = PPO("CnnPolicy", env, policy_kwargs=policy_kwargs, n_steps=8, batch_size=8, device="cpu")
    start = prepare_zoo(model, "Breakout", seed=1, steps=60)
    extractors = (model.policy.pi_features_extractor, model.policy.vf_features_extractor)
    assert extractors[0] is not extractors[1]
    from zoo_rl.rl.zoo.start import member_games

    games = member_games(extractors[0])
    assert set(start["domain_shift"]) == set(games) and sorted(games.values()) == ["Breakout", "Pong"]
    shift = {games[name]: value for name, value in start["domain_shift"].items()}
    assert shift["Breakout"] < shift["Pong"]
    expected = torch.full((3,), 0.025)
    expected[extractors[0].member_names.index(start["reference"])] = 0.95
    for extractor in extractors:
        for layer in zoo_layers(extractor.zoo).values():
            torch.testing.assert_close(layer.ema, expected)
    plain = PPO("CnnPolicy", env, n_steps=8, batch_size=8, device="cpu")
    with pytest.raises(ConfigError, match="prepare_zoo: the PPO policy has no ZooNatureCNN"):
        prepare_zoo(plain, "Breakout")
    env.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_prepare_zoo_starts_a_model_that_trains_on_cuda(tiny_zoo):
    """The start's statistics are numpy work: they run on the CPU, and the extractors go back to
    the model's device as the parameter objects its optimizer holds, so the model trains there."""
    env = make_atari_vec_env("Breakout", 1, 0)
    policy_kwargs = dict(features_extractor_class=ZooNatureCNN, features_extractor_kwargs=dict(zoo=zoo_files(tiny_zoo)))
    model = PPO("CnnPolicy", env, policy_kwargs=policy_kwargs, n_steps=8, batch_size=8, device="cuda")
    held = [id(p) for group in model.policy.optimizer.param_groups for p in group["params"]]
    prepare_zoo(model, "Breakout", seed=1, steps=60)
    assert [id(p) for p in model.policy.parameters()] == held
    assert {p.device.type for p in model.policy.parameters()} == {"cuda"}
    model.learn(16)
    env.close()


def test_domain_shift_is_scale_free_and_grows_with_the_mean_shift():
    from zoo_rl.rl.zoo.measures import domain_shift
    from zoo_rl.rl.zoo.start import CLOSE_SHIFT, choose_reference

    g = torch.Generator().manual_seed(0)
    own, same = torch.rand(4000, 64, generator=g), torch.rand(4000, 64, generator=g)
    assert domain_shift(own, same) < 0.05
    assert domain_shift(own, same + 0.5) == pytest.approx(10 * domain_shift(10 * own, 10 * same + 5.0) / 10)
    assert domain_shift(own, same + 0.5) > domain_shift(own, same + 0.1) > domain_shift(own, same)
    logme = {"a": -1.2, "b": -1.1, "scratch": -1.0}
    assert choose_reference(logme, {"a": CLOSE_SHIFT / 2, "b": 2.0})[0] == "a"
    assert choose_reference(logme, {"a": 1.5 * CLOSE_SHIFT, "b": 2.0})[0] == "scratch"
    assert choose_reference(logme, {})[0] == "scratch"  # no game known: LogME's best
    assert choose_reference({"a": -1.2, "b": -1.1}, {"a": 2.0, "b": 3.0})[0] == "a"  # no fresh member to fall back on


def layer_input_shape(layer) -> tuple[int, ...]:
    if layer.weights.dim() == 5:  # (members, out, in, kh, kw): a convolution
        return (layer.weights.shape[2], 9, 9)
    return (layer.weights.shape[2],)


@pytest.mark.parametrize("method", ["lite", "finetune"])
def test_a_run_directory_is_all_that_eval_export_and_resume_need(method, tiny_zoo, tiny_hyperparams, tmp_path,
                                                                  monkeypatch, capsys):  # fmt: skip
    """A run killed after its first checkpoint, copied elsewhere, its zoo renamed: it resumes,
    evaluates and exports from another working directory, reading no zoo file."""
    zoo = shutil.copytree(tiny_zoo, tmp_path / "zoo")
    source = ["--source", zoo_files(zoo)[0]] if method == "finetune" else []
    with crash_after_checkpoint(monkeypatch):
        run_cli("transfer", "Breakout", "--method", method, "--zoo", zoo, *source, "--steps", 384, "--n-envs", 1,
                "--checkpoint-freq", 128, "--hyperparams", tiny_hyperparams, "--out", tmp_path / "runs",
                "--eval-episodes", 1)  # fmt: skip
    zoo.rename(tmp_path / "zoo-renamed")
    (killed,) = (tmp_path / "runs").iterdir()
    run = killed.name
    shutil.copytree(killed, tmp_path / "elsewhere" / run)
    shutil.rmtree(tmp_path / "runs")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run_cli("resume", run) == 0
    assert "resuming from the checkpoint at step 128 of 384" in capsys.readouterr().out
    assert run_cli("eval", run, "--episodes", 1) == 0
    assert run_cli("export", run, "-o", "plain.zip") == 0
    assert "features_extractor" in str(PPO.load("plain.zip", device="cpu").policy)


def test_dqn_lite_run_exports_its_online_and_target_networks(tiny_zoo, tiny_hyperparams, tmp_path, capsys):
    """DQN keeps a second zoo extractor in its target network: both become plain NatureCNNs with
    the trained model's outputs.  A truncated model.zip is then a one-line error naming it."""
    rc = run_cli("transfer", "Breakout", "--algo", "dqn", "--method", "lite", "--zoo", tiny_zoo, "--steps", 160,
                 "--n-envs", 1, "--out", tmp_path, "--eval-episodes", 1, "--hyperparams", tiny_hyperparams)  # fmt: skip
    assert rc == 0
    run = tmp_path / "Breakout_lite_dqn_s0"
    assert run_cli("export", run, "-o", tmp_path / "plain.zip") == 0
    plain = DQN.load(tmp_path / "plain.zip", device="cpu")
    trained, _ = load_run_model(run)
    trained.policy.set_training_mode(False)
    plain.policy.set_training_mode(False)
    obs = torch.randint(0, 256, (3, 4, 84, 84)).float()
    with torch.no_grad():
        for net in ("q_net", "q_net_target"):
            torch.testing.assert_close(getattr(plain.policy, net)(obs), getattr(trained.policy, net)(obs))
    model = run / "model.zip"
    model.write_bytes(model.read_bytes()[:200])
    capsys.readouterr()
    assert run_cli("eval", run, "--episodes", 1) == 2
    err = capsys.readouterr().err
    assert "model.zip" in err and err.count("\n") == 1


def test_update_sizes_records_the_gradient_the_clip_sees_and_leaves_training_as_it_was(
    tiny_zoo, tiny_hyperparams, monkeypatch
):
    """scripts/update_sizes.py: its hooks read each step's gradient before PPO clips it (the
    norm clip_grad_norm_ returns), and its look at the merged network draws no random number."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "update_sizes.py"
    spec = importlib.util.spec_from_file_location("update_sizes", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    clip = torch.nn.utils.clip_grad_norm_
    seen: list[float] = []
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: seen.append(float(clip(*a, **k))))
    argv = ["Breakout", "--method", "lite", "--zoo", tiny_zoo, "--steps", 128, "--hyperparams", tiny_hyperparams]
    report = script.main([str(a) for a in argv])
    steps = np.array(report["grad_norms"])
    assert report["gradient_steps"] == len(seen) == 4  # 128 steps, 64 per rollout, 2 minibatches
    np.testing.assert_allclose(np.hypot(steps[:, 0], steps[:, 1]), seen, rtol=1e-4)  # float32 sums
    assert set(report["acting_weights_relative_change"]) == {"cnn.0", "cnn.2", "cnn.4", "linear.0"}

    env = make_atari_vec_env("Breakout", 1, 0)
    extractor = ZooNatureCNN(env.observation_space, zoo=zoo_files(tiny_zoo), lite=True)
    env.close()
    state = torch.get_rng_state()
    script.acting_weights(extractor)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("options, as_scratch", [({}, True), ({"recipe": recipe(align=True)}, False)])
def test_ppo_with_the_zoo_fixed_on_its_fresh_member_trains_as_scratch(tiny_zoo, options, as_scratch):
    """The control that tells transfer from the zoo's own machinery: gates fixed one-hot on the
    fresh member.  Given scratch's starting weights and random stream, PPO must then take
    scratch's updates (the same rollouts, minibatches and Adam steps, up to float rounding in
    the norm-preserving mixture): whatever else separates such a run from scratch is chance.
    With a trainable alignment (the paper's recipe) it must not."""
    files = zoo_files(tiny_zoo)
    hyper = dict(n_steps=32, batch_size=32, n_epochs=2, learning_rate=2.5e-4, seed=0)
    zoo_kwargs = dict(zoo=files, lite=True, fixed_gates=[0.0] * len(files) + [1.0], **options)
    envs = [make_atari_vec_env("DemonAttack", 2, 0) for _ in range(2)]
    zoo_model = PPO("CnnPolicy", envs[0], **hyper, policy_kwargs=dict(
        features_extractor_class=ZooNatureCNN, features_extractor_kwargs=zoo_kwargs, net_arch=[]))  # fmt: skip
    scratch = PPO("CnnPolicy", envs[1], **hyper)
    stream = torch.get_rng_state(), np.random.get_state()
    start = {k: v.clone() for k, v in scratch.policy.features_extractor.state_dict().items()}
    copy_scratch_start(zoo_model, scratch)
    layers = zoo_layers(zoo_model.policy.features_extractor.zoo)
    for model in (scratch, zoo_model):
        torch.set_rng_state(stream[0])
        np.random.set_state(stream[1])
        model.learn(total_timesteps=128)  # two rollouts, two updates
    trained = scratch.policy.features_extractor.state_dict()
    moved = max(float((trained[k] - start[k]).abs().max()) for k in start)
    gap = max(
        float((layer.weights[-1].detach() - trained[f"{name}.weight"]).abs().max()) for name, layer in layers.items()
    )
    assert moved > 1e-4
    assert (gap < 0.01 * moved) == as_scratch, (gap, moved)
    for env in envs:
        env.close()


def test_a_zoo_run_on_its_fresh_member_with_scratch_start_is_the_scratch_run(tiny_zoo, tiny_hyperparams, tmp_path):
    """``scratch_start``: the fresh member and heads start as scratch's and the random stream
    goes on as scratch's, so a lite run with its gates fixed one-hot on the fresh member (and no
    rescale, whose rounding would otherwise creep in) is the scratch run of that seed, game for
    game, through the whole CLI path (start, callbacks, evaluation)."""
    common = ("transfer", "Breakout", "--steps", 640, "--seed", 3, "--eval-episodes", 1,
              "--hyperparams", tiny_hyperparams, "--out", tmp_path)  # fmt: skip
    assert run_cli(*common, "--method", "scratch") == 0
    options = ("fixed_gates=[0,0,1]", "scratch_start=true", "match_channels=false", "rescale=false")
    assert (
        run_cli(*common, "--method", "lite", "--zoo", tiny_zoo, *(x for o in options for x in ("--method-option", o)))
        == 0
    )
    scratch, zoo = (tmp_path / f"Breakout_{m}_ppo_s3" for m in ("scratch", "lite"))
    assert (scratch / "scores.csv").read_text().splitlines()[1:] != []
    assert [r.split(",")[:3] for r in (zoo / "scores.csv").read_text().splitlines()] == [
        r.split(",")[:3] for r in (scratch / "scores.csv").read_text().splitlines()
    ]
    assert json.loads((zoo / FINISHED).read_text())["scores"] == json.loads((scratch / FINISHED).read_text())["scores"]
    trained = {name: read_policy_state_dict(d / "model.zip") for name, d in (("scratch", scratch), ("zoo", zoo))}
    for name in ("cnn.0", "cnn.2", "cnn.4", "linear.0"):
        fresh_member = trained["zoo"][f"features_extractor.zoo.{name}.weights"][-1]
        torch.testing.assert_close(
            fresh_member, trained["scratch"][f"features_extractor.{name}.weight"], rtol=0, atol=0
        )
    torch.testing.assert_close(
        trained["zoo"]["action_net.weight"], trained["scratch"]["action_net.weight"], rtol=0, atol=0
    )


def test_lite_trains_to_the_same_weights_with_and_without_the_acting_cache(tiny_zoo, tiny_hyperparams):
    """The acting cache is a speed-up only: a lite PPO run takes the same updates with it."""
    from stable_baselines3.common.callbacks import CallbackList

    from zoo_rl.rl.training.callbacks import ActingCache
    from zoo_rl.rl.training.models import build_model, make_env

    config = RunConfig(command="transfer", game="Breakout", algo="ppo", steps=128, seed=3, method="lite",
                       zoo=zoo_files(tiny_zoo), n_envs=2, hyperparams={"n_steps": 32, "batch_size": 32},
                       method_options={"match_channels": False})  # fmt: skip
    weights = []
    for callbacks in ([], [ActingCache()]):
        env = make_env(config)
        model = build_model(config, env)
        model.learn(128, callback=CallbackList(callbacks))
        weights.append({k: v.clone() for k, v in model.policy.state_dict().items()})
        env.close()
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_extractors_see_channels_last_frames_on_the_cpu_and_compute_the_same_features(algo):
    """Every features extractor of a built model (DQN's target network's too) gets its frames in
    channels-last layout on the CPU; the layout changes nothing but float rounding."""
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    from zoo_rl.rl.training.models import build_model, make_env

    config = RunConfig(command="transfer", game="Breakout", algo=algo, steps=64, seed=0, method="scratch", n_envs=1,
                       hyperparams={"buffer_size": 64} if algo == "dqn" else {})  # fmt: skip
    env = make_env(config)
    model = build_model(config, env)
    env.close()
    extractors = {id(m): m for m in model.policy.modules() if isinstance(m, BaseFeaturesExtractor)}
    assert len(extractors) == (2 if algo == "dqn" else 1)
    frames = torch.rand(3, 4, 84, 84)
    for extractor in extractors.values():
        seen: list[torch.Tensor] = []
        first_conv = next(m for m in extractor.modules() if isinstance(m, torch.nn.Conv2d))
        handle = first_conv.register_forward_pre_hook(lambda _, args, seen=seen: seen.append(args[0]))
        with torch.no_grad():
            features = extractor(frames)
            plain = extractor.linear(extractor.cnn(frames))  # SB3's NatureCNN without the hook
        handle.remove()
        assert seen[0].is_contiguous(memory_format=torch.channels_last)
        assert not frames.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(features, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn"])
def test_built_models_step_with_fused_adam_and_sb3s_settings(algo):
    """Adam (PPO, DQN) becomes torch's fused Adam with the hyperparameters SB3 gave it; A2C's
    RMSprop, which has no fused kernel, is left as it is."""
    from zoo_rl.rl.training.models import build_model, make_env

    config = RunConfig(command="transfer", game="Breakout", algo=algo, steps=64, seed=0, method="scratch", n_envs=1,
                       hyperparams={"buffer_size": 64} if algo == "dqn" else {})  # fmt: skip
    env = make_env(config)
    model = build_model(config, env)
    env.close()
    optimizer = model.policy.optimizer
    if algo == "a2c":
        assert isinstance(optimizer, torch.optim.RMSprop) and "fused" not in optimizer.defaults
        return
    assert type(optimizer) is torch.optim.Adam and all(group["fused"] for group in optimizer.param_groups)
    assert optimizer.defaults["eps"] == (1e-5 if algo == "ppo" else 1e-8)  # SB3's choice for each policy
    trained = model.policy.q_net if algo == "dqn" else model.policy  # not DQN's target network
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {id(p) for p in trained.parameters()}


def test_fused_adam_takes_the_steps_plain_adam_takes():
    from zoo_rl.devices import fused

    torch.manual_seed(0)
    nets = [torch.nn.Linear(8, 4) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    optimizers = [torch.optim.Adam(nets[0].parameters(), lr=0.01, eps=1e-5),
                  fused(torch.optim.Adam(nets[1].parameters(), lr=0.01, eps=1e-5))]  # fmt: skip
    assert not optimizers[0].defaults["fused"] and optimizers[1].defaults["fused"]
    for _ in range(5):
        x = torch.randn(16, 8)
        for net, optimizer in zip(nets, optimizers, strict=True):
            optimizer.zero_grad()
            net(x).pow(2).mean().backward()
            optimizer.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert optimizers[0].state_dict()["state"].keys() == optimizers[1].state_dict()["state"].keys()
