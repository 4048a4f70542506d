"""Transfer methods, one small module each, looked up by name."""

from zoo_rl.errors import ConfigError

from .base import Method, nature_cnns
from .distill import Distill
from .ensemble import Ensemble
from .finetune import Finetune
from .kflow import KnowledgeFlow
from .scratch import Scratch
from .zoo_tuning import LiteZooTuning, ZooTuning, ZooUniform

METHODS: dict[str, type[Method]] = {
    m.name: m for m in (Scratch, Finetune, ZooTuning, LiteZooTuning, ZooUniform, Ensemble, Distill, KnowledgeFlow)
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]()


__all__ = ["METHODS", "Method", "get_method", "nature_cnns"]
