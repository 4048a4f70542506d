"""Zoo-Tuning (full and lite): the NatureCNN is replaced by ``ZooNatureCNN``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from zoo_rl.core import zoo_layers
from zoo_rl.errors import ConfigError
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.zoo.extractor import SCRATCH_MEMBER, ZooNatureCNN, zoo_extractors
from zoo_rl.rl.zoo.recipes import DEFAULT_RECIPE, RECIPE_OPTIONS, Recipe, recipe
from zoo_rl.rl.zoo.start import START_ENVS, START_STEPS, prepare_zoo

from .base import Method, ModelFactory, nature_cnns


class ZooTuning(Method):
    """Options: ``recipe`` (a name in ``zoo_rl.rl.zoo.recipes.RECIPES``) and any of its fields
    over it, ``fixed_gates`` (the extractor's) and ``scratch_start`` (:meth:`initialize`)."""

    name = "zoo"
    needs_zoo = True
    extractor_class = ZooNatureCNN
    options = ("recipe", *RECIPE_OPTIONS, "fixed_gates", "scratch_start")
    lite = False
    fixed_gates: str | None = None

    def recipe(self, config: RunConfig) -> Recipe:
        options = {k: v for k, v in config.method_options.items() if k in RECIPE_OPTIONS}
        return recipe(config.method_options.get("recipe", DEFAULT_RECIPE), **options)

    def extractor_kwargs(self, config: RunConfig) -> dict[str, Any]:
        fixed_gates = self.fixed_gates or config.method_options.get("fixed_gates")
        return dict(lite=self.lite, recipe=self.recipe(config), fixed_gates=fixed_gates)

    def initialize(self, model, config: RunConfig, build: ModelFactory) -> None:
        """Option ``scratch_start``: the fresh member and the heads start as the scratch run of
        the same seed, and the random stream goes on as scratch's (:func:`start_as_scratch`)."""
        if config.method_options.get("scratch_start"):
            start_as_scratch(model, config, build)

    def start(self, model, config: RunConfig) -> dict[str, Any] | None:
        """With the recipe's ``match_channels``: choose the reference member, match every
        member's units to it on target frames and start the gates on it with the recipe's
        ``reference_prior`` (``zoo_rl.rl.zoo.start.prepare_zoo``, never on more frames than the
        run trains on)."""
        chosen = self.recipe(config)
        if not chosen.match_channels:
            return None
        steps = max(1, min(START_STEPS, config.steps // START_ENVS))
        started = prepare_zoo(model, config.game, config.seed, config.settings, reference_prior=chosen.reference_prior,
                              mixed=chosen.start_mixed, steps=steps)  # fmt: skip
        print(f"{config.run_name()}: the start chose {started['reference']} ({started['why']})", flush=True)
        if len(started["starts_on"]) > 1:
            print(f"{config.run_name()}: its gates start on {' + '.join(started['starts_on'])} (mixable)", flush=True)
        for name in started["target_in_zoo"]:
            if name != started["reference"]:
                print(f"{config.run_name()}: note: {name} was trained on {config.game} itself", flush=True)
        return started


class LiteZooTuning(ZooTuning):
    name = "lite"
    lite = True
    exportable = True


class ZooUniform(ZooTuning):
    """Ablation: fixed uniform gates, i.e. trained parameter averaging with no gate network.
    The gates being fixed, the trained extractor merges into one NatureCNN."""

    name = "zoo-uniform"
    exportable = True
    fixed_gates = "uniform"


def start_as_scratch(model: BaseAlgorithm, config: RunConfig, build: ModelFactory) -> None:
    """Give ``model`` the start of the scratch run of the same config and seed: its fresh member
    becomes scratch's NatureCNN, its heads scratch's heads, and torch's, numpy's and Python's
    generators are left where scratch's stand after building its model.

    Why: a zoo run and a scratch run of one seed otherwise differ in every random draw (building
    the zoo draws from torch's generator), so a control whose gates sit on the fresh member cannot
    be told from scratch by its result alone.  With this start such a control takes scratch's
    updates (exactly without the norm-preserving rescale, up to float rounding with it;
    tests/test_rl.py), and any zoo run gets scratch's draws as far as they go: a paired
    comparison with scratch."""
    extractors = zoo_extractors(model)
    if not extractors or any(e.member_names[-1] != SCRATCH_MEMBER for e in extractors):
        raise ConfigError("method option scratch_start needs the fresh member (scratch_member=true)")
    scratch_config = replace(config, method="scratch", zoo=[], source=None, method_options={})
    copy_scratch_start(model, build(scratch_config, model.env))


def copy_scratch_start(model: BaseAlgorithm, scratch: BaseAlgorithm) -> None:
    """Copy ``scratch``'s NatureCNN into the fresh member of ``model``'s zoo extractors and its
    heads into ``model``'s heads (the weights of :func:`start_as_scratch`)."""
    extractors = zoo_extractors(model)
    cnns = nature_cnns(scratch)
    with torch.no_grad():
        for extractor, cnn in zip(extractors, cnns, strict=True):
            state = cnn.state_dict()
            for name, layer in zoo_layers(extractor.zoo).items():
                layer.weights[-1].copy_(state[f"{name}.weight"])
                if layer.biases is not None:
                    layer.biases[-1].copy_(state[f"{name}.bias"])
    heads = {k: v for k, v in scratch.policy.state_dict().items() if "features_extractor" not in k}
    loaded = model.policy.load_state_dict(heads, strict=False)  # the same algorithm builds the same heads
    assert not loaded.unexpected_keys and all("features_extractor" in k for k in loaded.missing_keys)
