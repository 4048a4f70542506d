"""Ensemble: m NatureCNNs initialised from the m sources, all trained, features averaged.

The mean of the m 512-d features (rather than concatenation + a linear layer) keeps one
policy/value head of the same shape as every other method, so the comparison changes
only the extractor.  Training and inference cost m NatureCNNs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from zoo_rl.rl.zoo.members import source_nature_cnns

from .base import Method


class EnsembleNatureCNN(BaseFeaturesExtractor):
    """The mean of the features of one NatureCNN per zoo member."""

    def __init__(self, observation_space: gym.spaces.Box, zoo: Sequence[str | Path], features_dim: int = 512):
        super().__init__(observation_space, features_dim)
        self.members = source_nature_cnns(observation_space, zoo, features_dim, trainable=True)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.stack([cnn(observations) for cnn in self.members]).mean(dim=0)


class Ensemble(Method):
    name = "ensemble"
    needs_zoo = True
    extractor_class = EnsembleNatureCNN
