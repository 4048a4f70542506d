"""An installed zoo-rl (not an editable checkout) works from any directory: a non-editable
``pip install`` of this repository into a folder of its own, then transfer, eval, export and
plot from an empty directory elsewhere, with the zoo passed by path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_non_editable_install_runs_from_an_empty_directory(tiny_zoo, tmp_path):
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", site, REPO], check=True, cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def zoo_rl(*argv) -> str:
        done = subprocess.run([sys.executable, "-m", "zoo_rl.cli", *map(str, argv)], cwd=work, env=env,
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    where = subprocess.run([sys.executable, "-c", "import zoo_rl; print(zoo_rl.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert Path(where.strip()).is_relative_to(site)  # the installed copy, not this checkout
    # default hyperparameters and env presets: the package's own algos.yaml and atari.yaml
    zoo_rl("transfer", "Breakout", "--method", "lite", "--zoo", tiny_zoo, "--steps", 256, "--n-envs", 1,
           "--eval-episodes", 1, "--out", "runs")  # fmt: skip
    run = Path("runs") / "Breakout_lite_ppo_s0"
    assert "Breakout:" in zoo_rl("eval", run, "--episodes", 1)
    zoo_rl("export", run, "-o", "plain.zip")
    zoo_rl("plot", "runs", "-o", "curves.png")
    assert (work / "plain.zip").stat().st_size > 0 and (work / "curves.png").stat().st_size > 0
