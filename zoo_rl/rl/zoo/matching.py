"""Channel matching: a member's hidden units put in the order of a reference member's, by the
correlation of their activations (an optimal assignment), applied to its weights so that it
computes the same function (:meth:`zoo_rl.rl.zoo.extractor.ZooNatureCNN.match_channels`)."""

from __future__ import annotations

import torch
from scipy.sparse.csgraph import connected_components

from zoo_rl.core import ZooLayer

# Two members whose weights in a layer have a cosine above this share their units there (one
# descends from the other, or both from one ancestor): matching moves them together. Independently
# trained agents measured 0.00-0.05 in every layer, fine-tunes of one ancestor 0.90-0.98
# (results/inspect/).
ALIGNED_COSINE = 0.5


def aligned_groups(layer: ZooLayer) -> list[list[int]]:
    """The layer's members grouped by shared units (weight cosine above :data:`ALIGNED_COSINE`,
    linked transitively), each group and the list in member order."""
    flat = torch.nn.functional.normalize(layer.weights.detach().flatten(1), dim=1)
    _, labels = connected_components((flat @ flat.T > ALIGNED_COSINE).cpu().numpy(), directed=False)
    groups: dict[int, list[int]] = {}
    for member, label in enumerate(labels):
        groups.setdefault(int(label), []).append(member)
    return sorted(groups.values())


def unit_samples(y: torch.Tensor) -> torch.Tensor:
    """(samples, units): every observation and position is a sample of a channel."""
    return y.transpose(0, 1).flatten(1).T if y.dim() == 4 else y


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of every column of ``a`` with every column of ``b``; 0 for a constant unit."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    a = a / a.norm(dim=0).clamp_min(1e-12)
    b = b / b.norm(dim=0).clamp_min(1e-12)
    return a.T @ b


def permute_member(layer: ZooLayer, i: int, perm: torch.Tensor, outputs_of: bool) -> None:
    """Reorder member ``i``'s output units (``outputs_of``) or input units of ``layer``.

    A linear layer that reads a flattened (C, H, W) map takes a channel permutation as a
    permutation of blocks of H*W inputs."""
    w = layer.weights.data[i]
    if outputs_of:
        w.copy_(w[perm])
        if layer.biases is not None:
            layer.biases.data[i].copy_(layer.biases.data[i][perm])
        return
    if w.dim() == 2 and w.shape[1] != perm.numel():
        block = w.shape[1] // perm.numel()
        w.copy_(w.view(w.shape[0], perm.numel(), block)[:, perm].reshape_as(w))
    else:
        w.copy_(w[:, perm])
