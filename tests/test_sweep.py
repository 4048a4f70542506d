"""Sweeps: a 2x2 grid of tiny runs on each backend, a failing run, and resuming."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from zoo_rl.errors import ConfigError
from zoo_rl.sweep import load_sweep, run_sweep


def write_sweep(tmp_path: Path, tiny_zoo: Path, hyperparams: Path, runs: list[dict]) -> Path:
    config = {
        "out": str(tmp_path / "study"),
        "common": {"steps": 64, "n_envs": 1, "eval_episodes": 1, "hyperparams": str(hyperparams),
                   "zoo": str(tiny_zoo)},
        "targets": ["Breakout"],
        "runs": runs,
        "resources": {"cpus": 1},
    }  # fmt: skip
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


GRID = [{"method": "scratch", "seeds": [0, 1]}, {"method": "lite", "seeds": [0, 1]}]
FAILING = [{"method": "scratch", "seeds": [0]}, {"method": "lite", "seeds": [0], "options": {"no_such_option": 1}}]


def test_grid_expands_to_the_runs_the_cli_would_make(tmp_path, tiny_zoo, tiny_hyperparams):
    runs = [*GRID, {"method": "finetune", "source": "all", "targets": ["Pong", "Breakout"]}]
    sweep = load_sweep(write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, runs))
    names = sorted(spec.name for spec in sweep.runs)
    assert names == sorted([
        "Breakout_scratch_ppo_s0", "Breakout_scratch_ppo_s1", "Breakout_lite_ppo_s0", "Breakout_lite_ppo_s1",
        "Pong_finetune-breakout_ppo_s0_ppo_s0", "Pong_finetune-pong_dqn_s0_ppo_s0",
        "Breakout_finetune-breakout_ppo_s0_ppo_s0", "Breakout_finetune-pong_dqn_s0_ppo_s0",
    ])  # fmt: skip
    assert all(spec.run_dir.parent == tmp_path / "study" for spec in sweep.runs)
    elsewhere = load_sweep(write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, runs), out=tmp_path / "again")
    assert [spec.run_dir for spec in elsewhere.runs] == [tmp_path / "again" / spec.name for spec in sweep.runs]
    moved = load_sweep(write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, [{**GRID[0], "device": "cpu"}]), "cuda")
    assert [spec.run_dir for spec in moved.runs] == [spec.run_dir for spec in sweep.runs][:2]  # the same runs,
    assert all(spec.argv[spec.argv.index("--device") + 1] == "cuda" for spec in moved.runs)  # trained elsewhere


def test_method_options_reach_the_run_as_the_yaml_wrote_them(tmp_path, tiny_zoo, tiny_hyperparams):
    from zoo_rl.rl.training.command_line import transfer_configs, transfer_parser

    options = {"reference_prior": None, "scratch_member": False, "recipe": "transfer", "gate_temperature": 0.1}
    path = write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, [{"method": "lite", "options": options}])
    (spec,) = load_sweep(path).runs
    (config,) = transfer_configs(transfer_parser().parse_args(list(spec.argv)))
    assert config.method_options == options
    assert "reference_prior=null" in spec.argv  # as a user would type it


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ([{"method": "zoo", "seedz": [0]}], "runs[0]: unknown key(s) ['seedz']"),
        ([{"seeds": [0]}], "runs[0]: missing key 'method'"),
        ([{"method": "zoo", "seeds": "0"}], "seeds must be a list of integers"),
        ([{"method": "zoo", "steps": -1}], "runs[0]: steps must be >= 1"),
        (
            [{"method": "lite"}, {"method": "lite", "options": {"gate_temperature": 0.1}}],
            "runs[1]: run Breakout_lite_ppo_s0 is already in the grid with other options",
        ),
    ],
)
def test_bad_sweep_configs_name_the_entry(tmp_path, tiny_zoo, tiny_hyperparams, runs, message):
    with pytest.raises(ConfigError) as err:
        load_sweep(write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, runs))
    assert message in str(err.value)


def test_sweep_resources_must_be_numbers(tmp_path, tiny_zoo, tiny_hyperparams):
    path = write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, GRID)
    path.write_text(path.read_text().replace("cpus: 1", "cpus: two"))
    with pytest.raises(ConfigError, match=r"sweep.yaml: resources: cpus: expected a number >= 0, got 'two'"):
        load_sweep(path)


def outcomes_by_status(outcomes) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for o in outcomes:
        result.setdefault(o.status, set()).add(o.name)
    return result


def check_grid_then_resume(tmp_path, tiny_zoo, tiny_hyperparams, backend: str) -> None:
    config = write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, GRID)
    first = run_sweep(config, backend=backend, jobs=2, log=lambda *_: None)
    assert set(outcomes_by_status(first)) == {"done"} and len(first) == 4
    study = tmp_path / "study"
    with open(study / "summary.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"scratch", "lite"} and all(r["seeds"] == "2" for r in rows.values())
    assert (study / "curves.png").stat().st_size > 0
    second = run_sweep(config, backend=backend, jobs=2, log=lambda *_: None)
    assert outcomes_by_status(second) == {"skipped": {o.name for o in first}}


def check_failing_run_is_reported(tmp_path, tiny_zoo, tiny_hyperparams, backend: str) -> None:
    lines: list[str] = []
    config = write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, FAILING)
    outcomes = run_sweep(config, backend=backend, jobs=2, log=lines.append)
    status = outcomes_by_status(outcomes)
    assert status == {"done": {"Breakout_scratch_ppo_s0"}, "failed": {"Breakout_lite_ppo_s0"}}
    failed = next(o for o in outcomes if o.status == "failed")
    assert "no_such_option" in failed.message and Path(failed.log).exists()
    assert any(f"log: {failed.log}" in line for line in lines)
    assert (tmp_path / "study" / "Breakout_scratch_ppo_s0" / "model.zip").exists()
    assert not (tmp_path / "study" / "Breakout_lite_ppo_s0").exists()


def test_local_grid_runs_summarises_and_resumes(tmp_path, tiny_zoo, tiny_hyperparams):
    check_grid_then_resume(tmp_path, tiny_zoo, tiny_hyperparams, "local")


def test_finished_runs_kept_without_their_models_are_skipped_and_summarised(tmp_path, tiny_zoo, tiny_hyperparams):
    """A study's results can be kept (in git) without the model weights and still be resumed."""
    config = write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, GRID[:1])
    run_sweep(config, log=lambda *_: None)
    study = tmp_path / "study"
    for model in study.glob("*/model.zip"):
        model.unlink()
    (study / "summary.csv").unlink()
    again = run_sweep(config, log=lambda *_: None)
    assert outcomes_by_status(again) == {"skipped": {"Breakout_scratch_ppo_s0", "Breakout_scratch_ppo_s1"}}
    with open(study / "summary.csv") as f:
        assert [(r["method"], r["seeds"]) for r in csv.DictReader(f)] == [("scratch", "2")]


def test_ray_grid_runs_summarises_and_resumes(tmp_path, tiny_zoo, tiny_hyperparams):
    pytest.importorskip("ray", reason="the ray extra is installed by scripts/test.sh")
    check_grid_then_resume(tmp_path, tiny_zoo, tiny_hyperparams, "ray")


def test_ray_failing_run_is_reported_and_the_others_finish(tmp_path, tiny_zoo, tiny_hyperparams):
    pytest.importorskip("ray", reason="the ray extra is installed by scripts/test.sh")
    check_failing_run_is_reported(tmp_path, tiny_zoo, tiny_hyperparams, "ray")


def test_local_failing_run_is_reported_and_the_others_finish(tmp_path, tiny_zoo, tiny_hyperparams, capsys):
    """Through the command line: the sweep exits 1 and names the failed run and its log."""
    check_failing_run_is_reported(tmp_path, tiny_zoo, tiny_hyperparams, "local")
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:  # again, through the CLI: the finished run is skipped
        run_cli("sweep", tmp_path / "sweep.yaml", "--jobs", 2)
    assert err.value.code == 1
    out = capsys.readouterr().out
    assert "Breakout_scratch_ppo_s0 skipped" in out and "Breakout_lite_ppo_s0 failed" in out
    assert "1 of 2 runs finished; 1 failed" in out


def test_shipped_quickstart_is_a_sweep_of_lite_and_scratch():
    """`zoo-rl quickstart` runs configs/quickstart.yaml as a sweep: the README's main job."""
    root = Path(__file__).resolve().parents[1]
    sweep = load_sweep(root / "configs" / "quickstart.yaml")
    assert [spec.name for spec in sweep.runs] == ["DemonAttack_lite_ppo_s0", "DemonAttack_scratch_ppo_s0"]
    zoo = sweep.runs[0].argv[sweep.runs[0].argv.index("--zoo") + 1]
    assert Path(zoo).is_absolute() and Path(zoo).name == "agents"


def test_quickstart_runs_its_sweep_side_by_side_then_summarises_and_plots(
    tmp_path, tiny_zoo, tiny_hyperparams, capsys, monkeypatch
):
    config = write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, [{"method": "lite"}, {"method": "scratch"}])
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert run_cli("quickstart", "--config", str(config)) == 0
    study = tmp_path / "study"
    out = capsys.readouterr().out
    assert f"2 runs in {study} (local backend, 2 at a time)" in out  # one per core, up to the grid's 2
    with open(study / "summary.csv") as f:
        assert sorted(r["method"] for r in csv.DictReader(f)) == ["lite", "scratch"]
    assert (study / "curves.png").stat().st_size > 0
    assert f"learning curves: {study / 'curves.png'}" in out


def test_dry_run_lists_each_run_and_where_it_stands(tmp_path, tiny_zoo, tiny_hyperparams, capsys):
    config = write_sweep(tmp_path, tiny_zoo, tiny_hyperparams, GRID)
    study = tmp_path / "study"
    (study / "Breakout_scratch_ppo_s0").mkdir(parents=True)
    (study / "Breakout_scratch_ppo_s0" / "eval.json").write_text("{}")
    (study / "Breakout_lite_ppo_s1").mkdir()
    (study / "Breakout_lite_ppo_s1" / "checkpoint.pt").write_bytes(b"")
    run_cli("sweep", config, "--dry-run")
    lines = capsys.readouterr().out.strip().splitlines()
    states = {line.split()[0]: line for line in lines[:-1]}
    assert len(lines) == 5 and lines[-1] == "4 runs: 1 finished, 1 resumes, 2 new"
    assert states["finished"].startswith("finished Breakout_scratch_ppo_s0: zoo-rl transfer Breakout --method scratch")
    assert states["resumes"].startswith("resumes  Breakout_lite_ppo_s1: zoo-rl transfer Breakout --method lite")
    assert sorted(p.name for p in study.iterdir()) == ["Breakout_lite_ppo_s1", "Breakout_scratch_ppo_s0"]  # ran nothing
