"""The Zoo-Tuning core shared by the RL and vision paths.

Layers that adaptively aggregate the parameters of m pretrained models of the same
architecture (Shu et al., "Zoo-Tuning: Adaptive Transfer from a Zoo of Models",
ICML 2021), their settings (:class:`ZooOptions`), and the functions that build such a model from an ordinary module
(:func:`zooify`) and collapse it back into one (:func:`merge`); and the feature
distillation of the Distill baseline (:class:`FeatureDistillation`) and the Knowledge Flow
baseline (:class:`KnowledgeFlow`), for any student.
"""

from .distill import AddAuxiliaryLoss, FeatureDistillation
from .gate import Gate, SourcePrior
from .kflow import KnowledgeFlow
from .layers import ZooConv2d, ZooLayer, ZooLinear
from .options import CONV_STRATEGIES, GATE_NORMS, LINEAR_STRATEGIES, GateNorm, ZooOptions
from .readout import readouts
from .zooify import (
    check_state_dicts,
    freeze_gates,
    merge,
    mergeable,
    set_acting_cache,
    set_prior,
    zoo_layers,
    zooify,
)

__all__ = [
    "CONV_STRATEGIES",
    "GATE_NORMS",
    "LINEAR_STRATEGIES",
    "AddAuxiliaryLoss",
    "FeatureDistillation",
    "Gate",
    "GateNorm",
    "KnowledgeFlow",
    "SourcePrior",
    "ZooConv2d",
    "ZooLayer",
    "ZooLinear",
    "ZooOptions",
    "check_state_dicts",
    "freeze_gates",
    "merge",
    "mergeable",
    "readouts",
    "set_acting_cache",
    "set_prior",
    "zoo_layers",
    "zooify",
]
