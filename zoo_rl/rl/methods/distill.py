"""Distill: one NatureCNN student trained with the RL loss plus feature distillation from
every frozen source extractor, through a learned linear adapter per teacher
(:class:`zoo_rl.core.FeatureDistillation`, shared with the vision path).

The student starts from SB3's random initialisation, so every bit of transfer it shows
comes through the distillation loss, added to every minibatch update of any algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn

from zoo_rl.core.distill import FeatureDistillation
from zoo_rl.rl.zoo.extractor import TransferExtractor
from zoo_rl.rl.zoo.members import member_name, source_nature_cnns

from .base import Method


class DistillNatureCNN(TransferExtractor):
    """A NatureCNN student with frozen NatureCNN teachers used only while training."""

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        zoo: Sequence[str | Path],
        features_dim: int = 512,
        weight: float = 1.0,
        decay_updates: int = 0,
    ):
        super().__init__(observation_space, features_dim)
        self.member_names = [member_name(p) for p in zoo]
        self.student = NatureCNN(observation_space, features_dim=features_dim)
        teachers = source_nature_cnns(observation_space, zoo, features_dim, trainable=False)
        self.distillation = FeatureDistillation(teachers, features_dim, features_dim, weight, decay_updates)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.distillation(self.student(observations), observations)

    def as_nature_cnn(self) -> nn.Module:
        """The student alone: all that acting needs."""
        return self.student


class Distill(Method):
    name = "distill"
    needs_zoo = True
    exportable = True
    extractor_class = DistillNatureCNN
    options = ("weight", "decay_updates")
