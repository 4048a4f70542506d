"""Knowledge Flow (Liu, Peng, Schwing, ICLR 2019) for any student network cut into stages, the
Knowledge Flow baseline of the paper's tables, shared by the RL extractors and the vision trunks.

After each stage of the student its output is mixed with learned transforms of the frozen
teachers' outputs at the same stage: ``h = w_0 * student + sum_i w_i * Q_i(teacher_i)``, with
normalised non-negative weights ``w = relu(v) / sum(relu(v))`` per stage.  ``Q_i`` is a 1x1
convolution (a linear map for flat stages), identity-initialised.  A dependency loss
``lambda(t) * sum of teacher weights`` (``lambda`` ramps linearly from 0 to ``dependency_weight``
over ``ramp_updates`` training forward passes) drives the teacher weights down; a weight that
reaches zero stays there (the ReLU passes no gradient), and once every teacher weight is zero
the teachers are no longer run: the student acts alone and can be exported without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .distill import AddAuxiliaryLoss

Stages = Callable[[nn.Module], list[nn.Module]]


def _identity_transform(width: int, conv: bool) -> nn.Module:
    layer = nn.Conv2d(width, width, 1) if conv else nn.Linear(width, width)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(width).view_as(layer.weight))
        layer.bias.zero_()
    return layer


class KnowledgeFlow(nn.Module):
    """``student`` and frozen ``teachers`` of one architecture, cut by ``stages`` (a function
    from a network to its list of stage modules, applied in order) into stages whose outputs
    have ``widths[k] = (channels, is_feature_map)``."""

    def __init__(
        self,
        student: nn.Module,
        teachers: Sequence[nn.Module],
        stages: Stages,
        widths: Sequence[tuple[int, bool]],
        dependency_weight: float = 1.0,
        ramp_updates: int = 1000,
    ):
        super().__init__()
        if dependency_weight < 0 or ramp_updates < 1:
            raise ValueError(
                f"kflow needs dependency_weight >= 0 and ramp_updates >= 1, got {dependency_weight}, {ramp_updates}"
            )
        if len(stages(student)) != len(widths):
            raise ValueError(f"{len(widths)} stage widths for {len(stages(student))} stages")
        self.student = student
        self.teachers = nn.ModuleList(teachers).requires_grad_(False)
        self.stages = stages
        self.transforms = nn.ModuleList(
            nn.ModuleList(_identity_transform(w, conv) for _ in teachers) for w, conv in widths
        )
        self.dependency = nn.Parameter(torch.ones(len(widths), len(teachers) + 1))
        self.dependency_weight = dependency_weight
        self.ramp_updates = ramp_updates
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def mixing_weights(self) -> torch.Tensor:
        """(stages, 1 + teachers) normalised weights; column 0 is the student."""
        raw = torch.relu(self.dependency)
        raw = torch.cat([raw[:, :1] + 1e-6, raw[:, 1:]], dim=1)
        return raw / raw.sum(dim=1, keepdim=True)

    @torch.no_grad()
    def readout(self, sources: Sequence[str]) -> dict[str, float]:
        """Every stage's weight on the student and on each teacher (``zoo_rl.core.readouts``)."""
        return {f"kflow/layer{stage}/{name}": value for stage, row in enumerate(self.mixing_weights().tolist())
                for name, value in zip(["student", *sources], row, strict=True)}  # fmt: skip

    def teachers_in_use(self) -> bool:
        return bool((torch.relu(self.dependency[:, 1:]) > 0).any())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        student_stages = self.stages(self.student)
        if not self.teachers_in_use():
            for stage in student_stages:
                x = stage(x)
            return x
        w = self.mixing_weights()
        teacher_stages = [self.stages(t.eval()) for t in self.teachers]  # eval: BatchNorm statistics stay theirs
        teacher_h = [x] * len(self.teachers)
        h = x
        for k, stage in enumerate(student_stages):
            with torch.no_grad():
                teacher_h = [stages[k](t) for stages, t in zip(teacher_stages, teacher_h, strict=True)]
            h = w[k, 0] * stage(h)
            for i, (q, t) in enumerate(zip(self.transforms[k], teacher_h, strict=True)):
                h = h + w[k, i + 1] * q(t)
        if self.training and torch.is_grad_enabled():
            self.updates += 1
            lam = self.dependency_weight * min(1.0, float(self.updates) / self.ramp_updates)
            h = AddAuxiliaryLoss.apply(h, lam * w[:, 1:].sum())
        return h

    def free_student(self) -> nn.Module:
        """The student alone, once no teacher weight is left; all that acting needs then."""
        if self.teachers_in_use():
            raise ValueError(
                "knowledge flow still depends on its teachers (some teacher weight > 0); "
                "train longer or raise dependency_weight before exporting"
            )
        return self.student
