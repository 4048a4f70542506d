"""ResNet backbone weights from the checkpoint files users have on disk.

Five layouts are recognised (the paper's zoo): a torchvision classification state dict
(``conv1.*`` ... ``fc.*``); a MoCo v1/v2 checkpoint (``state_dict`` holding
``module.encoder_q.*``); the backbone of a torchvision Mask R-CNN or Keypoint R-CNN
(``backbone.body.*``); and of a torchvision DeepLabV3 (``backbone.*`` beside
``classifier.*``). A checkpoint may wrap its state dict under ``state_dict`` or ``model``.
Files are read with ``torch.load(..., weights_only=True)``: never unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from zoo_rl.errors import ZooRlError

# (format name, key prefix of the ResNet trunk), tried in this order.
LAYOUTS: tuple[tuple[str, str], ...] = (
    ("moco", "module.encoder_q."),
    ("moco", "encoder_q."),
    ("detection", "backbone.body."),  # Mask R-CNN, Keypoint R-CNN, Faster R-CNN
    ("segmentation", "backbone."),  # DeepLabV3, FCN
    ("classification", ""),
)


class CheckpointFormatError(ZooRlError, ValueError):
    """A checkpoint that holds no ResNet trunk zoo-rl recognises; the message lists what it holds."""


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped from ``state_dict`` / ``model`` if needed."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointFormatError(f"{path}: no such file") from err
    except Exception as err:  # not a torch file, truncated, or a pickle payload refused by weights_only
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointFormatError(f"{path}: not a plain weights file ({reason[:160]})") from err
    for key in ("state_dict", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
    if not isinstance(data, Mapping):
        raise CheckpointFormatError(f"{path}: expected a state dict, got {type(data).__name__}")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def backbone_weights(path: str | Path, reference: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """``(format, weights)``: the trunk of ``path`` with the keys and shapes of ``reference``
    (a torchvision ResNet's state dict without ``fc``)."""
    state = load_state_dict(path)
    for name, prefix in LAYOUTS:
        trunk = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        weights = {k: trunk[k] for k in reference if k in trunk}
        required = [k for k in reference if not k.endswith("num_batches_tracked")]
        if all(k in weights for k in required):
            for key in reference:  # frozen BatchNorm (detection backbones) keeps no counter
                weights.setdefault(key, torch.zeros((), dtype=torch.long))
            wrong = [k for k in required if weights[k].shape != reference[k].shape]
            if wrong:
                k = wrong[0]
                raise CheckpointFormatError(
                    f"{path}: {name} checkpoint, but {prefix}{k} has shape {tuple(weights[k].shape)}, "
                    f"expected {tuple(reference[k].shape)} (another ResNet depth?)"
                )
            return name, weights
    prefixes = sorted({".".join(k.split(".")[:2]) for k in state})[:8]
    raise CheckpointFormatError(
        f"{path}: no ResNet trunk found (expected torchvision classification, MoCo encoder_q, "
        f"detection backbone.body or segmentation backbone keys); found key prefixes {prefixes}"
    )
