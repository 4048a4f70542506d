"""Knowledge Flow (Liu, Peng, Schwing, ICLR 2019) on NatureCNN.

After each of the student's four layers (three convolutions and the linear layer, each
followed by ReLU) its output is mixed with learned transforms of the frozen teachers'
outputs at the same layer: ``h = w_0 * student + sum_i w_i * Q_i(teacher_i)``, with
normalised non-negative weights ``w = relu(v) / sum(relu(v))`` per layer.  ``Q_i`` is a
1x1 convolution (or a linear map for the last layer), identity-initialised.  A dependency
loss ``lambda(t) * sum of teacher weights`` (``lambda`` ramps linearly from 0 to
``dependency_weight`` over ``ramp_updates`` training forward passes) drives the teacher
weights down; a weight that reaches zero stays there (the ReLU passes no gradient), and
once every teacher weight is zero the teachers are no longer run: the student acts
alone, and exporting yields a plain NatureCNN with no teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from torch import nn

from zoo_rl.core.distill import AddAuxiliaryLoss
from zoo_rl.rl.zoo_files import source_nature_cnns

from .base import Method


def _layers(cnn: NatureCNN) -> list[nn.Module]:
    """NatureCNN as four steps, each ending in its ReLU."""
    return [
        nn.Sequential(cnn.cnn[0], cnn.cnn[1]),
        nn.Sequential(cnn.cnn[2], cnn.cnn[3]),
        nn.Sequential(cnn.cnn[4], cnn.cnn[5]),
        nn.Sequential(cnn.cnn[6], cnn.linear),
    ]


def _identity_transform(width: int, conv: bool) -> nn.Module:
    layer = nn.Conv2d(width, width, 1) if conv else nn.Linear(width, width)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(width).view_as(layer.weight))
        layer.bias.zero_()
    return layer


class KnowledgeFlowNatureCNN(BaseFeaturesExtractor):
    def __init__(
        self,
        observation_space: gym.spaces.Box,
        zoo: Sequence[str | Path],
        features_dim: int = 512,
        dependency_weight: float = 1.0,
        ramp_updates: int = 1000,
    ):
        super().__init__(observation_space, features_dim)
        if dependency_weight < 0 or ramp_updates < 1:
            raise ValueError(
                f"kflow needs dependency_weight >= 0 and ramp_updates >= 1, got {dependency_weight}, {ramp_updates}"
            )
        self.student = NatureCNN(observation_space, features_dim=features_dim)
        self.teachers = source_nature_cnns(observation_space, zoo, features_dim, trainable=False)
        widths = [(32, True), (64, True), (64, True), (features_dim, False)]
        self.transforms = nn.ModuleList(nn.ModuleList(_identity_transform(w, conv) for _ in zoo) for w, conv in widths)
        self.dependency = nn.Parameter(torch.ones(len(widths), len(zoo) + 1))
        self.dependency_weight = dependency_weight
        self.ramp_updates = ramp_updates
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def mixing_weights(self) -> torch.Tensor:
        """(layers, 1 + teachers) normalised weights; column 0 is the student."""
        raw = torch.relu(self.dependency)
        raw = torch.cat([raw[:, :1] + 1e-6, raw[:, 1:]], dim=1)
        return raw / raw.sum(dim=1, keepdim=True)

    def teachers_in_use(self) -> bool:
        return bool((torch.relu(self.dependency[:, 1:]) > 0).any())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        student_steps = _layers(self.student)
        if not self.teachers_in_use():
            h = observations
            for step in student_steps:
                h = step(h)
            return h
        w = self.mixing_weights()
        teacher_h = [observations] * len(self.teachers)
        h = observations
        for layer, step in enumerate(student_steps):
            with torch.no_grad():
                teacher_h = [_layers(t)[layer](x) for t, x in zip(self.teachers, teacher_h, strict=True)]
            h = w[layer, 0] * step(h)
            for i, (q, t) in enumerate(zip(self.transforms[layer], teacher_h, strict=True)):
                h = h + w[layer, i + 1] * q(t)
        if self.training and torch.is_grad_enabled():
            self.updates += 1
            lam = self.dependency_weight * min(1.0, float(self.updates) / self.ramp_updates)
            h = AddAuxiliaryLoss.apply(h, lam * w[:, 1:].sum())
        return h

    def as_nature_cnn(self) -> nn.Module:
        if self.teachers_in_use():
            raise ValueError(
                "knowledge flow still depends on its teachers (some teacher weight > 0); "
                "train longer or raise dependency_weight before exporting"
            )
        return self.student


class KnowledgeFlow(Method):
    name = "kflow"
    needs_zoo = True
    exportable = True
    extractor_class = KnowledgeFlowNatureCNN
    options = ("dependency_weight", "ramp_updates")
