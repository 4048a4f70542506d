"""Zoo-Tuning (full and lite): the NatureCNN is replaced by ``ZooNatureCNN``."""

from __future__ import annotations

from typing import Any

from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.extractor import ZooNatureCNN
from zoo_rl.rl.manifest import member_game
from zoo_rl.rl.recipes import DEFAULT_RECIPE, RECIPES
from zoo_rl.rl.zoo_files import member_name

from .base import Method

# The frames that prepare a zoo are played on seeds apart from training's and evaluation's:
# 8 games of up to 1,000 steps, never more frames than the run itself trains on.
START_SEED_OFFSET = 20_000
START_ENVS, START_STEPS = 8, 1000
# Options of the start (``start``), not of the extractor.
START_OPTIONS = ("match_channels", "reference_prior")


class ZooTuning(Method):
    name = "zoo"
    needs_zoo = True
    extractor_class = ZooNatureCNN
    options = ("recipe", "gate_norm", "gate_temperature", "shared_prior", "rescale", "source_grad_scale",
               "scratch_member", "match_channels", "reference_prior", "align", "zoo_linear", "ema_momentum",
               "fixed_gates", "linear_gate", "conv_strategy")  # fmt: skip
    lite = False

    def fixed_options(self, config: RunConfig) -> dict[str, Any]:
        """Options that define the method (ablations), over the user's."""
        return {}

    def _options(self, config: RunConfig) -> dict[str, Any]:
        return {**config.method_options, **self.fixed_options(config)}

    def extractor_kwargs(self, config: RunConfig) -> dict[str, Any]:
        options = {k: v for k, v in self._options(config).items() if k not in START_OPTIONS}
        return dict(lite=self.lite, **options)

    def start(self, model, config: RunConfig) -> dict[str, Any] | None:
        """Recipe ``transfer`` (option ``match_channels``): choose the reference member, match
        every member's units to it on target frames and start the gates on it
        (``zoo_rl.rl.inspection.start_zoo``); option ``reference_prior``: the reference's
        starting coefficient (the recipe's default)."""
        from zoo_rl.rl.inspection import start_zoo

        options = self._options(config)
        recipe = RECIPES[options.get("recipe", DEFAULT_RECIPE)]
        if not options.get("match_channels", recipe["match_channels"]):
            return None
        extractors = [m for m in model.policy.modules() if isinstance(m, ZooNatureCNN)]
        steps = max(1, min(START_STEPS, config.steps // START_ENVS))
        games = {member_name(p): member_game(p) for p in config.zoo}
        prior = options.get("reference_prior", recipe["reference_prior"])
        return start_zoo(extractors, config.game, config.settings, config.seed + START_SEED_OFFSET,
                         n_envs=START_ENVS, steps=steps, reference_prior=prior, games=games)  # fmt: skip


class LiteZooTuning(ZooTuning):
    name = "lite"
    lite = True
    exportable = True


class ZooNoAlign(ZooTuning):
    """Ablation: Zoo-Tuning without trainable channel alignment. The default ``transfer``
    recipe has none either, so there this is plain ``zoo``; it ablates the alignment of
    ``recipe=paper`` (the paper's ablation)."""

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
