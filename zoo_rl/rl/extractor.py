"""``ZooNatureCNN``: a Stable-Baselines3 features extractor made of Zoo-Tuning layers.

Plug it into any SB3 algorithm that takes ``"CnnPolicy"``::

    policy_kwargs = dict(
        features_extractor_class=ZooNatureCNN,
        features_extractor_kwargs=dict(zoo=["agents/pong_ppo.zip", "agents/breakout_dqn.zip"], lite=True),
    )
    model = PPO("CnnPolicy", env, policy_kwargs=policy_kwargs)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from torch import nn

from zoo_rl.core import DEFAULT_CONV_STRATEGY, GateNorm, freeze_gates, merge, zooify

from .zoo_files import nature_cnn_weights


class ZooNatureCNN(BaseFeaturesExtractor):
    """SB3's NatureCNN whose convolutions (and, by default, its linear layer) are
    Zoo-Tuning layers initialised from the NatureCNN of every zoo member.

    :param zoo: SB3 model zips (PPO, A2C, DQN, QR-DQN, mixed freely) with NatureCNN policies.
    :param lite: lite Zoo-Tuning (batch-level gate with an EMA, mergeable into one NatureCNN).
    :param gate_norm: ``"normalized"`` (default; coefficients sum to one, needed without
        normalisation layers) or ``"official"`` (the paper's plain sigmoid).
    :param align: channel alignment on the convolutions.
    :param zoo_linear: also aggregate the 3136->512 linear layer (otherwise it starts as
        the mean of the sources and is trained as one ordinary layer).
    :param fixed_gates: fix the coefficients of every layer (e.g. uniform averaging) and
        run no gate network.
    :param linear_gate: ``"pooled"`` (default): the linear layer's gate reads the channel
        means of the 64 x 7 x 7 map it flattens, like the convolutions' gates;
        ``"flat"``: the paper's gate recipe on the flat 3136-d input (hidden width 785,
        a gate that costs 1.5x the layer it gates; see docs/performance.md).
    :param conv_strategy: how per-sample convolutions run (``zoo_rl.core.CONV_STRATEGIES``);
        the default is the fastest measured on a CPU.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        zoo: Sequence[str | Path],
        features_dim: int = 512,
        lite: bool = False,
        gate_norm: GateNorm = "normalized",
        align: bool = True,
        zoo_linear: bool = True,
        fixed_gates: Sequence[float] | None = None,
        ema_momentum: float = 0.9,
        normalized_image: bool = False,
        linear_gate: str = "pooled",
        conv_strategy: str = DEFAULT_CONV_STRATEGY,
    ):
        if linear_gate not in ("pooled", "flat"):
            raise ValueError(f"linear_gate must be 'pooled' or 'flat', got {linear_gate!r}")
        template = NatureCNN(observation_space, features_dim=features_dim, normalized_image=normalized_image)
        super().__init__(observation_space, features_dim)
        with torch.no_grad():  # the map that the Flatten before the linear layer flattens
            feature_map = tuple(template.cnn[:-1](torch.zeros(1, *observation_space.shape)).shape[1:])
        channels = observation_space.shape[0]
        sources = [nature_cnn_weights(p, in_channels=channels) for p in zoo]
        self.zoo = zooify(
            template,
            sources,
            exclude=None if zoo_linear else ["linear.*"],
            lite=lite,
            gate_norm=gate_norm,
            align_conv=align,
            ema_momentum=ema_momentum,
            gate_unflatten={"linear.0": feature_map} if linear_gate == "pooled" else None,
            conv_strategy=conv_strategy,
        )
        if fixed_gates is not None:
            freeze_gates(self.zoo, fixed_gates)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.zoo(observations)

    def as_nature_cnn(self) -> nn.Module:
        """One NatureCNN with the current shared coefficients (lite, or frozen gates)."""
        return merge(self.zoo)
