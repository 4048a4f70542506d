"""Untrusted files are never unpickled: every torch.load in the project is weights-only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_torch_load_is_weights_only():
    offenders = []
    for path in [*ROOT.glob("zoo_rl/**/*.py"), *ROOT.glob("scripts/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                safe = any(
                    k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords
                )
                if not safe:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


def test_no_sb3_load_of_zoo_or_checkpoint_files():
    """Algo.load would unpickle the zip's data; zoo_rl reads policy.pth alone."""
    for path in ROOT.glob("zoo_rl/**/*.py"):
        assert not re.search(r"\b(PPO|A2C|DQN|QRDQN)\.load\(", path.read_text()), path
