"""The RL path: Zoo-Tuning feature extractors for Stable-Baselines3 Atari agents.

The names below are imported on first use, so that importing a light module of this package
(the run configs the CLI parses) does not load torch and Stable-Baselines3."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ZooNatureCNN": ".zoo.extractor",
    "atari_hyperparams": ".config",
    "detach_from_zoo": ".zoo.extractor",
    "ZooFileError": ".zoo.members",
    "nature_cnn_weights": ".zoo.members",
    "prepare_zoo": ".zoo.start",
    "RECIPES": ".zoo.recipes",
    "Recipe": ".zoo.recipes",
    "recipe": ".zoo.recipes",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
