"""Knowledge Flow (Liu, Peng, Schwing, ICLR 2019) on NatureCNN: the four stages of a NatureCNN
student (three convolutions and the linear layer, each with its ReLU) mixed with learned
transforms of the frozen zoo agents' stages (:class:`zoo_rl.core.KnowledgeFlow`, shared with
the vision path).  Once the dependency loss has driven every teacher weight to zero, the
student acts alone and exports as a plain NatureCNN.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn

from zoo_rl.core import kflow
from zoo_rl.rl.zoo.extractor import TransferExtractor
from zoo_rl.rl.zoo.members import member_name, source_nature_cnns

from .base import Method


def nature_cnn_stages(cnn: NatureCNN) -> list[nn.Module]:
    """NatureCNN as four stages, each ending in its ReLU."""
    return [
        nn.Sequential(cnn.cnn[0], cnn.cnn[1]),
        nn.Sequential(cnn.cnn[2], cnn.cnn[3]),
        nn.Sequential(cnn.cnn[4], cnn.cnn[5]),
        nn.Sequential(cnn.cnn[6], cnn.linear),
    ]


class KnowledgeFlowNatureCNN(TransferExtractor):
    """A NatureCNN student in :class:`zoo_rl.core.KnowledgeFlow` with the zoo's frozen NatureCNNs."""

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        zoo: Sequence[str | Path],
        features_dim: int = 512,
        dependency_weight: float = 1.0,
        ramp_updates: int = 1000,
    ):
        super().__init__(observation_space, features_dim)
        self.member_names = [member_name(p) for p in zoo]
        student = NatureCNN(observation_space, features_dim=features_dim)
        teachers = source_nature_cnns(observation_space, zoo, features_dim, trainable=False)
        widths = [(32, True), (64, True), (64, True), (features_dim, False)]
        self.flow = kflow.KnowledgeFlow(student, teachers, nature_cnn_stages, widths, dependency_weight, ramp_updates)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.flow(observations)

    def as_nature_cnn(self) -> nn.Module:
        return self.flow.free_student()


class KnowledgeFlow(Method):
    name = "kflow"
    needs_zoo = True
    exportable = True
    extractor_class = KnowledgeFlowNatureCNN
    options = ("dependency_weight", "ramp_updates")
