"""Untrusted files are never unpickled: every torch.load in the project is weights-only."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_torch_load_is_weights_only():
    offenders = []
    for path in [*ROOT.glob("zoo_rl/**/*.py"), *ROOT.glob("scripts/**/*.py")]:
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(", text):
            call = text[match.start() : text.find(")", match.end()) + 1]
            if "weights_only=True" not in call:
                offenders.append(f"{path.relative_to(ROOT)}: {call}")
    assert offenders == []


def test_no_sb3_load_of_zoo_or_checkpoint_files():
    """Algo.load would unpickle the zip's data; zoo_rl reads policy.pth alone."""
    for path in ROOT.glob("zoo_rl/**/*.py"):
        assert not re.search(r"\b(PPO|A2C|DQN|QRDQN)\.load\(", path.read_text()), path
