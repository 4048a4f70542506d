"""Named Zoo-Tuning recipes (``--method-option recipe=NAME``): a zoo layer's settings and how
the zoo starts on a target game, in one frozen :class:`Recipe`.

``paper``: the layer as published (trainable channel alignment, gates that start uniform,
sigmoid gates normalised to sum to one, the agent's shared optimizer).  Measured on the shipped
zoo (docs/results.md), it averages unrelated agents into near-constant features and its gates
cannot move within 200K steps.

``transfer`` (default): what makes a zoo of independently trained agents usable, each part
measured (docs/recipes.md): a reference member chosen before training (the source whose
features see the target as they see its own game, or the fresh member where no source is
close), every member's hidden units matched to the reference's on target frames, the gates
starting at 0.95 on the reference (the zoo starts as the best-matched single model and the
gates can move away from it); a freshly initialised member, so the gates can fall back to
scratch; norm-preserving mixtures; softmax gates with a low temperature and one source prior
shared by every layer.  No trainable channel alignment (the matching at the start aligns the
members), so that a zoo whose gates sit on one member trains as that member alone would
(finetuning it, or scratch for the fresh member): a trainable alignment made the network that
acts move 1.4-2.1x as far per update.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from zoo_rl.core import ZooOptions
from zoo_rl.errors import ConfigError


@dataclass(frozen=True)
class Recipe(ZooOptions):
    """A zoo layer's settings (:class:`zoo_rl.core.ZooOptions`) and the start on a target.

    :param scratch_member: add a freshly initialised NatureCNN (SB3's orthogonal init) as a
        member, so the gates can choose to train from scratch where no source helps.
    :param match_channels: before training, choose a reference member and match every member's
        hidden units to the reference's on target frames (``zoo_rl.rl.zoo.start.prepare_zoo``).
    :param reference_prior: the reference's starting coefficient in every gate (softmax gates
        with a shared prior); None starts the gates uniform.
    :param start_mixed: share ``reference_prior`` between the reference and every source
        mixable with it (cross-task-linearity error at the features within
        ``zoo_rl.rl.zoo.measures.MIXABLE_ERROR``), so that a zoo of fine-tunes of one ancestor
        starts as their mixture; a zoo with no mixable pair starts as without it.
    """

    scratch_member: bool = False
    match_channels: bool = False
    reference_prior: float | None = None
    start_mixed: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reference_prior is not None and not 0.0 < self.reference_prior < 1.0:
            raise ValueError(f"reference_prior must be in (0, 1) or None, got {self.reference_prior}")
        if self.reference_prior is not None and not self.shared_prior:
            raise ValueError("reference_prior needs shared_prior (softmax gates with one source prior)")
        if self.start_mixed and (self.reference_prior is None or not self.match_channels):
            raise ValueError("start_mixed needs match_channels and a reference_prior to share")


# The options a user may set over a recipe (``lite`` is the method's choice, not the user's).
RECIPE_OPTIONS: tuple[str, ...] = tuple(f.name for f in fields(Recipe) if f.name != "lite")

DEFAULT_RECIPE = "transfer"
RECIPES: dict[str, Recipe] = {
    "paper": Recipe(),
    "transfer": Recipe(
        gate_norm="softmax",
        gate_temperature=0.05,
        shared_prior=True,
        rescale=True,
        align=False,
        scratch_member=True,
        match_channels=True,
        reference_prior=0.95,
    ),
}


def recipe(name: str = DEFAULT_RECIPE, **changes: Any) -> Recipe:
    """The recipe ``name`` with ``changes`` over it; a bad name or value is a ``ConfigError``."""
    if name not in RECIPES:
        raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    try:
        return RECIPES[name].replace(**changes)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"recipe {name}: {err}") from err
