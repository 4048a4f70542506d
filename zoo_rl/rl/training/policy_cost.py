"""Training and inference cost of a policy, in the shape of the paper's Table 1.

FLOPs are counted as multiply-accumulates (MACs) per observation, the convention behind
the paper's "4.12 GFLOPs" for ResNet-50, by ``torch.utils.flop_counter`` on what the code
actually executes (so an implementation that mixes m layer outputs is charged m times).
Training cost is per observation in a batch of ``TRAIN_BATCH`` (work done once per batch,
such as aggregating the weights, is shared by the batch as in training); inference cost
is for one observation alone, as an agent acts between two updates (a full zoo layer
aggregates the sources' weights for it at every call: nothing is cached between calls).
Parameters: *train* = those the optimizer updates; *inference* = those of the modules that
run when the policy acts, after merging lite zoo layers into one NatureCNN.
"""

from __future__ import annotations

import copy

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from torch import nn

from zoo_rl.core import merge, mergeable
from zoo_rl.macs import forward_cost

TRAIN_BATCH = 256


def _acting_cost(policy: nn.Module, obs: torch.Tensor, training: bool) -> tuple[int, int]:
    """(MACs per observation, parameters) of one ``policy._predict`` on the batch ``obs``."""
    return forward_cost(policy, lambda: policy._predict(obs, deterministic=True), len(obs), training)


def _copy(policy: nn.Module) -> nn.Module:
    """A deep copy of an SB3 policy, so that measuring it cannot change the trained one
    (a training-mode forward moves the lite gates' EMA)."""
    # SB3 keeps the last action distribution (non-leaf tensors) on the policy; deepcopy
    # refuses those, and the copy does not need them.
    dist = getattr(policy, "action_dist", None)
    kept = dist.__dict__.pop("distribution", None) if dist is not None else None
    try:
        return copy.deepcopy(policy)
    finally:
        if kept is not None:
            dist.distribution = kept


def merged_for_inference(policy: nn.Module) -> nn.Module:
    """A copy of ``policy`` whose lite / frozen-gate zoo extractors are plain NatureCNNs."""
    policy = _copy(policy)
    for module in list(policy.modules()):
        zoo = getattr(module, "zoo", None)
        if isinstance(zoo, nn.Module) and mergeable(zoo):
            module.zoo = merge(zoo)
    return policy


def policy_cost(model: BaseAlgorithm) -> dict[str, float]:
    """Cost columns of ``model``'s policy, measured on copies: the model itself is left as it was."""
    policy = _copy(model.policy)
    inference = merged_for_inference(model.policy)
    obs = policy.obs_to_tensor(torch.zeros(TRAIN_BATCH, *model.observation_space.shape, dtype=torch.uint8).numpy())[0]
    policy.set_training_mode(True)
    train_macs, _ = _acting_cost(policy, obs, training=True)
    trainable = {id(p): p.numel() for g in policy.optimizer.param_groups for p in g["params"] if p.requires_grad}
    inference.set_training_mode(False)
    inference_macs, inference_params = _acting_cost(inference, obs[:1], training=False)
    return {
        "train_gmacs": train_macs / 1e9,
        "train_params": sum(trainable.values()),
        "inference_gmacs": inference_macs / 1e9,
        "inference_params": inference_params,
    }
