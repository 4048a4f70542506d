"""Zoo-Tuning (full and lite): the NatureCNN is replaced by ``ZooNatureCNN``."""

from __future__ import annotations

from typing import Any

from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.extractor import ZooNatureCNN

from .base import Method

# Options a user may set with --method-option KEY=VALUE; the rest are fixed by the method.
ZOO_OPTIONS = ("gate_norm", "align", "zoo_linear", "ema_momentum", "fixed_gates")


class ZooTuning(Method):
    name = "zoo"
    needs_zoo = True
    lite = False

    def fixed_options(self, config: RunConfig) -> dict[str, Any]:
        """Options that define the method (ablations), over the user's."""
        return {}

    def policy_kwargs(self, config: RunConfig) -> dict[str, Any]:
        unknown = sorted(set(config.method_options) - set(ZOO_OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for method {self.name}; expected some of {ZOO_OPTIONS}")
        kwargs = dict(zoo=list(config.zoo), lite=self.lite, **{**config.method_options, **self.fixed_options(config)})
        # SB3 drops the MLP between features and heads only for its own NatureCNN class;
        # net_arch=[] keeps the zoo policy the same shape as a NatureCNN policy.
        return dict(features_extractor_class=ZooNatureCNN, features_extractor_kwargs=kwargs, net_arch=[])


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
