"""The Zoo-Tuning core shared by the RL and vision paths.

Layers that adaptively aggregate the parameters of m pretrained models of the same
architecture (Shu et al., "Zoo-Tuning: Adaptive Transfer from a Zoo of Models",
ICML 2021), and the functions that build such a model from an ordinary module
(:func:`zooify`) and collapse it back into one (:func:`merge`); and the feature
distillation of the Distill baseline (:class:`FeatureDistillation`) and the Knowledge Flow
baseline (:class:`KnowledgeFlow`), for any student.
"""

from .distill import AddAuxiliaryLoss, FeatureDistillation
from .gate import GATE_NORMS, Gate, GateNorm, SourcePrior
from .kflow import KnowledgeFlow
from .layers import (
    CONV_STRATEGIES,
    DEFAULT_CONV_STRATEGY,
    DEFAULT_LINEAR_STRATEGY,
    LINEAR_STRATEGIES,
    ZooConv2d,
    ZooLayer,
    ZooLinear,
)
from .zooify import (
    check_state_dicts,
    freeze_gates,
    gate_coefficients,
    merge,
    mergeable,
    set_acting_cache,
    set_prior,
    zoo_layers,
    zooify,
)

__all__ = [
    "CONV_STRATEGIES",
    "DEFAULT_CONV_STRATEGY",
    "DEFAULT_LINEAR_STRATEGY",
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
    "check_state_dicts",
    "freeze_gates",
    "gate_coefficients",
    "merge",
    "mergeable",
    "set_acting_cache",
    "set_prior",
    "zoo_layers",
    "zooify",
]
