"""What a transfer method is: how it shapes the policy and how it initialises it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from stable_baselines3.common.vec_env import VecEnv

from zoo_rl.errors import ConfigError
from zoo_rl.rl.config import RunConfig

ModelFactory = Callable[[RunConfig, VecEnv], BaseAlgorithm]


class Method:
    """A row of the paper's comparison.  Subclasses override what they change.

    A method that replaces the features extractor names its class and the options a user
    may set with ``--method-option``; the extractor gets the zoo and those options.
    """

    name: str = ""
    needs_zoo: bool = False
    needs_source: bool = False
    # Whether `zoo-rl export` can turn the trained policy into a plain NatureCNN policy.
    exportable: bool = False
    extractor_class: type[BaseFeaturesExtractor] | None = None
    options: tuple[str, ...] = ()

    def extractor_kwargs(self, config: RunConfig) -> dict[str, Any]:
        """Keyword arguments of ``extractor_class`` besides the zoo."""
        return dict(config.method_options)

    def policy_kwargs(self, config: RunConfig, zoo: Sequence[str] | None = None) -> dict[str, Any]:
        """Extra ``policy_kwargs`` for the SB3 algorithm (the features extractor, mostly);
        ``zoo``: the members to build from (default: the config's)."""
        unknown = sorted(set(config.method_options) - set(self.options))
        if unknown:
            expected = f"expected some of {self.options}" if self.options else "it takes none"
            raise ConfigError(f"unknown option(s) {unknown} for method {self.name}; {expected}")
        if self.extractor_class is None:
            return {}
        kwargs = dict(zoo=list(config.zoo if zoo is None else zoo), **self.extractor_kwargs(config))
        # SB3 drops the MLP between features and heads only for its own NatureCNN class;
        # net_arch=[] keeps every method's policy the same shape as a NatureCNN policy.
        return dict(features_extractor_class=self.extractor_class, features_extractor_kwargs=kwargs, net_arch=[])

    def initialize(self, model: BaseAlgorithm, config: RunConfig, build: ModelFactory) -> None:
        """Change the freshly built model's weights before training; ``build`` is the model
        factory, for a method that needs another model of its config (``scratch_start``)."""

    def start(self, model: BaseAlgorithm, config: RunConfig) -> dict[str, Any] | None:
        """Work done once, when a run starts fresh (not when a model is rebuilt to be
        evaluated, exported or resumed, whose weights are then loaded over it); what it
        returns is written to the run's ``start.json``."""
        return None


def nature_cnns(model: BaseAlgorithm) -> list[NatureCNN]:
    """Every NatureCNN of the policy (shared or not, online and target networks), once each:
    ``modules()`` yields a module shared by the actor and the critic only once."""
    return [m for m in model.policy.modules() if isinstance(m, NatureCNN)]
