"""Image classifiers on torchvision ResNets, one per transfer method, on the zoo_rl core.

Every model is a torchvision ResNet trunk (``fc`` removed) followed by a new linear
head, so that lite, finetune, distill, scratch and (once free of its teachers) Knowledge Flow
models export to a plain
``torchvision.models.resnetXX(num_classes=K)`` state dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn

from zoo_rl.core import FeatureDistillation, KnowledgeFlow, merge, zoo_layers, zooify
from zoo_rl.errors import ConfigError

from .checkpoints import backbone_weights

ARCHS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101")
METHODS: tuple[str, ...] = ("zoo", "lite", "finetune", "scratch", "ensemble", "distill", "kflow")
# The options each method takes (``--method-option KEY=VALUE``), as the RL methods name them.
METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "distill": ("weight", "decay_updates"),
    "kflow": ("dependency_weight", "ramp_updates"),
}


def trunk(arch: str) -> nn.Module:
    """A randomly initialised torchvision ResNet without its classifier (``fc`` = identity)."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    model = getattr(torchvision.models, arch)(weights=None)
    model.fc = nn.Identity()
    return model


def loaded_trunk(arch: str, weights: dict[str, torch.Tensor]) -> nn.Module:
    """A trunk holding ``weights`` (a source's trunk state dict)."""
    model = trunk(arch)
    model.load_state_dict(weights)
    return model


def trunk_features(arch: str) -> int:
    return 512 if arch in ("resnet18", "resnet34") else 2048


def resnet_stages(net: nn.Module) -> list[nn.Module]:
    """A ResNet trunk as Knowledge Flow's four stages: stem + layer1, layer2, layer3, layer4 +
    pooling (its output, the trunk's features, is flat)."""
    return [
        nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1),
        net.layer2,
        net.layer3,
        nn.Sequential(net.layer4, net.avgpool, nn.Flatten(1)),
    ]


def resnet_stage_widths(arch: str) -> list[tuple[int, bool]]:
    last = trunk_features(arch)
    return [(last // 8, True), (last // 4, True), (last // 2, True), (last, False)]


class DistilledTrunk(nn.Module):
    """A randomly initialised trunk (the student) learning from frozen source trunks through
    :class:`FeatureDistillation` while training; in eval mode the student alone runs."""

    def __init__(self, student: nn.Module, distillation: FeatureDistillation):
        super().__init__()
        self.student = student
        self.distillation = distillation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.distillation(self.student(x), x)


class Classifier(nn.Module):
    """Backbone(s) -> mean of their features -> linear head (one backbone except for ensembles)."""

    def __init__(self, backbones: Sequence[nn.Module], features: int, num_classes: int):
        super().__init__()
        self.backbones = nn.ModuleList(backbones)
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.stack([b(x) for b in self.backbones]).mean(dim=0))


def build_classifier(
    arch: str, method: str, checkpoints: Sequence[str | Path], num_classes: int, **options
) -> Classifier:
    """The model of ``method`` from checkpoint files (see :func:`classifier_from_sources`)."""
    if method not in METHODS:
        raise ConfigError(f"unknown vision method {method!r}; expected one of {', '.join(METHODS)}")
    if method != "scratch" and not checkpoints:
        raise ConfigError(f"method {method!r} needs at least one checkpoint (--zoo)")
    reference = trunk(arch).state_dict()
    sources = [backbone_weights(path, reference)[1] for path in checkpoints] if method != "scratch" else []
    return classifier_from_sources(arch, method, sources, num_classes, **options)


def classifier_from_sources(
    arch: str, method: str, sources: Sequence[dict[str, torch.Tensor]], num_classes: int, **options
) -> Classifier:
    """``zoo``/``lite`` aggregate every convolution of the m trunk state dicts ``sources``
    (BatchNorm starts from their mean), ``finetune`` starts from one, ``ensemble`` trains one
    backbone per source, ``distill`` trains a random trunk with feature distillation from the
    frozen sources, ``kflow`` a random trunk in Knowledge Flow with them, ``scratch`` ignores
    them.  ``options``: :data:`METHOD_OPTIONS`; those of ``zoo``/``lite`` go to :func:`zooify`."""
    if method == "finetune" and len(sources) != 1:
        raise ConfigError(f"finetune starts from one checkpoint, got {len(sources)}")
    if method in ("zoo", "lite"):
        backbones = [zooify(trunk(arch), sources, lite=method == "lite", **options)]
    elif method in ("distill", "kflow"):
        teachers = [loaded_trunk(arch, weights) for weights in sources]
        features = trunk_features(arch)
        if method == "distill":
            backbones = [DistilledTrunk(trunk(arch), FeatureDistillation(teachers, features, features, **options))]
        else:
            backbones = [KnowledgeFlow(trunk(arch), teachers, resnet_stages, resnet_stage_widths(arch), **options)]
    elif method == "scratch":
        backbones = [trunk(arch)]
    else:
        backbones = [loaded_trunk(arch, weights) for weights in sources]
    return Classifier(backbones, trunk_features(arch), num_classes)


def to_torchvision(model: Classifier, arch: str) -> dict[str, torch.Tensor]:
    """A state dict that ``torchvision.models.<arch>(num_classes=K)`` loads with ``strict=True``
    and that computes the same outputs (lite zoo trunks are merged into one ResNet)."""
    if len(model.backbones) != 1:
        raise ConfigError("an ensemble of several backbones is not one torchvision ResNet")
    backbone = model.backbones[0]
    if isinstance(backbone, DistilledTrunk):
        backbone = backbone.student  # the teachers only trained it
    if isinstance(backbone, KnowledgeFlow):
        backbone = backbone.free_student()  # raises while a teacher weight is left
    if zoo_layers(backbone):
        backbone = merge(backbone)  # raises for full Zoo-Tuning, whose weights depend on each input
    state = {k: v for k, v in backbone.state_dict().items() if not k.startswith("fc.")}
    state.update({f"fc.{k}": v for k, v in model.fc.state_dict().items()})
    return state
