"""Vision models on torchvision ResNets, one per transfer method, on the zoo_rl core.

Every model is a :class:`TransferNet`: ResNet trunk(s) and a new head.  An image classifier's
trunk ends in the pooled feature vector and its head is linear, so that lite, finetune, distill,
scratch and (once free of its teachers) Knowledge Flow classifiers export to a plain
``torchvision.models.resnetXX(num_classes=K)`` state dict.  A landmark model's trunk ends in
layer4's feature map (:class:`FeatureMaps`, the same weights under the same keys) and its head
turns that map into one heatmap per landmark (:class:`HeatmapHead`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from zoo_rl.core import FeatureDistillation, KnowledgeFlow, ZooOptions, merge, zoo_layers, zooify
from zoo_rl.errors import ConfigError

from .checkpoints import backbone_weights

ARCHS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101")


class FeatureMaps(nn.Module):
    """A torchvision ResNet up to layer4: its (B, C, H/32, W/32) feature map, not the pooled
    vector.  The modules keep their names, so its state dict is the ResNet's without ``fc``
    and every source checkpoint, zoo layer and export works on it unchanged."""

    def __init__(self, resnet: nn.Module):
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(resnet, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def trunk(arch: str, feature_maps: bool = False) -> nn.Module:
    """A randomly initialised torchvision ResNet without its classifier (``fc`` = identity),
    or with ``feature_maps`` its :class:`FeatureMaps`."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    model = getattr(torchvision.models, arch)(weights=None)
    model.fc = nn.Identity()
    return FeatureMaps(model) if feature_maps else model


def loaded_trunk(arch: str, weights: dict[str, torch.Tensor], feature_maps: bool = False) -> nn.Module:
    """A trunk holding ``weights`` (a source's trunk state dict)."""
    model = trunk(arch, feature_maps)
    model.load_state_dict(weights)
    return model


def trunk_features(arch: str) -> int:
    return 512 if arch in ("resnet18", "resnet34") else 2048


def resnet_stages(net: nn.Module) -> list[nn.Module]:
    """A ResNet trunk as Knowledge Flow's four stages: stem + layer1, layer2, layer3, layer4
    (+ pooling, unless the trunk ends in :class:`FeatureMaps`)."""
    last = net.layer4 if isinstance(net, FeatureMaps) else nn.Sequential(net.layer4, net.avgpool, nn.Flatten(1))
    return [nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1), net.layer2, net.layer3, last]


def resnet_stage_widths(arch: str, feature_maps: bool = False) -> list[tuple[int, bool]]:
    last = trunk_features(arch)
    return [(last // 8, True), (last // 4, True), (last // 2, True), (last, feature_maps)]


class DistilledTrunk(nn.Module):
    """A randomly initialised trunk (the student) learning from frozen source trunks through
    :class:`FeatureDistillation` while training; in eval mode the student alone runs."""

    def __init__(self, student: nn.Module, distillation: FeatureDistillation):
        super().__init__()
        self.student = student
        self.distillation = distillation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.distillation(self.student(x), x)


class HeatmapHead(nn.Module):
    """A trunk's feature map -> one heatmap per landmark at a quarter of the input's resolution:
    three 4x4 stride-2 transposed convolutions (``width`` channels, BatchNorm, ReLU) and a 1x1
    convolution, the head of Xiao et al.'s Simple Baselines (ECCV 2018)."""

    def __init__(self, in_channels: int, points: int, width: int = 256):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.ConvTranspose2d(in_channels if i == 0 else width, width, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]  # fmt: skip
        self.deconvs = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, points, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.deconvs(x))


class TransferNet(nn.Module):
    """Backbone(s) -> mean of their outputs -> head (one backbone except for ensembles)."""

    def __init__(self, backbones: Sequence[nn.Module], head: nn.Module):
        super().__init__()
        self.backbones = nn.ModuleList(backbones)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.stack([b(x) for b in self.backbones]).mean(dim=0))


# A method's backbones from (architecture, the sources' trunk state dicts, landmark model?, options).
Backbones = Callable[..., list[nn.Module]]


@dataclass(frozen=True)
class VisionMethod:
    """A row of the paper's vision tables, with the contract of the RL path's methods
    (``zoo_rl.rl.methods.Method``): its name, whether it needs the zoo, whether a trained model
    exports to one plain ResNet (:func:`plain_state_dict`), the options a user may set
    (``--method-option KEY=VALUE``), and how its backbones are built; what it learns is read out
    by ``zoo_rl.core.readouts``."""

    name: str
    backbones: Backbones
    needs_zoo: bool = True
    exportable: bool = True
    options: tuple[str, ...] = ()


def _zoo_tuning(lite: bool) -> Backbones:
    def build(arch: str, sources: Sequence[dict[str, torch.Tensor]], landmarks: bool) -> list[nn.Module]:
        return [zooify(trunk(arch, landmarks), sources, ZooOptions(lite=lite))]

    return build


def _finetune(arch: str, sources: Sequence[dict[str, torch.Tensor]], landmarks: bool) -> list[nn.Module]:
    if len(sources) != 1:
        raise ConfigError(f"finetune starts from one checkpoint, got {len(sources)}")
    return [loaded_trunk(arch, sources[0], landmarks)]


def _ensemble(arch: str, sources: Sequence[dict[str, torch.Tensor]], landmarks: bool) -> list[nn.Module]:
    return [loaded_trunk(arch, weights, landmarks) for weights in sources]


def _scratch(arch: str, sources: Sequence[dict[str, torch.Tensor]], landmarks: bool) -> list[nn.Module]:
    return [trunk(arch, landmarks)]


def _distill(arch: str, sources: Sequence[dict[str, torch.Tensor]], landmarks: bool, **options) -> list[nn.Module]:
    teachers = [loaded_trunk(arch, weights, landmarks) for weights in sources]
    features = trunk_features(arch)
    distillation = FeatureDistillation(teachers, features, features, feature_maps=landmarks, **options)
    return [DistilledTrunk(trunk(arch, landmarks), distillation)]


def _kflow(arch: str, sources: Sequence[dict[str, torch.Tensor]], landmarks: bool, **options) -> list[nn.Module]:
    teachers = [loaded_trunk(arch, weights, landmarks) for weights in sources]
    widths = resnet_stage_widths(arch, landmarks)
    return [KnowledgeFlow(trunk(arch, landmarks), teachers, resnet_stages, widths, **options)]


METHODS: dict[str, VisionMethod] = {
    m.name: m
    for m in (
        VisionMethod("zoo", _zoo_tuning(lite=False), exportable=False),
        VisionMethod("lite", _zoo_tuning(lite=True)),
        VisionMethod("finetune", _finetune),
        VisionMethod("scratch", _scratch, needs_zoo=False),
        VisionMethod("ensemble", _ensemble, exportable=False),
        VisionMethod("distill", _distill, options=("weight", "decay_updates")),
        VisionMethod("kflow", _kflow, options=("dependency_weight", "ramp_updates")),
    )
}


def vision_method(name: str) -> VisionMethod:
    if name not in METHODS:
        raise ConfigError(f"unknown vision method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]


def build_model(
    arch: str, method: str, checkpoints: Sequence[str | Path], outputs: int, landmarks: bool = False, **options
) -> TransferNet:
    """The model of ``method`` from checkpoint files (see :func:`model_from_sources`)."""
    needs_zoo = vision_method(method).needs_zoo
    if needs_zoo and not checkpoints:
        raise ConfigError(f"method {method!r} needs at least one checkpoint (--zoo)")
    reference = trunk(arch).state_dict()
    sources = [backbone_weights(path, reference)[1] for path in checkpoints] if needs_zoo else []
    return model_from_sources(arch, method, sources, outputs, landmarks, **options)


def model_from_sources(
    arch: str,
    method: str,
    sources: Sequence[dict[str, torch.Tensor]],
    outputs: int,
    landmarks: bool = False,
    **options,
) -> TransferNet:
    """A classifier of ``outputs`` classes, or with ``landmarks`` a heatmap model of ``outputs``
    landmarks.  ``zoo``/``lite`` aggregate every convolution of the m trunk state dicts ``sources``
    (BatchNorm starts from their mean), ``finetune`` starts from one, ``ensemble`` trains one
    backbone per source, ``distill`` trains a random trunk with feature distillation from the
    frozen sources, ``kflow`` a random trunk in Knowledge Flow with them, ``scratch`` ignores
    them.  ``options``: the method's (:data:`METHODS`)."""
    backbones = vision_method(method).backbones(arch, sources, landmarks, **options)
    features = trunk_features(arch)
    head = HeatmapHead(features, outputs) if landmarks else nn.Linear(features, outputs)
    return TransferNet(backbones, head)


def plain_state_dict(model: TransferNet) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` as one plain trunk and its head: what the same model built
    with method ``scratch`` loads with ``strict=True`` and computes the same outputs with (lite
    zoo trunks merged into one ResNet, a distilled or freed Knowledge Flow trunk's student)."""
    if len(model.backbones) != 1:
        raise ConfigError("an ensemble of several backbones is not one ResNet")
    backbone = model.backbones[0]
    if isinstance(backbone, DistilledTrunk):
        backbone = backbone.student  # the teachers only trained it
    try:
        if isinstance(backbone, KnowledgeFlow):
            backbone = backbone.free_student()  # raises while a teacher weight is left
        if zoo_layers(backbone):
            backbone = merge(backbone)  # raises for full Zoo-Tuning, whose weights depend on each input
    except ValueError as err:  # the core's word, as a user error
        raise ConfigError(str(err)) from err
    state = {f"backbones.0.{k}": v for k, v in backbone.state_dict().items()}
    state.update({f"head.{k}": v for k, v in model.head.state_dict().items()})
    return state


def to_torchvision(model: TransferNet) -> dict[str, torch.Tensor]:
    """A classifier's state dict that ``torchvision.models.<arch>(num_classes=K)`` loads with
    ``strict=True`` and that computes the same outputs."""
    if isinstance(model.head, HeatmapHead):
        raise ConfigError("a landmark model is not a torchvision classifier; export its plain state dict instead")
    head = {f"fc.{k}": v for k, v in model.head.state_dict().items()}
    trunk_state = {k.removeprefix("backbones.0."): v for k, v in plain_state_dict(model).items()
                   if k.startswith("backbones.0.")}  # fmt: skip
    return {**trunk_state, **head}
