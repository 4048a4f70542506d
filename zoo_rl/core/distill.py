"""Feature distillation from frozen teachers, for any student network: the Distill baseline of
the paper's tables, shared by the RL extractors and the vision classifiers.

The loss is added without touching the caller's training loop: the student's features pass
through :class:`AddAuxiliaryLoss`, an identity whose backward also sends the gradient of the
distillation loss, so every update optimises ``task loss + weight * distillation loss``,
whatever computes the task loss (SB3's algorithms, a cross-entropy).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class AddAuxiliaryLoss(torch.autograd.Function):
    """Identity on ``x``; in backward, ``loss`` receives gradient 1 (it is minimised)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, torch.ones((), dtype=grad.dtype, device=grad.device)


class FeatureDistillation(nn.Module):
    """Frozen ``teachers`` (input -> ``teacher_dim`` features), one learned linear adapter per
    teacher from the student's ``student_dim`` features, and the loss weight's schedule: linear
    decay from ``weight`` to 0 over ``decay_updates`` training forward passes (0: constant).
    With ``feature_maps`` the features are (B, C, H, W) maps and the adapters 1x1 convolutions
    (a dense head, as a landmark model's, reads the map, not a pooled vector).

    ``distillation(features, inputs)`` returns ``features``, carrying the mean squared error of
    every adapted student feature to its teacher's when training with gradients; otherwise the
    teachers do not run.
    """

    def __init__(
        self,
        teachers: Sequence[nn.Module],
        student_dim: int,
        teacher_dim: int,
        weight: float = 1.0,
        decay_updates: int = 0,
        feature_maps: bool = False,
    ):
        super().__init__()
        if weight < 0 or decay_updates < 0:
            raise ValueError(f"distill weight and decay_updates must be >= 0, got {weight}, {decay_updates}")
        self.teachers = nn.ModuleList(teachers).requires_grad_(False)
        self.adapters = nn.ModuleList(
            nn.Conv2d(student_dim, teacher_dim, 1) if feature_maps else nn.Linear(student_dim, teacher_dim)
            for _ in teachers
        )
        self.weight = weight
        self.decay_updates = decay_updates
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.last_loss = 0.0

    def current_weight(self) -> float:
        if self.decay_updates == 0:
            return self.weight
        return self.weight * max(0.0, 1.0 - float(self.updates) / self.decay_updates)

    def readout(self, sources: Sequence[str]) -> dict[str, float]:
        """The last distillation loss and the loss weight now (``zoo_rl.core.readouts``)."""
        return {"distill/loss": self.last_loss, "distill/weight": self.current_weight()}

    def forward(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled()):
            return features
        weight = self.current_weight()
        self.updates += 1
        if weight == 0.0:
            return features
        with torch.no_grad():  # teachers in eval mode: their BatchNorm statistics stay theirs
            targets = [teacher.eval()(inputs) for teacher in self.teachers]
        loss = torch.stack(
            [(adapter(features) - t).pow(2).mean() for adapter, t in zip(self.adapters, targets, strict=True)]
        ).mean()
        self.last_loss = float(loss.detach())
        return AddAuxiliaryLoss.apply(features, weight * loss)
