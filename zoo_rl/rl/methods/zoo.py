"""Zoo-Tuning (full and lite): the NatureCNN is replaced by ``ZooNatureCNN``."""

from __future__ import annotations

from typing import Any

from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.extractor import SCRATCH_MEMBER, ZooNatureCNN
from zoo_rl.rl.recipes import DEFAULT_RECIPE, RECIPES

from .base import Method

# Target frames for matching the members' units: 8 games of a random policy, every 15th of
# 600 steps (320 frames), on seeds apart from training's and evaluation's.
MATCH_FRAMES = dict(n_envs=8, steps=600, every=15)
MATCH_SEED_OFFSET = 20_000


class ZooTuning(Method):
    name = "zoo"
    needs_zoo = True
    extractor_class = ZooNatureCNN
    options = ("recipe", "gate_norm", "gate_temperature", "shared_prior", "rescale", "source_grad_scale",
               "scratch_member", "match_channels", "match_reference", "align", "zoo_linear", "ema_momentum",
               "fixed_gates", "linear_gate", "conv_strategy")  # fmt: skip
    lite = False

    def fixed_options(self, config: RunConfig) -> dict[str, Any]:
        """Options that define the method (ablations), over the user's."""
        return {}

    def _options(self, config: RunConfig) -> dict[str, Any]:
        return {**config.method_options, **self.fixed_options(config)}

    def extractor_kwargs(self, config: RunConfig) -> dict[str, Any]:
        options = {k: v for k, v in self._options(config).items() if k not in ("match_channels", "match_reference")}
        return dict(lite=self.lite, **options)

    def initialize(self, model, config: RunConfig) -> None:
        """Match every member's units to the reference member's on target frames (recipe
        ``transfer``; option ``match_channels``).  The reference is ``match_reference``, a
        member's file stem or ``scratch``; by default the fresh member where there is one
        (no source is favoured), else the first."""
        from zoo_rl.rl.inspect import target_frames

        options = self._options(config)
        recipe = RECIPES[options.get("recipe", DEFAULT_RECIPE)]
        if not options.get("match_channels", recipe["match_channels"]):
            return
        extractors = [m for m in model.policy.modules() if isinstance(m, ZooNatureCNN)]
        names = extractors[0].member_names
        reference = options.get("match_reference", SCRATCH_MEMBER if SCRATCH_MEMBER in names else names[0])
        if reference not in names:
            raise ValueError(f"match_reference {reference!r} is not a member; expected one of {names}")
        frames = target_frames(config.game, config.settings, config.seed + MATCH_SEED_OFFSET, **MATCH_FRAMES)
        for extractor in extractors:
            extractor.match_channels(frames, reference=names.index(reference))



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
        return {"fixed_gates": "uniform"}
