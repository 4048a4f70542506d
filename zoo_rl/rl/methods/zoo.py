"""Zoo-Tuning (full and lite): the NatureCNN is replaced by ``ZooNatureCNN``."""

from __future__ import annotations

from typing import Any

from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.extractor import ZooNatureCNN

from .base import Method


class ZooTuning(Method):
    name = "zoo"
    needs_zoo = True
    extractor_class = ZooNatureCNN
    options = ("gate_norm", "align", "zoo_linear", "ema_momentum", "fixed_gates", "linear_gate", "conv_strategy")
    lite = False

    def fixed_options(self, config: RunConfig) -> dict[str, Any]:
        """Options that define the method (ablations), over the user's."""
        return {}

    def extractor_kwargs(self, config: RunConfig) -> dict[str, Any]:
        return dict(lite=self.lite, **{**config.method_options, **self.fixed_options(config)})


class LiteZooTuning(ZooTuning):
    name = "lite"
    lite = True
    exportable = True


class ZooNoAlign(ZooTuning):
    """Ablation: Zoo-Tuning without channel alignment."""

    name = "zoo-noalign"

    def fixed_options(self, config: RunConfig) -> dict[str, Any]:
        return {"align": False}


class ZooUniform(ZooTuning):
    """Ablation: fixed uniform gates, i.e. trained parameter averaging with no gate network.
    The gates being fixed, the trained extractor merges into one NatureCNN."""

    name = "zoo-uniform"
    exportable = True

    def fixed_options(self, config: RunConfig) -> dict[str, Any]:
        return {"fixed_gates": [1.0 / len(config.zoo)] * len(config.zoo)}
