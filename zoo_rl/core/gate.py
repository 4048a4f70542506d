"""Data-dependent gate: the per-sample mixing coefficients of a Zoo-Tuning layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .options import GATE_NORMS, GateNorm


class GateLinear(nn.Module):
    """A linear map kept as bare parameters (state-dict keys ``weight`` and ``bias`` as
    ``nn.Linear``'s).  Not an ``nn.Linear`` on purpose: Stable-Baselines3 re-initialises
    every ``nn.Linear`` of a features extractor orthogonally, which silently replaced the
    gates' own initialisation and their zero output bias."""

    def __init__(self, in_features: int, out_features: int, bias: bool):
        super().__init__()
        self.in_features = in_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class SourcePrior(nn.Module):
    """Logits over the m sources added to the gate of every zoo layer of a model.

    One shared vector: a source that helps is chosen by every layer together, and its
    gradient is the sum over layers, where a per-layer choice would mix one source's first
    layer with another's second.  Starts at zero (no preference) unless set.
    """

    def __init__(self, num_sources: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_sources))


class Gate(nn.Module):
    """Maps a layer's input to one coefficient per source and per sample.

    ``norm="normalized"`` is the authors' released gate: (global average pool for
    convolutions) -> FC(C -> C//4+1, no bias) -> ReLU -> FC(-> m, bias) -> sigmoid,
    Kaiming-normal fan-out weights, zero bias, divided by its sum.  The released code keeps the
    plain sigmoid, whose coefficients start near 1/2 each: the aggregated weight is then about
    m/2 times the mean source weight, which BatchNorm absorbs but a network without
    normalisation compounds layer by layer, so the coefficients here sum to one.

    ``norm="softmax"`` is the gate that can choose within a reinforcement-learning budget:
    coefficients ``softmax((prior + FC(GELU(FC(x)))) / temperature)``.  GELU and a hidden
    width of at least 16 keep every hidden unit alive (a ReLU gate over four all-positive
    frame means has 2 hidden units that can both start dead); the output weights start at
    zero, so the gate starts at the prior (uniform unless set) and learns its input
    dependence; a temperature below one makes the logits move faster under Adam, whose step
    in a parameter is about the learning rate whatever its scale.

    A linear layer that reads a flattened feature map (NatureCNN's 3136 -> 512 reads
    64 x 7 x 7) can pool that map too (``unflatten=(C, H, W)``): the gate then sees C
    channel means, as a convolution's gate does, instead of a 3136-wide input whose
    hidden layer (785 wide) would cost more than the layer it gates.
    """

    def __init__(
        self,
        in_channels: int,
        num_sources: int,
        pool: bool,
        norm: GateNorm = "normalized",
        unflatten: tuple[int, int, int] | None = None,
        temperature: float = 1.0,
        prior: SourcePrior | None = None,
    ):
        super().__init__()
        if norm not in GATE_NORMS:
            raise ValueError(f"gate norm must be one of {GATE_NORMS}, got {norm!r}")
        if not temperature > 0:
            raise ValueError(f"gate temperature must be > 0, got {temperature}")
        if prior is not None and (norm != "softmax" or prior.logits.shape != (num_sources,)):
            raise ValueError(f"a source prior needs norm='softmax' and {num_sources} logits")
        if unflatten is not None:
            if in_channels != unflatten[0] * unflatten[1] * unflatten[2]:
                raise ValueError(f"gate input of {in_channels} features cannot be viewed as {tuple(unflatten)}")
            in_channels = unflatten[0]
        hidden = in_channels // 4 + 1
        if norm == "softmax":
            hidden = max(hidden, 16)
        self.pool = pool
        self.unflatten = tuple(unflatten) if unflatten is not None else None
        self.norm = norm
        self.temperature = temperature
        self.fc1 = GateLinear(in_channels, hidden, bias=False)
        self.fc2 = GateLinear(hidden, num_sources, bias=True)
        if norm == "softmax":
            nn.init.zeros_(self.fc2.weight)
        # The same module in every layer's gate: one parameter for the optimizer, saved under
        # each layer's key with the same value.
        self.prior = prior

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return coefficients of shape (batch, num_sources)."""
        if self.unflatten is not None:
            x = x.view(x.shape[0], self.unflatten[0], -1).mean(dim=2)
        elif self.pool:
            x = x.mean(dim=(2, 3))
        if self.norm == "softmax":
            logits = self.fc2(F.gelu(self.fc1(x)))
            if self.prior is not None:
                logits = logits + self.prior.logits
            return torch.softmax(logits / self.temperature, dim=1)
        a = torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))
        return a / a.sum(dim=1, keepdim=True)

    def neutral(self, num_sources: int) -> torch.Tensor:
        """Coefficients an untrained gate gives on average: the EMA's starting point."""
        if self.norm == "softmax":
            logits = self.fc2.bias.detach() + (self.prior.logits.detach() if self.prior is not None else 0.0)
            return torch.softmax(logits / self.temperature, dim=0)
        return torch.full((num_sources,), 1.0 / num_sources)

    def extra_repr(self) -> str:
        return f"norm={self.norm}, temperature={self.temperature}, prior={self.prior is not None}"
