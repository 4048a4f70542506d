"""The settings of a Zoo-Tuning layer, in one frozen value that every layer of a model shares."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

GateNorm = Literal["softmax", "normalized"]
GATE_NORMS: tuple[str, ...] = ("softmax", "normalized")
CONV_STRATEGIES: tuple[str, ...] = ("grouped", "mix")
LINEAR_STRATEGIES: tuple[str, ...] = ("mix",)


@dataclass(frozen=True)
class ZooOptions:
    """How the zoo layers of a model mix their sources.  The defaults are the paper's layer.

    :param lite: batch-level coefficients while training, with an EMA used in evaluation: the
        trained model merges into one plain model (``zoo_rl.core.merge``).
    :param gate_norm: ``"normalized"`` (the authors' sigmoid gate, divided by its sum) or
        ``"softmax"`` (see :class:`zoo_rl.core.Gate`).
    :param gate_temperature: softmax gates divide their logits by it; lower is sharper, and
        moves faster under Adam, whose step is about the learning rate whatever the scale.
    :param shared_prior: softmax gates: one learnable source prior added to every layer's gate,
        so that the layers choose a source together (:func:`zoo_rl.core.set_prior`).
    :param rescale: norm-preserving mixtures: each output channel of a mixed weight keeps the
        norm ``sum_i a_i ||W_i||`` of its parts, so that averaging unrelated sources does not
        shrink activations layer after layer (the identity for identical sources or one-hot gates).
    :param align: trainable channel alignment of convolutions with kernels larger than 1x1.
    :param align_linear: the same for linear layers (the paper aligns convolutions only).
    :param ema_momentum: lite: weight of the past in the EMA of the batch coefficients.
    :param conv_strategy: how per-sample convolutions run (:data:`CONV_STRATEGIES`).
    :param linear_strategy: how per-sample linear layers run (:data:`LINEAR_STRATEGIES`).
    """

    lite: bool = False
    gate_norm: GateNorm = "normalized"
    gate_temperature: float = 1.0
    shared_prior: bool = False
    rescale: bool = False
    align: bool = True
    align_linear: bool = False
    ema_momentum: float = 0.9
    conv_strategy: str = "grouped"
    linear_strategy: str = "mix"

    def __post_init__(self) -> None:
        if self.gate_norm not in GATE_NORMS:
            raise ValueError(f"gate_norm must be one of {GATE_NORMS}, got {self.gate_norm!r}")
        if not self.gate_temperature > 0:
            raise ValueError(f"gate_temperature must be > 0, got {self.gate_temperature}")
        if self.shared_prior and self.gate_norm != "softmax":
            raise ValueError("shared_prior needs gate_norm='softmax'")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1), got {self.ema_momentum}")
        if self.conv_strategy not in CONV_STRATEGIES:
            raise ValueError(f"conv_strategy must be one of {CONV_STRATEGIES}, got {self.conv_strategy!r}")
        if self.linear_strategy not in LINEAR_STRATEGIES:
            raise ValueError(f"linear_strategy must be one of {LINEAR_STRATEGIES}, got {self.linear_strategy!r}")

    def replace(self, **changes: Any) -> ZooOptions:
        """A copy with ``changes``; an unknown name raises ``ValueError`` naming the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; expected some of {sorted(known)}")
        return replace(self, **changes)
