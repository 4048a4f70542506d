"""Fine-tuning from one source: NatureCNN initialised from one zoo member's extractor.

As a transfer baseline (``transfer --method finetune``) only the features carry over and the
heads are new, as in the paper's comparison: what is measured is what the source's features
are worth to another game.  A pretraining run started from a parent (``pretrain GAME --init
AGENT``) continues the parent's agent on one of its own games, so the heads carry over too
(:func:`inherit_heads`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from zoo_rl.envs import full_action_indices, game_list
from zoo_rl.errors import ConfigError
from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.zoo.manifest import member_game
from zoo_rl.rl.zoo.members import action_head, member_file, nature_cnn_weights, read_policy_state_dict, sha256

from .base import Method, ModelFactory, nature_cnns


class Finetune(Method):
    name = "finetune"
    needs_source = True
    exportable = True

    def initialize(self, model: BaseAlgorithm, config: RunConfig, build: ModelFactory) -> None:
        assert config.source is not None
        weights = nature_cnn_weights(config.source, in_channels=config.settings.frame_stack)
        with torch.no_grad():
            for cnn in nature_cnns(model):
                own = cnn.state_dict()
                wrong = [k for k, v in weights.items() if v.shape != own[k].shape]
                if wrong:
                    k = wrong[0]
                    raise ConfigError(f"{config.source}: its NatureCNN's {k} has shape {tuple(weights[k].shape)}, "
                                      f"this model's {tuple(own[k].shape)}")  # fmt: skip
                cnn.load_state_dict(weights)
        if config.command == "pretrain":
            inherit_heads(model, config)

    def start(self, model: BaseAlgorithm, config: RunConfig) -> dict[str, str]:
        """The source's provenance: its file and sha256 when the run started."""
        assert config.source is not None
        return {"file": Path(config.source).name, "sha256": sha256(member_file(config.source))}


def inherit_heads(model: BaseAlgorithm, config: RunConfig) -> None:
    """Copy the parent's value head, and its policy head where its actions are the child's.

    A parent that acts in ALE's full action set (a multi-game agent) answers for each action
    of the child's game through that action's row; a parent with the child's own action set and
    game keeps its rows; any other policy head starts fresh (another game's actions mean other
    things).  Only actor-critic parents (PPO, A2C) into actor-critic children have these heads.
    """
    assert config.source is not None
    state = read_policy_state_dict(config.source)
    policy = model.policy
    try:
        family, weight, bias = action_head(state)
    except ConfigError:  # a parent without a policy head (a bare trunk): only the trunk carries over
        return
    if family != "actor_critic" or not hasattr(policy, "action_net"):
        return
    with torch.no_grad():
        if "value_net.weight" in state and state["value_net.weight"].shape == policy.value_net.weight.shape:
            policy.value_net.weight.copy_(state["value_net.weight"])
            policy.value_net.bias.copy_(state["value_net.bias"])
        rows = head_rows(weight.shape[0], policy.action_net.out_features, config)
        if rows is not None:
            policy.action_net.weight.copy_(weight[rows])
            policy.action_net.bias.copy_(bias[rows])


def head_rows(parent_actions: int, child_actions: int, config: RunConfig) -> list[int] | None:
    """Which rows of the parent's policy head answer for the child's actions, or None."""
    full = 18  # ALE's full action set
    if config.settings.full_action_space or len(game_list(config.game)) > 1:
        return list(range(full)) if parent_actions == full else None
    if parent_actions == full:
        return full_action_indices(config.game)
    same_game = member_game(config.source) == config.game
    return list(range(child_actions)) if same_game and parent_actions == child_actions else None
