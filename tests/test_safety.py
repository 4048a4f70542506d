"""Untrusted files are never unpickled: every torch.load in the project is weights-only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_LOADERS = {"torch.load", "torch.serialization.load"}


def unsafe_loads(source: str) -> list[str]:
    """torch loads without ``weights_only=True``, under any import spelling, and pickle imports."""
    found, aliases = [], set(TORCH_LOADERS)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            aliases |= {a.asname or a.name for a in node.names if a.name == "load"}
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{node.lineno}: imports {m}" for m in modules if m in ("pickle", "cloudpickle", "dill")]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in aliases:
            safe = any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
            if not safe:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_sees_every_spelling():
    assert unsafe_loads("import torch\ntorch.load(f, weights_only=True)") == []
    for bad in (
        "import torch\ntorch.load(f)",
        "import torch\ntorch.load(f, weights_only=False)",
        "from torch import load\nload(f)",
        "from torch import load as tl\ntl(f, map_location='cpu')",
        "import torch.serialization\ntorch.serialization.load(f)",
        "import pickle",
        "from cloudpickle import loads",
    ):
        assert unsafe_loads(bad), bad


def test_every_torch_load_is_weights_only():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in [*ROOT.glob("zoo_rl/**/*.py"), *ROOT.glob("scripts/**/*.py")]
        for line in unsafe_loads(path.read_text())
    ]
    assert offenders == []


def test_no_sb3_load_of_zoo_or_checkpoint_files():
    """Algo.load would unpickle the zip's data; zoo_rl reads policy.pth alone."""
    for path in ROOT.glob("zoo_rl/**/*.py"):
        assert not re.search(r"\b(PPO|A2C|DQN|QRDQN)\.load\(", path.read_text()), path
