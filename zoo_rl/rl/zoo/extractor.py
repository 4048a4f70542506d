"""``ZooNatureCNN``: a Stable-Baselines3 features extractor made of Zoo-Tuning layers.

Plug it into any SB3 algorithm that takes ``"CnnPolicy"``::

    policy_kwargs = dict(
        features_extractor_class=ZooNatureCNN,
        features_extractor_kwargs=dict(zoo=["agents/pong_ppo.zip", "agents/breakout_dqn.zip"], lite=True),
    )
    model = PPO("CnnPolicy", env, policy_kwargs=policy_kwargs)
    prepare_zoo(model, "DemonAttack")  # zoo_rl.rl.prepare_zoo: the default recipe's start, before training
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from torch import nn

from zoo_rl.core import ZooLayer, freeze_gates, merge, set_prior, zoo_layers, zooify
from zoo_rl.devices import channels_last
from zoo_rl.errors import ConfigError

from .matching import aligned_groups, correlation, permute_member, unit_samples
from .members import ZooShell, member_file, member_name, nature_cnn_weights
from .recipes import DEFAULT_RECIPE, Recipe
from .recipes import recipe as named_recipe

# NatureCNN's weighted layers in order; each is followed by a ReLU, the Flatten sits before linear.0.
CHAIN: tuple[str, ...] = ("cnn.0", "cnn.2", "cnn.4", "linear.0")
SCRATCH_MEMBER = "scratch"


class TransferExtractor(BaseFeaturesExtractor):
    """A features extractor built from a zoo that amounts to one plain NatureCNN once trained:
    :meth:`as_nature_cnn` gives it, for ``zoo-rl export`` (Zoo-Tuning with shared coefficients,
    a distillation student, a Knowledge Flow student free of its teachers).  It raises
    ``ValueError`` where the trained extractor has no such form (full Zoo-Tuning's weights
    depend on each input; Knowledge Flow still using a teacher).  ``member_names`` names what
    it learns from, for what it reads out (``zoo_rl.core.readouts``)."""

    member_names: list[str]

    def as_nature_cnn(self) -> nn.Module:
        raise NotImplementedError


class ZooNatureCNN(TransferExtractor):
    """SB3's NatureCNN whose convolutions and linear layer are Zoo-Tuning layers initialised
    from the NatureCNN of every zoo member.

    :param zoo: SB3 model zips (PPO, A2C, DQN, QR-DQN, mixed freely) with NatureCNN policies.
    :param lite: lite Zoo-Tuning (batch-level gate with an EMA, mergeable into one NatureCNN).
    :param recipe: the layers' settings and the start (``zoo_rl.rl.zoo.recipes``): a name
        (``"transfer"``, or ``"paper"`` for the layer as published) or a :class:`Recipe`, e.g.
        ``recipe("transfer", gate_temperature=0.1)``; ``lite`` overrides the recipe's.
    :param fixed_gates: fix the coefficients of every layer (one per member, or ``"uniform"``)
        and run no gate network.
    :param read_zoo: initialise the members from the zoo's files; False leaves them at a
        NatureCNN's initialisation, for a saved model's weights to be loaded over them
        (:func:`detach_from_zoo` sets it in a model's saved arguments).

    Every layer is aggregated, the 3136 -> 512 linear layer too, whose gate reads the channel
    means of the 64 x 7 x 7 map it flattens, like the convolutions' gates (the paper's gate on
    the flat 3136-d input would cost 1.5x the layer it gates; docs/performance.md).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        zoo: Sequence[str | Path],
        features_dim: int = 512,
        lite: bool = False,
        recipe: str | Recipe = DEFAULT_RECIPE,
        fixed_gates: Sequence[float] | str | None = None,
        normalized_image: bool = False,
        read_zoo: bool = True,
    ):
        options = (recipe if isinstance(recipe, Recipe) else named_recipe(recipe)).replace(lite=lite)
        zoo = list(zoo) if read_zoo else [ZooShell(p) for p in zoo]
        template = NatureCNN(observation_space, features_dim=features_dim, normalized_image=normalized_image)
        super().__init__(observation_space, features_dim)
        with torch.no_grad():  # the map that the Flatten before the linear layer flattens
            feature_map = tuple(template.cnn[:-1](torch.zeros(1, *observation_space.shape)).shape[1:])
        channels = observation_space.shape[0]
        sources = [
            template.state_dict() if isinstance(p, ZooShell) else nature_cnn_weights(p, in_channels=channels)
            for p in zoo
        ]
        self.member_names = [member_name(p) for p in zoo]
        # where the start keeps each source's features on its own game (zoo_rl.rl.zoo.own_games)
        self.member_files: dict[str, str | None] = {
            member_name(p): None if isinstance(p, ZooShell) else str(member_file(p)) for p in zoo
        }
        if options.scratch_member:
            sources.append(fresh_nature_cnn_weights(observation_space, features_dim, normalized_image))
            self.member_names.append(SCRATCH_MEMBER)
        self.recipe = options
        self.zoo = zooify(template, sources, options, gate_unflatten={"linear.0": feature_map})
        if fixed_gates == "uniform":
            fixed_gates = [1.0 / len(sources)] * len(sources)
        if fixed_gates is not None:
            freeze_gates(self.zoo, fixed_gates)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.zoo(observations)

    def as_nature_cnn(self) -> nn.Module:
        """One NatureCNN with the current shared coefficients (lite, or frozen gates)."""
        return merge(self.zoo)

    def _chain(self) -> list[ZooLayer]:
        layers = zoo_layers(self.zoo)
        return [layers[name] for name in CHAIN]

    @torch.no_grad()
    def member_features(
        self, frames: np.ndarray | torch.Tensor, batch: int = 256, members: Sequence[int] | None = None
    ) -> list[torch.Tensor]:
        """Each member's own 512-d features (no mixing) on ``frames`` (uint8, or floats in [0, 1]),
        for every member or those indexed by ``members``."""
        chain = self._chain()
        members = range(chain[0].num_sources) if members is None else members
        out: list[list[torch.Tensor]] = [[] for _ in members]
        for start in range(0, len(frames), batch):
            x = _as_input(frames[start : start + batch], chain[0].weights.device)
            for parts, i in zip(out, members, strict=True):
                parts.append(self._activations(chain, x, lambda layer, h, i=i: _member_forward(layer, i, h))[-1])
        return [torch.cat(parts) for parts in out]

    @torch.no_grad()
    def linearity_errors(
        self, frames: np.ndarray | torch.Tensor, pairs: Sequence[tuple[int, int]], batch: int = 256
    ) -> dict[tuple[int, int], list[float]]:
        """For each pair of members, per layer: how far the activations (after the ReLU) of
        their 50/50 weight mixture lie from the 50/50 mixture of their activations, relative to
        the norm of the latter, over ``frames``: the cross-task-linearity error (Zhou et al.,
        "On the Emergence of Cross-Task Linearity in the Pretraining-Finetuning Paradigm",
        ICML 2024).  Near 0, mixing weights mixes features (networks fine-tuned from one
        checkpoint); near 1 or above, a mixture of the two is a third, unrelated network."""
        chain = self._chain()
        members = sorted({i for pair in pairs for i in pair})
        error = {pair: [0.0] * len(chain) for pair in pairs}
        norm = {pair: [0.0] * len(chain) for pair in pairs}
        for start in range(0, len(frames), batch):
            x = _as_input(frames[start : start + batch], chain[0].weights.device)
            own = {i: self._activations(chain, x, lambda layer, h, i=i: _member_forward(layer, i, h)) for i in members}
            for i, j in pairs:
                mixed = self._activations(chain, x, lambda layer, h, i=i, j=j: _mixture_forward(layer, i, j, h))
                for index, (hm, hi, hj) in enumerate(zip(mixed, own[i], own[j], strict=True)):
                    mean = (hi + hj) / 2
                    error[i, j][index] += float((hm - mean).pow(2).sum())
                    norm[i, j][index] += float(mean.pow(2).sum())
        return {pair: [math.sqrt(e / max(n, 1e-30)) for e, n in zip(error[pair], norm[pair], strict=True)]
                for pair in pairs}  # fmt: skip

    @staticmethod
    def _activations(chain: list[ZooLayer], x: torch.Tensor, forward) -> list[torch.Tensor]:
        """Every layer's activations (after its ReLU) of one network, ``forward(layer, h)`` per layer."""
        out, h = [], x
        for index, layer in enumerate(chain):
            h = torch.relu(forward(layer, h))
            h = h.flatten(1) if index + 2 == len(chain) else h
            out.append(h)
        return out

    def start_with(self, members: Sequence[int], coefficient: float) -> None:
        """Start every gate with ``coefficient`` shared equally by ``members`` and the rest shared
        equally by the others, by setting the shared source prior (softmax gates with
        ``shared_prior=True``)."""
        m, k = len(self.member_names), len(members)
        if not 0.0 < coefficient < 1.0 or m < 2 or not 0 < k < m:
            raise ConfigError(
                f"a start needs a coefficient in (0, 1) on 1 to {m - 1} of {m} members, got {coefficient} on {k}"
            )
        temperature = next(iter(zoo_layers(self.zoo).values())).gate.temperature
        logits = torch.zeros(m)
        logits[list(members)] = temperature * math.log(coefficient * (m - k) / (k * (1.0 - coefficient)))
        set_prior(self.zoo, logits)

    @torch.no_grad()
    def match_channels(self, frames: np.ndarray | torch.Tensor, reference: int = 0) -> list[float]:
        """Permute every member's hidden units to match member ``reference``'s on ``frames``
        (uint8 frames as the env gives them, or floats already scaled to [0, 1]).

        Layer by layer, each member's output channels are matched to the reference's by the
        correlation of their activations (an optimal assignment), and the permutation is
        applied to the member's weights: out-channels of this layer, in-channels of the next.
        Each member still computes exactly the same function; what changes is that unit k of
        every member now plays, as far as the frames show, the role of the reference's unit
        k, so a mixture of members mixes corresponding units rather than unrelated ones (the
        channel alignment of the paper, done from step 0, which identity-initialised
        alignment matrices cannot do).  Call it before training: it rewrites the weights.

        Members that already share their units in a layer (:func:`~.matching.aligned_groups`:
        fine-tunes of one ancestor) move together, by the one assignment that best matches the
        group as a whole, and the reference's group is not moved: a permutation of its own
        would undo the linear connection that lets their weights be mixed (the family zoo's
        linearity error at the features rose from 0.22-0.46 to 0.44-0.68 when each sibling was
        matched on its own, results/inspect/).

        Returns the mean correlation of matched units per layer, averaged over members.
        """
        chain = self._chain()
        if any(layer.align is not None and not _is_identity(layer.align) for layer in chain):
            raise ConfigError("match_channels needs untrained (identity) channel alignments")
        device = chain[0].weights.device
        m = chain[0].num_sources
        inputs = [_as_input(frames, device)] * m
        quality = []
        for index, layer in enumerate(chain):
            outputs = [_member_forward(layer, i, inputs[i]) for i in range(m)]
            ref = unit_samples(outputs[reference])
            scores = []
            for group in aligned_groups(layer):
                members = [i for i in group if i != reference]
                if not members:
                    continue
                corrs = {i: correlation(ref, unit_samples(outputs[i])) for i in members}
                if reference in group:
                    perm = np.arange(ref.shape[1])
                else:
                    _, perm = linear_sum_assignment(sum(corrs.values()).cpu().numpy(), maximize=True)
                perm_t = torch.as_tensor(perm, device=device)
                for i in members:
                    scores.append(float(corrs[i][np.arange(len(perm)), perm].mean()))
                    permute_member(layer, i, perm_t, outputs_of=True)
                    if index + 1 < len(chain):
                        permute_member(chain[index + 1], i, perm_t, outputs_of=False)
                    outputs[i] = outputs[i][:, perm_t]
            quality.append(float(np.mean(scores)) if scores else 1.0)
            inputs = [torch.relu(o).flatten(1) if index + 2 == len(chain) else torch.relu(o) for o in outputs]
        return quality


def detach_from_zoo(model: BaseAlgorithm) -> None:
    """From now on the model's own weights hold its members: SB3's ``model.save`` records that
    its zoo extractors are rebuilt without reading the zoo's files, so the saved file loads with
    plain ``PPO.load`` (or ``A2C``, ``DQN``, ...) anywhere, the zoo gone or not."""
    kwargs = model.policy_kwargs.get("features_extractor_kwargs")
    if kwargs is not None and zoo_extractors(model):
        kwargs["read_zoo"] = False


def zoo_extractors(model: BaseAlgorithm) -> list[ZooNatureCNN]:
    """Every zoo extractor of the policy (shared or not, online and target networks), in the
    order of ``zoo_rl.rl.methods.nature_cnns``, so that the two lists pair up."""
    return [m for m in model.policy.modules() if isinstance(m, ZooNatureCNN)]


def _as_input(frames: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(frames), device=device)
    return channels_last(x.float() / 255.0 if x.dtype == torch.uint8 else x.float())  # as SB3's preprocessing


def _is_identity(align: torch.Tensor) -> bool:
    return bool(torch.equal(align, torch.eye(align.shape[-1], device=align.device).expand_as(align)))


def _member_forward(layer: ZooLayer, i: int, x: torch.Tensor) -> torch.Tensor:
    """Member ``i``'s own layer on ``x`` (no mixing)."""
    return layer._apply_one(x, layer.weights[i], layer.biases[i] if layer.biases is not None else None)


def _mixture_forward(layer: ZooLayer, i: int, j: int, x: torch.Tensor) -> torch.Tensor:
    """The layer whose weights are the plain 50/50 mean of members ``i`` and ``j``'s, on ``x``."""
    bias = None if layer.biases is None else (layer.biases[i] + layer.biases[j]) / 2
    return layer._apply_one(x, (layer.weights[i] + layer.weights[j]) / 2, bias)


def fresh_nature_cnn_weights(
    observation_space: gym.spaces.Box, features_dim: int, normalized_image: bool
) -> dict[str, torch.Tensor]:
    """A NatureCNN initialised as SB3 initialises a policy's extractor (orthogonal, gain sqrt 2,
    zero bias), from torch's global generator (which SB3 seeds before building a policy)."""
    cnn = NatureCNN(observation_space, features_dim=features_dim, normalized_image=normalized_image)
    cnn.apply(lambda module: BasePolicy.init_weights(module, gain=np.sqrt(2)))
    return cnn.state_dict()
