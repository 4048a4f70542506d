"""The cost columns of the paper's Table 1 for vision models (classifiers and landmark models):
training and inference MACs per image and parameters, counted on the code that runs (:mod:`zoo_rl.macs`).

Training cost is per image of a batch of ``TRAIN_BATCH`` in training mode (a full zoo layer
builds one mixed weight per image; work done once per batch is shared by it); inference cost is
for one image in eval mode, after merging lite zoo trunks into one ResNet.  Parameters: *train*
= those that require gradients; *inference* = those of the modules that run.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from zoo_rl.core import KnowledgeFlow, merge, mergeable
from zoo_rl.macs import forward_cost

from .defaults import VISION_DEFAULTS
from .models import METHODS, DistilledTrunk, TransferNet, model_from_sources, trunk

TRAIN_BATCH = VISION_DEFAULTS["batch_size"]  # that of `zoo-rl vision train`: per-batch work is shared by it
# The paper's Table 1 (ResNet-50, 224x224): GFLOPs (multiply-accumulates) and parameters.
PAPER = {"single ResNet-50": (4.12, 23.71e6), "Zoo-Tuning, training": (4.53, 130.43e6)}


def for_inference(model: TransferNet) -> TransferNet:
    """A copy of ``model`` whose lite (or frozen-gate) zoo trunks are merged into plain ResNets
    and whose distilled trunks are their students."""
    model = copy.deepcopy(model)
    for i, backbone in enumerate(model.backbones):
        if isinstance(backbone, DistilledTrunk):
            model.backbones[i] = backbone.student
            continue
        if isinstance(backbone, KnowledgeFlow):
            continue  # its teachers run until the dependency loss has freed the student
        if mergeable(backbone):
            model.backbones[i] = merge(backbone)
    return model


def model_cost(model: nn.Module, crop: int = 224, train_batch: int = TRAIN_BATCH) -> dict[str, float]:
    """Cost columns of ``model`` (a :class:`TransferNet`), measured on copies (a training
    forward moves the lite gates' EMA and BatchNorm statistics)."""
    device = next(model.parameters()).device
    x = torch.zeros(train_batch, 3, crop, crop, device=device)
    training = copy.deepcopy(model).train()
    # Training mode, without autograd: a vision model's training forward does the same work
    # either way, and a ResNet-50 zoo at batch 48 would otherwise keep gigabytes for backward.
    train_macs, _ = forward_cost(training, lambda: training(x), train_batch, training=True)
    inference = for_inference(model).eval()
    inference_macs, inference_params = forward_cost(inference, lambda: inference(x[:1]), 1, training=False)
    return {
        "train_gmacs": train_macs / 1e9,
        "train_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "inference_gmacs": inference_macs / 1e9,
        "inference_params": inference_params,
    }


def method_costs(
    arch: str = "resnet50",
    sources: int = 5,
    outputs: int = 100,
    crop: int = 224,
    train_batch: int = TRAIN_BATCH,
    landmarks: bool = False,
) -> list[dict]:
    """One row per vision method (classifiers of ``outputs`` classes, or with ``landmarks``
    heatmap models of ``outputs`` landmarks), on ``sources`` randomly initialised trunks (costs
    do not depend on the weights' values, so no checkpoint is needed)."""
    torch.manual_seed(0)
    zoo = [trunk(arch).state_dict() for _ in range(sources)]
    rows = []
    for method in METHODS:
        members = zoo[:1] if method == "finetune" else zoo
        model = model_from_sources(arch, method, members, outputs, landmarks)
        rows.append({"method": method, **model_cost(model, crop, train_batch)})
        del model
    return rows
