"""Distill: one NatureCNN student trained with the RL loss plus feature distillation from
every frozen source extractor, through a learned linear adapter per teacher.

The student starts from SB3's random initialisation, so every bit of transfer it shows
comes through the distillation loss.  The loss is added without touching SB3's training
loops: the student's features pass through :class:`AddAuxiliaryLoss`, an identity whose
backward also sends the gradient of the distillation loss, so each minibatch update of
any algorithm optimises ``RL loss + weight * distillation loss``.  Its weight decays
linearly from ``weight`` to 0 over ``decay_updates`` training forward passes (0: constant).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from torch import nn

from zoo_rl.rl.zoo_files import source_nature_cnns

from .base import Method


class AddAuxiliaryLoss(torch.autograd.Function):
    """Identity on ``x``; in backward, ``loss`` receives gradient 1 (it is minimised)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, torch.ones((), dtype=grad.dtype, device=grad.device)


class DistillNatureCNN(BaseFeaturesExtractor):
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
        if weight < 0 or decay_updates < 0:
            raise ValueError(f"distill weight and decay_updates must be >= 0, got {weight}, {decay_updates}")
        self.student = NatureCNN(observation_space, features_dim=features_dim)
        self.teachers = source_nature_cnns(observation_space, zoo, features_dim, trainable=False)
        self.adapters = nn.ModuleList(nn.Linear(features_dim, features_dim) for _ in zoo)
        self.weight = weight
        self.decay_updates = decay_updates
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.last_loss = 0.0

    def current_weight(self) -> float:
        if self.decay_updates == 0:
            return self.weight
        return self.weight * max(0.0, 1.0 - float(self.updates) / self.decay_updates)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        features = self.student(observations)
        if not (self.training and torch.is_grad_enabled()):
            return features
        weight = self.current_weight()
        self.updates += 1
        if weight == 0.0:
            return features
        with torch.no_grad():
            targets = [teacher.eval()(observations) for teacher in self.teachers]
        loss = torch.stack(
            [(adapter(features) - t).pow(2).mean() for adapter, t in zip(self.adapters, targets, strict=True)]
        ).mean()
        self.last_loss = float(loss.detach())
        return AddAuxiliaryLoss.apply(features, weight * loss)

    def as_nature_cnn(self) -> nn.Module:
        """The student alone: all that acting needs."""
        return self.student


class Distill(Method):
    name = "distill"
    needs_zoo = True
    exportable = True
    extractor_class = DistillNatureCNN
    options = ("weight", "decay_updates")
