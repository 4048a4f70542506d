"""The torch device a job asks for, checked before anything runs (a device that is not there is
a one-line error rather than SB3's silent fall-back to the CPU), and what makes training fastest
on it: the memory layout of convolutions' inputs and fused optimizer kernels."""

from __future__ import annotations

import torch
from torch import nn

from zoo_rl.errors import ConfigError


def check_device(device: str) -> torch.device:
    """The device ``device`` names ("auto": the GPU where there is one, else the CPU); a
    :class:`ConfigError` if it is not a device name or this machine does not have it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {device!r}: not a torch device; expected auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: torch finds no CUDA GPU on this machine; use --device cpu (or auto)")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available on this machine; use --device cpu (or auto)")
    return chosen


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last layout if it is a 4-D batch of images on the CPU (see
    :func:`channels_last_on_cpu`), else ``x`` itself."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 and x.device.type == "cpu" else x


def _to_channels_last(module: nn.Module, args: tuple) -> tuple | None:
    if args and isinstance(args[0], torch.Tensor):
        return (channels_last(args[0]), *args[1:])
    return None


def channels_last_on_cpu(modules: list[nn.Module]) -> None:
    """Feed each of ``modules`` its 4-D input in channels-last (NHWC) layout when it lives on the
    CPU: oneDNN's convolutions then run without reordering, a NatureCNN's training step about 1.4x
    faster on this project's CPU, a ResNet's 1.1x (docs/performance.md). Only the layout changes (a forward
    pre-hook, not saved with the model), so weights, checkpoints and exported models stay as they
    are; results differ from the default layout by float rounding only. On a GPU the layout is
    left alone: cuDNN's float32 convolutions are tuned for NCHW."""
    for module in {id(m): m for m in modules}.values():
        if next(module.parameters()).device.type == "cpu":
            module.register_forward_pre_hook(_to_channels_last)


FUSED_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)


def fused(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The same optimizer with torch's fused kernel where it has one (Adam, AdamW; parameters on
    the CPU or a CUDA GPU), else ``optimizer`` itself; call it before the first step (a fresh
    optimizer's state is empty, so nothing is lost). One kernel updates every parameter instead
    of a pass over memory per operation: Adam's step over the 10M parameters of a six-member
    lite zoo took 29 ms on this project's CPU, 8 ms fused (docs/performance.md). The update is
    Adam's, to float rounding; the saved state has the same keys, so checkpoints load either way."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    devices = {p.device.type for p in params}
    if type(optimizer) not in FUSED_OPTIMIZERS or optimizer.state or not devices <= {"cpu", "cuda"}:
        return optimizer
    if optimizer.defaults.get("fused") or optimizer.defaults.get("foreach") or len(devices) != 1:
        return optimizer
    groups = [{**group, "fused": True, "foreach": None} for group in optimizer.param_groups]
    return type(optimizer)(groups, **{**optimizer.defaults, "fused": True, "foreach": None})
