"""Turn an ordinary module and m state dicts into a Zoo-Tuning model, and back."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from .gate import SourcePrior
from .layers import ZooConv2d, ZooLayer, ZooLinear
from .options import ZooOptions

StateDict = Mapping[str, torch.Tensor]


def _matches(name: str, patterns: Iterable[str] | None) -> bool:
    return patterns is not None and any(fnmatch.fnmatchcase(name, p) for p in patterns)


def check_state_dicts(template: nn.Module, state_dicts: Sequence[StateDict]) -> None:
    """Raise ``ValueError`` naming the source, key and shapes of the first mismatch."""
    if len(state_dicts) == 0:
        raise ValueError("a zoo needs at least one source state dict, got none")
    reference = template.state_dict()
    for i, sd in enumerate(state_dicts):
        for key, expected in reference.items():
            if key not in sd:
                raise ValueError(f"source {i}: missing key {key!r} (expected shape {tuple(expected.shape)})")
            if tuple(sd[key].shape) != tuple(expected.shape):
                raise ValueError(
                    f"source {i}: key {key!r} has shape {tuple(sd[key].shape)}, "
                    f"the template expects {tuple(expected.shape)}"
                )


def zooify(
    template: nn.Module,
    state_dicts: Sequence[StateDict],
    options: ZooOptions = ZooOptions(),
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    gate_unflatten: Mapping[str, tuple[int, int, int]] | None = None,
) -> nn.Module:
    """Build the Zoo-Tuning model of ``template`` from m sources, every layer with ``options``.

    Every ``Conv2d``/``Linear`` whose qualified name matches one of the ``include``
    glob patterns (default: all) and none of ``exclude`` becomes a zoo layer
    initialised from the m sources.  Every other parameter and floating buffer starts
    as the mean of the sources; BatchNorm running statistics are reset because the
    sources' statistics describe their own data, not the target's.  ``gate_unflatten`` maps
    the names of linear layers that read a flattened ``(C, H, W)`` feature map to that shape,
    so that their gates pool it like a convolution's.  With ``options.shared_prior`` one
    :class:`SourcePrior` feeds the gates of every layer (see :func:`set_prior`).
    ``template`` itself is left untouched.
    """
    check_state_dicts(template, state_dicts)
    model = copy.deepcopy(template)
    reference = model.state_dict()
    mean_state = {
        k: torch.stack([sd[k].to(v.dtype) for sd in state_dicts]).mean(0) if v.is_floating_point() else v
        for k, v in reference.items()
    }
    model.load_state_dict(mean_state)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            module.reset_running_stats()

    prior = SourcePrior(len(state_dicts)) if options.shared_prior else None
    unflatten = dict(gate_unflatten or {})
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
        and (include is None or _matches(name, include))
        and not _matches(name, exclude)
    ]
    for name, module in targets:
        weights = [sd[f"{name}.weight"] for sd in state_dicts]
        biases = [sd[f"{name}.bias"] for sd in state_dicts] if module.bias is not None else None
        if isinstance(module, nn.Conv2d):
            layer: ZooLayer = ZooConv2d.from_sources(module, weights, biases, options, prior=prior)
        else:
            layer = ZooLinear.from_sources(
                module, weights, biases, options, gate_unflatten=unflatten.get(name), prior=prior
            )
        _set_submodule(model, name, layer)
    return model


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def zoo_layers(model: nn.Module) -> dict[str, ZooLayer]:
    """All zoo layers of ``model`` by qualified name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, ZooLayer)}


def mergeable(model: nn.Module) -> bool:
    """Whether :func:`merge` applies: ``model`` has zoo layers and each mixes its sources with
    shared coefficients (the lite EMA or a frozen gate), not with coefficients per input."""
    layers = zoo_layers(model).values()
    return bool(layers) and all(layer.lite or bool(layer.frozen) for layer in layers)


def merge(model: nn.Module) -> nn.Module:
    """A plain copy of ``model`` with every zoo layer collapsed into one ordinary layer.

    Valid for lite models (the EMA coefficients are used) and for layers whose gate
    was frozen with ``freeze_gate``; the result has exactly the template's module
    classes and state-dict keys, so it costs one model at inference.
    """
    merged = copy.deepcopy(model)
    with torch.no_grad():
        for name, layer in zoo_layers(merged).items():
            _set_submodule(merged, name, layer.to_plain())
    return merged


def freeze_gates(model: nn.Module, coefficients: torch.Tensor | Sequence[float]) -> None:
    """Fix the coefficients of every zoo layer (e.g. uniform averaging, or one source)."""
    for layer in zoo_layers(model).values():
        layer.freeze_gate(coefficients)


def set_prior(model: nn.Module, logits: torch.Tensor | Sequence[float]) -> None:
    """Set the shared source prior of ``model`` (built with ``shared_prior=True``) and restart
    every lite EMA at the coefficients the gates now give."""
    layers = list(zoo_layers(model).values())
    priors = {id(layer.gate.prior): layer.gate.prior for layer in layers if layer.gate.prior is not None}
    if len(priors) != 1:
        raise ValueError("set_prior needs a model built with ZooOptions(shared_prior=True)")
    (prior,) = priors.values()
    with torch.no_grad():
        prior.logits.copy_(torch.as_tensor(logits, dtype=prior.logits.dtype))
        for layer in layers:
            layer.running_ema.copy_(layer.gate.neutral(layer.num_sources))


def set_acting_cache(model: nn.Module, enabled: bool = True) -> None:
    """Let every zoo layer of ``model`` reuse its mixed weights while it acts (eval mode, no
    gradients), or stop it (``enabled=False``).  Turn it on only for a stretch in which nothing
    writes the weights, such as one rollout of an agent (``zoo_rl.rl.training.callbacks.ActingCache``);
    any change of mode, load or move also drops what is kept."""
    for layer in zoo_layers(model).values():
        layer.cache_acting_weights = enabled
        layer._acting = None
