"""What a transfer method learns, read out the same way on every path.

A core module with something to show defines ``readout(sources) -> {"<kind>/<key>": value}``:
the zoo layers their coefficients, feature distillation its loss and weight, Knowledge Flow its
mixing weights.  :func:`readouts` finds every such module inside any model, so that the RL logger
and the vision loop log every method with one loop and no knowledge of which methods exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def readouts(model: nn.Module, sources: Sequence[str], prefix: str = "") -> dict[str, float]:
    """Every scalar the modules inside ``model`` read out, tagged ``<kind>/<prefix>/<module
    path>/<key>`` (TensorBoard groups by kind); ``sources`` names the model's sources."""
    out: dict[str, float] = {}
    for path, module in model.named_modules():
        readout = getattr(module, "readout", None)
        if not callable(readout):
            continue
        for name, value in readout(sources).items():
            kind, _, key = name.partition("/")
            out["/".join(part for part in (kind, prefix, path, key) if part)] = value
    return out
