"""Named sets of Zoo-Tuning options (``--method-option recipe=NAME``).

``paper``: the layer as published (identity channel alignment, gates that start uniform,
sigmoid gates normalised to sum to one, the agent's shared optimizer).  Measured on the shipped
zoo (docs/results.md), it averages unrelated agents into near-constant features and its gates
cannot move within 200K steps.

``transfer`` (default): what makes a zoo of independently trained agents usable, each part
measured in docs/results.md: a reference member chosen before training (the source whose
features see the target as they see its own game, or the fresh member where no source is
close), every member's hidden units matched to the reference's on target frames, the gates
starting at 0.95 on the reference (the zoo starts as the best-matched single model and the
gates can move away from it); a freshly initialised member, so the gates can fall back to
scratch; norm-preserving mixtures; softmax gates with a low temperature and one source prior
shared by every layer. The members' weights take the optimizer's plain step: no trainable
channel alignment (the matching at the start aligns the members) and unscaled gradients, so that
a zoo whose gates sit on one member trains as that member alone would (finetuning it, or scratch
for the fresh member); a trainable alignment made the network that acts move 1.4-2.1x as far per update, and
gradients scaled by the number of members gave the reference ~6 times a plain layer's gradient
and made PPO's global clip act on nearly every step (docs/recipes.md).
"""

from __future__ import annotations

from typing import Any

DEFAULT_RECIPE = "transfer"
RECIPES: dict[str, dict[str, Any]] = {
    "paper": dict(
        gate_norm="normalized",
        gate_temperature=1.0,
        shared_prior=False,
        rescale=False,
        source_grad_scale=1.0,
        align=True,
        scratch_member=False,
        match_channels=False,
        reference_prior=None,
    ),
    "transfer": dict(
        gate_norm="softmax",
        gate_temperature=0.05,
        shared_prior=True,
        rescale=True,
        source_grad_scale=1.0,
        align=False,
        scratch_member=True,
        match_channels=True,
        reference_prior=0.95,  # the chosen reference's starting coefficient (None: uniform)
    ),
}
