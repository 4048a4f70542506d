"""Export a run as a plain SB3 model zip: an ordinary NatureCNN ``CnnPolicy`` that
``PPO.load`` (or ``A2C.load``, ``DQN.load``) reads in a Python without zoo_rl."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from zoo_rl.envs import make_atari_vec_env
from zoo_rl.errors import ConfigError
from zoo_rl.io_utils import atomic_write
from zoo_rl.rl.methods import METHODS, get_method
from zoo_rl.rl.report.load import load_run_model
from zoo_rl.rl.training.models import build_model
from zoo_rl.rl.zoo.extractor import TransferExtractor

NATURE_CNN_KEY = re.compile(r"^(?P<prefix>.*?)(?P<key>(cnn\.\d+|linear\.0)\.(weight|bias))$")


def export_run(run_dir: Path, output: Path) -> Path:

    model, config = load_run_model(Path(run_dir))
    if not get_method(config.method).exportable:
        raise ConfigError(
            f"{run_dir}: method {config.method!r} keeps input-dependent weights and cannot become one NatureCNN; "
            "export works for " + ", ".join(name for name, m in METHODS.items() if m.exportable) + " runs"
        )
    plain_config = dataclasses.replace(config, method="scratch", zoo=[], source=None, method_options={})
    env = make_atari_vec_env(config.game, config.n_envs, config.seed, config.settings)
    try:
        plain = build_model(plain_config, env)
    finally:
        env.close()

    # Keys of every NatureCNN in the plain policy (features_extractor, pi_/vf_ copies,
    # q_net and q_net_target ...): an extractor in the same place gives its NatureCNN form.
    trained_state = model.policy.state_dict()
    merged: dict[str, dict[str, torch.Tensor]] = {}
    state = {}
    for key in plain.policy.state_dict():
        match = NATURE_CNN_KEY.match(key)
        owner = model.policy.get_submodule(match["prefix"].rstrip(".")) if match and match["prefix"] else None
        if isinstance(owner, TransferExtractor):
            if match["prefix"] not in merged:
                try:
                    merged[match["prefix"]] = owner.as_nature_cnn().state_dict()
                except ValueError as err:  # the core's word: a Knowledge Flow student still needs its teachers
                    raise ConfigError(f"{run_dir}: {err}") from err
            state[key] = merged[match["prefix"]][match["key"]]
        else:
            state[key] = trained_state[key]
    with torch.no_grad():
        plain.policy.load_state_dict(state)
    output = Path(output)
    atomic_write(output, lambda tmp: plain.save(tmp))
    return output
