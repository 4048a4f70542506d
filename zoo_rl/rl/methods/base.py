"""What a transfer method is: how it shapes the policy and how it initialises it."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN

from zoo_rl.rl.config import RunConfig


class Method:
    """A row of the paper's comparison.  Subclasses override what they change."""

    name: str = ""
    needs_zoo: bool = False
    needs_source: bool = False
    # Whether `zoo-rl export` can turn the trained policy into a plain NatureCNN policy.
    exportable: bool = False

    def policy_kwargs(self, config: RunConfig) -> dict[str, Any]:
        """Extra ``policy_kwargs`` for the SB3 algorithm (the features extractor, mostly)."""
        return {}

    def initialize(self, model: BaseAlgorithm, config: RunConfig) -> None:
        """Change the freshly built model's weights before training."""


def nature_cnns(model: BaseAlgorithm) -> list[NatureCNN]:
    """Every NatureCNN of the policy (shared or not, online and target networks), once each."""
    seen: dict[int, NatureCNN] = {}
    for module in model.policy.modules():
        if isinstance(module, NatureCNN):
            seen.setdefault(id(module), module)
    return list(seen.values())
