"""The torch device a job asks for, checked before anything runs: a device that is not there is
a one-line error rather than SB3's silent fall-back to the CPU."""

from __future__ import annotations

import torch

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
