"""Zoo-Tuning layers: one convolution or linear layer whose weight is an adaptive
mixture of the same layer in m pretrained models.

For every layer, ``W_hat = sum_i a_i(x) * (T_i @ W_i)`` where ``W_i`` is source i's
(trainable) weight, ``T_i`` an O x O channel alignment over output channels
(identity-initialised, applied to the weights so that the result is still one layer)
and ``a_i(x)`` the data-dependent gate.  Three ways to evaluate the layer:

* full (default): every sample gets its own aggregated weight;
* lite (``lite=True``): training uses the batch mean of the coefficients and keeps an
  EMA of it; evaluation uses the EMA, runs no gate and is one plain layer;
* frozen: ``freeze_gate(coefficients)`` fixes the coefficients (e.g. uniform parameter
  averaging, or a one-hot choice of source) and skips the gate network.

The settings (lite, gates, rescale, alignment, strategies) are one :class:`ZooOptions`, shared by
every layer of a model.

Per-sample aggregation never loops over samples in Python.  Strategies (measured by
``scripts/benchmark.py --only layers``, see docs/performance.md):

* ``"grouped"`` (conv, default): materialise B kernels and run one grouped convolution;
* ``"mix"`` (both; the linear layer's only one): run the m aligned source layers as one wide
  layer and mix their outputs per sample.  Exact by linearity; costs m times the layer's FLOPs
  but uses dense kernels and never builds B weights.

Measured on an idle 2-core CPU (docs/performance.md), ``grouped`` is the fastest conv
strategy at every NatureCNN layer (1.65-2.4x the plain layer, against 4.5-7x for ``mix``).
Two strategies lost everywhere and are not offered: im2col with a batched matmul for
convolutions (1.3-2x slower than ``grouped``) and B materialised 512 x 3136 weight matrices for
the linear layer (180x the plain layer, 1.6 GB at batch 256).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .gate import Gate, SourcePrior
from .options import ZooOptions


class _NormPreservingMixture(torch.autograd.Function):
    """See :func:`norm_preserving_mixture`.  Its backward passes over the m weights about three
    times where autograd's, through the members' norms, passes about seven (``aten::norm``'s
    backward divides, masks the zero norms and multiplies, each over all m weights): the
    rescale was most of lite's extra step time (docs/performance.md)."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        norms = weights.norm(dim=2)  # (m, O): every member's output channels
        mixed = torch.tensordot(a, weights, dims=1)  # (O, F)
        parts = a @ norms
        length = mixed.norm(dim=1).clamp_min(1e-10)
        ctx.save_for_backward(a, weights, norms, mixed, parts, length)
        return mixed * (parts / length)[:, None]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        a, weights, norms, mixed, parts, length = ctx.saved_tensors
        along = (grad * mixed).sum(dim=1)  # the output's gradient along each mixed channel
        d_mixed = grad * (parts / length)[:, None] - (parts * along / length**3)[:, None] * mixed
        d_parts = along / length
        d_a = None
        if ctx.needs_input_grad[0]:  # a matrix-vector product: einsum would copy the weights transposed first
            d_a = weights.flatten(1) @ d_mixed.flatten() + norms @ d_parts
        d_weights = None
        if ctx.needs_input_grad[1]:  # d/dW_i: a_i (d_mixed + d_parts W_i / ||W_i||); a zero channel gets a_i d_mixed
            per_norm = a[:, None] * d_parts / norms.masked_fill(norms == 0, 1.0)
            d_weights = torch.addcmul((a[:, None, None] * d_mixed), per_norm[:, :, None], weights)
        return d_a, d_weights


class _ChannelGram(torch.autograd.Function):
    """See :func:`channel_gram`.  Autograd's backward of the equivalent ``einsum`` runs two
    batched products, one per use of ``weights``, and adds them; the Gram matrix is symmetric,
    so one product with ``grad + grad^T`` gives the same gradient (a third of the time of
    autograd's for a six-member linear layer, docs/performance.md)."""

    @staticmethod
    def forward(ctx: Any, weights: torch.Tensor) -> torch.Tensor:
        per_channel = weights.transpose(0, 1)  # (O, m, F), a view
        ctx.save_for_backward(per_channel)
        return torch.bmm(per_channel, per_channel.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (per_channel,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), per_channel).transpose(0, 1)


def channel_gram(weights: torch.Tensor) -> torch.Tensor:
    """For ``weights`` (m, O, F): every output channel's m x m Gram matrix of the members'
    rows, ``G[o, i, j] = <W_i[o], W_j[o]>``, shape (O, m, m)."""
    return _ChannelGram.apply(weights)


def norm_preserving_mixture(a: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i a_i W_i``, each output channel (row) scaled to ``sum_i a_i ||W_i row||``: the
    mixture of ``weights`` (m, O, F) with coefficients ``a`` (m,) that keeps the norm of its parts."""
    return _NormPreservingMixture.apply(a, weights)


class ZooLayer(nn.Module):
    """Shared machinery of :class:`ZooConv2d` and :class:`ZooLinear`.

    Subclasses define how one weight is applied (``_apply_one``) and how B per-sample
    mixtures are applied (``_apply_per_sample``), and how to build the plain layer.
    """

    def __init__(
        self,
        weights: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor] | None,
        gate_in_features: int,
        gate_pool: bool,
        options: ZooOptions,
        *,
        align: bool,
        strategy: str,
        gate_unflatten: tuple[int, int, int] | None = None,
        prior: SourcePrior | None = None,
    ):
        super().__init__()
        if len(weights) == 0:
            raise ValueError("a zoo layer needs at least one source weight")
        m = len(weights)
        out_features = weights[0].shape[0]
        self.num_sources = m
        self.options = options
        self.strategy = strategy
        self.weights = nn.Parameter(torch.stack([w.detach().clone().float() for w in weights]))
        self.biases = (
            nn.Parameter(torch.stack([b.detach().clone().float() for b in biases])) if biases is not None else None
        )
        self.align = nn.Parameter(torch.eye(out_features).repeat(m, 1, 1)) if align else None
        self.gate = Gate(
            gate_in_features, m, pool=gate_pool, norm=options.gate_norm, unflatten=gate_unflatten,
            temperature=options.gate_temperature, prior=prior,
        )  # fmt: skip
        # "running_" in the name: SB3's DQN/QR-DQN copy such buffers into their target network.
        self.register_buffer("running_ema", self.gate.neutral(m))
        self.register_buffer("fixed", torch.zeros(m))
        self.register_buffer("frozen", torch.tensor(False))
        self.register_buffer("last_coefficients", self.gate.neutral(m), persistent=False)
        # Off unless the caller knows the weights change only in training mode (set_acting_cache).
        self.cache_acting_weights = False
        self._acting: tuple[torch.Tensor, torch.Tensor | None] | None = None

    @property
    def lite(self) -> bool:
        return self.options.lite

    @property
    def ema(self) -> torch.Tensor:
        """The lite temporal ensemble of the batch coefficients."""
        return self.running_ema

    # ----------------------------------------------------------------- coefficients
    def freeze_gate(self, coefficients: torch.Tensor | Sequence[float]) -> None:
        """Fix the coefficients to ``coefficients`` (length m); the gate no longer runs."""
        c = torch.as_tensor(coefficients, dtype=self.fixed.dtype, device=self.fixed.device)
        if c.shape != (self.num_sources,):
            raise ValueError(f"expected {self.num_sources} coefficients, got shape {tuple(c.shape)}")
        self.fixed.copy_(c)
        self.frozen.fill_(True)

    def unfreeze_gate(self) -> None:
        self.frozen.fill_(False)

    def batch_coefficients(self) -> torch.Tensor | None:
        """Coefficients shared by the whole batch, or None when they are per sample."""
        if bool(self.frozen):
            return self.fixed
        if self.lite and not self.training:
            return self.ema
        return None

    # ----------------------------------------------------------------- weights
    # Whether a parameter changed cannot be told from the tensors (fused optimizers and SB3's
    # target-network updates write without bumping version counters), so nothing is cached by
    # default.  An on-policy agent changes its weights only in training mode, between acting
    # phases: with ``cache_acting_weights`` a lite or frozen layer acting in eval mode without
    # gradients mixes its weights once and reuses them until the next ``train()`` call, a load
    # or a move; recomputing them at every step cost lite PPO 16% of its env steps/s.
    def train(self, mode: bool = True) -> ZooLayer:
        self._acting = None
        return super().train(mode)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._acting = None
        super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> ZooLayer:
        self._acting = None
        return super()._apply(fn, *args, **kwargs)

    def _shared_parameters(self, shared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.cache_acting_weights or self.training or torch.is_grad_enabled():
            return self.mixed_parameters(shared)
        if self._acting is None:
            self._acting = self.mixed_parameters(shared)
        return self._acting

    def aligned_weights(self) -> torch.Tensor:
        """``T_i @ W_i`` for every source: shape (m, O, ...)."""
        if self.align is None:
            return self.weights
        return torch.bmm(self.align, self.weights.flatten(2)).view_as(self.weights)

    def _channel_scale(self, w_tilde: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Per sample and output channel, ``sum_i a_i ||w_i|| / ||sum_i a_i w_i||``: shape (B, O).

        From the m x m Gram matrix of the sources' channels, so the B mixed weights are
        never built."""
        gram = channel_gram(w_tilde.flatten(2))
        norms = gram.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt()
        mixed = torch.einsum("bm,omn,bn->bo", a, gram, a).clamp_min(1e-20).sqrt()
        return (a @ norms.T) / mixed

    def mixed_parameters(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weight and bias aggregated with coefficients ``a`` of shape (m,)."""
        w_tilde = self.aligned_weights()
        if self.options.rescale:
            w = norm_preserving_mixture(a, w_tilde.flatten(2)).view(w_tilde.shape[1:])
        else:
            w = torch.tensordot(a, w_tilde, dims=1)
        biases = self.biases
        b = a @ biases if biases is not None else None
        return w, b

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.batch_coefficients()
        if shared is not None:
            self.last_coefficients = shared.detach().clone()
            return self._apply_one(x, *self._shared_parameters(shared))
        a = self.gate(x)
        mean_a = a.mean(dim=0)
        self.last_coefficients = mean_a.detach()
        if self.lite:
            with torch.no_grad():
                self.ema.mul_(self.options.ema_momentum).add_(mean_a.detach(), alpha=1.0 - self.options.ema_momentum)
            return self._apply_one(x, *self.mixed_parameters(mean_a))
        if x.shape[0] == 1:  # one sample: its own mixture is simply one layer
            return self._apply_one(x, *self.mixed_parameters(a[0]))
        return self._apply_per_sample(x, a)

    def _apply_one(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _apply_per_sample(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to_plain(self) -> nn.Module:
        """The ordinary layer with the current shared coefficients (lite EMA or frozen)."""
        raise NotImplementedError

    def _shared_for_merge(self) -> torch.Tensor:
        if bool(self.frozen):
            return self.fixed
        if self.lite:
            return self.ema
        raise ValueError(
            "cannot merge a full Zoo-Tuning layer: its coefficients depend on each input; "
            "use lite=True or freeze_gate() first"
        )

    def readout(self, sources: Sequence[str]) -> dict[str, float]:
        """Per source: the last batch's mean coefficient and the lite EMA (``zoo_rl.core.readouts``)."""
        last, ema = self.last_coefficients.tolist(), self.ema.tolist()
        return {
            **{f"gate_last/{name}": value for name, value in zip(sources, last, strict=True)},
            **{f"gate_ema/{name}": value for name, value in zip(sources, ema, strict=True)},
        }

    def extra_repr(self) -> str:
        return (
            f"sources={self.num_sources}, align={self.align is not None}, lite={self.lite}, "
            f"gate_norm={self.gate.norm}, strategy={self.strategy}, rescale={self.options.rescale}"
        )


def _uninitialised(cls: type[nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    """A plain layer whose parameters are about to be overwritten: built without its default
    init, so that merging (export, cost, a look mid-training) draws nothing from torch's global
    generator and leaves the random stream of any training around it as it was."""
    return torch.nn.utils.skip_init(cls, *args, **kwargs)


class ZooConv2d(ZooLayer):
    """Zoo-Tuning version of :class:`torch.nn.Conv2d` (groups = 1, zero padding)."""

    def __init__(
        self,
        weights: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor] | None = None,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        options: ZooOptions = ZooOptions(),
        prior: SourcePrior | None = None,
    ):
        """Channels are aligned (``options.align``) only for kernels larger than 1x1, as in the
        paper; ``prior``: the source prior shared by every gate of the model."""
        shape = weights[0].shape
        if len(shape) != 4:
            raise ValueError(f"conv weights must be 4-d (O, I, kh, kw), got shape {tuple(shape)}")
        if isinstance(padding, str):
            raise ValueError(f"ZooConv2d needs numeric padding, got {padding!r}")
        super().__init__(
            weights, biases, shape[1], True, options,
            align=options.align and shape[2] * shape[3] > 1, strategy=options.conv_strategy, prior=prior,
        )  # fmt: skip
        self.stride = nn.modules.utils._pair(stride)
        self.padding = nn.modules.utils._pair(padding)
        self.dilation = nn.modules.utils._pair(dilation)

    @classmethod
    def from_sources(
        cls, template: nn.Conv2d, weights: Sequence[torch.Tensor], biases, options: ZooOptions, **layer: Any
    ) -> ZooConv2d:
        if template.groups != 1 or template.padding_mode != "zeros":
            raise ValueError("ZooConv2d supports groups=1 and padding_mode='zeros' only")
        return cls(weights, biases, template.stride, template.padding, template.dilation, options, **layer)

    def _apply_one(self, x, w, b):
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation)

    def _output_size(self, x: torch.Tensor) -> tuple[int, int]:
        k = self.weights.shape[-2:]
        return tuple(  # type: ignore[return-value]
            (x.shape[2 + d] + 2 * self.padding[d] - self.dilation[d] * (k[d] - 1) - 1) // self.stride[d] + 1
            for d in range(2)
        )

    def _apply_per_sample(self, x, a):
        batch = x.shape[0]
        w_tilde = self.aligned_weights()
        m, out_ch, in_ch, kh, kw = w_tilde.shape
        biases = self.biases
        out_h, out_w = self._output_size(x)
        strategy = self.strategy
        if strategy == "mix":
            y = F.conv2d(x, w_tilde.reshape(m * out_ch, in_ch, kh, kw), None, self.stride, self.padding, self.dilation)
            y = torch.bmm(a.unsqueeze(1), y.reshape(batch, m, out_ch * out_h * out_w)).view(batch, out_ch, out_h, out_w)
        else:  # grouped
            per_sample = (a @ w_tilde.reshape(m, -1)).view(batch * out_ch, in_ch, kh, kw)
            # The batch folded into channels: sample j's in_ch channels meet only its own
            # out_ch kernels (groups = batch), so B different convolutions run as one.
            y = F.conv2d(
                x.reshape(1, batch * in_ch, *x.shape[2:]), per_sample, None,
                self.stride, self.padding, self.dilation, groups=batch,
            ).view(batch, out_ch, out_h, out_w)  # fmt: skip
        if self.options.rescale:  # scaling a kernel's output channel = scaling that channel of its output
            y = y * self._channel_scale(w_tilde, a)[:, :, None, None]
        if biases is not None:
            y = y + (a @ biases)[:, :, None, None]
        return y

    def to_plain(self) -> nn.Conv2d:
        w, b = self.mixed_parameters(self._shared_for_merge())
        out_ch, in_ch, kh, kw = w.shape
        conv = _uninitialised(nn.Conv2d, in_ch, out_ch, (kh, kw), self.stride, self.padding, self.dilation,
                              bias=b is not None)  # fmt: skip
        with torch.no_grad():
            conv.weight.copy_(w)
            if b is not None:
                conv.bias.copy_(b)
        return conv


class ZooLinear(ZooLayer):
    """Zoo-Tuning version of :class:`torch.nn.Linear`; leading dims are treated as batch."""

    def __init__(
        self,
        weights: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor] | None = None,
        options: ZooOptions = ZooOptions(),
        gate_unflatten: tuple[int, int, int] | None = None,
        prior: SourcePrior | None = None,
    ):
        """``gate_unflatten=(C, H, W)``: the input is a flattened feature map; the gate pools it.
        Channels are aligned only with ``options.align_linear``."""
        shape = weights[0].shape
        if len(shape) != 2:
            raise ValueError(f"linear weights must be 2-d (O, I), got shape {tuple(shape)}")
        super().__init__(
            weights, biases, shape[1], False, options, align=options.align_linear,
            strategy=options.linear_strategy, gate_unflatten=gate_unflatten, prior=prior,
        )  # fmt: skip

    @classmethod
    def from_sources(
        cls, template: nn.Linear, weights: Sequence[torch.Tensor], biases, options: ZooOptions, **layer: Any
    ) -> ZooLinear:
        return cls(weights, biases, options, **layer)

    def _apply_one(self, x, w, b):
        return F.linear(x, w, b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        lead = x.shape[:-1]
        return super().forward(x.reshape(math.prod(lead), x.shape[-1])).view(*lead, -1)

    def _apply_per_sample(self, x, a):
        w_tilde = self.aligned_weights()
        m, out_f, in_f = w_tilde.shape
        y = F.linear(x, w_tilde.reshape(m * out_f, in_f)).view(-1, m, out_f)  # "mix"
        y = torch.bmm(a.unsqueeze(1), y).squeeze(1)
        if self.options.rescale:
            y = y * self._channel_scale(w_tilde, a)
        biases = self.biases
        if biases is not None:
            y = y + a @ biases
        return y

    def to_plain(self) -> nn.Linear:
        w, b = self.mixed_parameters(self._shared_for_merge())
        lin = _uninitialised(nn.Linear, w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if b is not None:
                lin.bias.copy_(b)
        return lin
