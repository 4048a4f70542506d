"""How a transfer method's features extractor trains under the agent's own optimizer step.

Give it a ``zoo-rl transfer`` command line (without ``transfer``); it builds and starts the
run as training does, trains ``--steps`` agent steps in memory (no run directory) and
reports, over every gradient step:

* the gradient norm of the features extractor and of the rest of the policy, before
  clipping, and the factor by which the algorithm's global clip (``max_grad_norm``, 0.5
  for RL Zoo's PPO) scaled the whole gradient;
* how far the network that acts moved over the steps, per NatureCNN layer (relative
  Frobenius change; lite: the merged layer with its EMA coefficients; full Zoo-Tuning has
  no single network and reports none).

Why: a global clip sees whatever a zoo extractor does to its gradients (members, channel
alignments, gates, ``source_grad_scale``), so a zoo policy's heads can be clipped where a
plain policy's are not (docs/recipes.md).

    .venv/bin/python scripts/update_sizes.py DemonAttack --method lite --zoo agents --steps 4096
    .venv/bin/python scripts/update_sizes.py DemonAttack --method scratch --steps 4096 --report scratch.json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from zoo_rl.rl.methods import get_method
from zoo_rl.rl.training.command_line import transfer_configs, transfer_parser
from zoo_rl.rl.training.models import build_model, make_env, validate
from zoo_rl.rl.zoo.extractor import CHAIN, TransferExtractor


def acting_weights(extractor: nn.Module) -> list[torch.Tensor] | None:
    """The weights of the NatureCNN that acts, per layer of ``CHAIN``; None without one.
    (Merging draws no random number, so looking does not change the training that follows.)"""
    if isinstance(extractor, TransferExtractor):
        try:
            extractor = extractor.as_nature_cnn()
        except ValueError:
            return None
    return [extractor.get_submodule(name).weight.detach().clone() for name in CHAIN]


class GradientRecorder:
    """Squared gradient norms of two parameter sets, summed per backward pass and read at
    each optimizer step, i.e. before the algorithm clips them (gradient hooks run when a
    parameter's gradient is complete; the step comes after the clip)."""

    def __init__(self, model: BaseAlgorithm, extractor: nn.Module):
        inside = {id(p) for p in extractor.parameters()}
        self.sums = {"extractor": 0.0, "rest": 0.0}
        self.steps: list[tuple[float, float]] = []
        for p in model.policy.parameters():
            if p.requires_grad:
                key = "extractor" if id(p) in inside else "rest"
                p.register_post_accumulate_grad_hook(lambda p, key=key: self._add(key, p))
        model.policy.optimizer.register_step_pre_hook(lambda *_: self._close_step())

    def _add(self, key: str, p: torch.Tensor) -> None:
        self.sums[key] += float(p.grad.detach().pow(2).sum())

    def _close_step(self) -> None:
        self.steps.append((self.sums["extractor"] ** 0.5, self.sums["rest"] ** 0.5))
        self.sums = {"extractor": 0.0, "rest": 0.0}


def main(argv: list[str]) -> dict:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--report", default=None, help="also write the report as JSON here")
    mine, rest = own.parse_known_args(argv)
    args = transfer_parser().parse_args(["transfer", *rest])
    config = transfer_configs(args)[0]
    method = get_method(config.method)
    validate(config, method)
    env = make_env(config)
    model = build_model(config, env)
    method.start(model, config)
    # The first extractor of the policy: the shared one of PPO/A2C, the online network's of DQN.
    extractor = next(m for m in model.policy.modules() if isinstance(m, BaseFeaturesExtractor))
    recorder = GradientRecorder(model, extractor)
    before = acting_weights(extractor)
    model.learn(total_timesteps=config.steps)
    after = acting_weights(extractor)
    env.close()
    norms = np.array(recorder.steps)
    total = np.hypot(norms[:, 0], norms[:, 1])
    clip = getattr(model, "max_grad_norm", None)
    factor = np.minimum(1.0, clip / total) if clip else np.ones_like(total)
    report = {
        "game": config.game,
        "method": config.method,
        "options": config.method_options,
        "agent_steps": config.steps,
        "gradient_steps": len(norms),
        "max_grad_norm": clip,
        "extractor_grad_norm_median": float(np.median(norms[:, 0])),
        "rest_grad_norm_median": float(np.median(norms[:, 1])),
        "clip_factor_median": float(np.median(factor)),
        "clipped_fraction": float(np.mean(factor < 1.0)),
        "grad_norms": norms.tolist(),  # per gradient step: [extractor, rest of the policy]
        "acting_weights_relative_change": None
        if before is None or after is None
        else {name: float((b - a).norm() / a.norm()) for name, a, b in zip(CHAIN, before, after, strict=True)},
    }
    if mine.report:
        with open(mine.report, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
