"""Data-dependent gate: the per-sample mixing coefficients of a Zoo-Tuning layer."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

GateNorm = Literal["normalized", "official"]
GATE_NORMS: tuple[str, ...] = ("normalized", "official")


class Gate(nn.Module):
    """Maps a layer's input to one coefficient per source and per sample.

    The architecture follows the authors' released code: (global average pool for
    convolutions) -> FC(C -> C//4+1, no bias) -> ReLU -> FC(-> m, bias) -> sigmoid,
    Kaiming-normal fan-out weights and zero bias.

    A linear layer that reads a flattened feature map (NatureCNN's 3136 -> 512 reads
    64 x 7 x 7) can pool that map too (``unflatten=(C, H, W)``): the gate then sees C
    channel means, as a convolution's gate does, instead of a 3136-wide input whose
    hidden layer (785 wide) would cost more than the layer it gates.

    ``norm="official"`` returns the sigmoid as is (coefficients do not sum to one);
    the aggregated weight then starts near (m/2) times the mean source weight, which
    BatchNorm absorbs but a network without normalisation (NatureCNN) compounds layer
    by layer.  ``norm="normalized"`` divides by the sum, so the coefficients are a convex
    combination and m identical sources reproduce the single source exactly.
    """

    def __init__(
        self,
        in_channels: int,
        num_sources: int,
        pool: bool,
        norm: GateNorm = "normalized",
        unflatten: tuple[int, int, int] | None = None,
    ):
        super().__init__()
        if norm not in GATE_NORMS:
            raise ValueError(f"gate norm must be one of {GATE_NORMS}, got {norm!r}")
        if unflatten is not None:
            if in_channels != unflatten[0] * unflatten[1] * unflatten[2]:
                raise ValueError(f"gate input of {in_channels} features cannot be viewed as {tuple(unflatten)}")
            in_channels = unflatten[0]
        hidden = in_channels // 4 + 1
        self.pool = pool
        self.unflatten = tuple(unflatten) if unflatten is not None else None
        self.norm = norm
        self.fc1 = nn.Linear(in_channels, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, num_sources)
        for fc in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(fc.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return coefficients of shape (batch, num_sources)."""
        if self.unflatten is not None:
            x = x.view(x.shape[0], self.unflatten[0], -1).mean(dim=2)
        elif self.pool:
            x = x.mean(dim=(2, 3))
        a = torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))
        if self.norm == "normalized":
            a = a / a.sum(dim=1, keepdim=True)
        return a

    def neutral(self, num_sources: int) -> torch.Tensor:
        """Coefficients an untrained gate gives on average: the EMA's starting point."""
        value = 1.0 / num_sources if self.norm == "normalized" else 0.5
        return torch.full((num_sources,), value)
