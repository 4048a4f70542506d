"""Counting what a forward pass costs, shared by the RL and vision cost reports.

MACs (multiply-accumulates) per sample, the convention behind the paper's "4.12 GFLOPs" for a
ResNet-50, counted by ``torch.utils.flop_counter`` on what the code actually executes; and the
parameters of the modules that ran (a model's unused branches are not charged).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def forward_cost(root: nn.Module, run: Callable[[], Any], samples: int, training: bool) -> tuple[int, int]:
    """(MACs per sample, parameters of the modules under ``root`` that ran) of ``run()``, a
    forward pass over ``samples`` samples; ``training`` runs it with gradients enabled, as in an
    update, so that a forward that does extra work while training is charged for it."""
    called: dict[int, nn.Module] = {}

    def record(module: nn.Module, *_) -> None:
        called[id(module)] = module

    hooks = [m.register_forward_hook(record) for m in root.modules()]
    counter = FlopCounterMode(display=False)
    # Nothing is kept for a backward pass that never comes: a ResNet-50 zoo at batch 48 would
    # otherwise hold gigabytes of activations and per-image weights.
    forget = torch.autograd.graph.saved_tensors_hooks(lambda _: None, lambda _: None)
    try:
        with torch.set_grad_enabled(training), forget, counter:
            run()
    finally:
        for h in hooks:
            h.remove()
    params = {id(p): p.numel() for m in called.values() for p in m.parameters(recurse=False)}
    return counter.get_total_flops() // 2 // samples, sum(params.values())
