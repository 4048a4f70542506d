"""Train zoo extractors with RL Baselines3 Zoo (``python -m rl_zoo3.train``).

RL Zoo takes its hyperparameters from a Python file passed as ``--conf-file`` (a module-level
``hyperparams`` dict, keyed by env id or ``"atari"``).  :func:`rl_zoo_hyperparams` builds that
dict from the same ``configs/algos.yaml`` zoo-rl trains with (themselves RL Zoo's Atari
hyperparameters), with :class:`ZooNatureCNN` as the policy's feature extractor, so an RL Zoo user
keeps the RL Zoo workflow (logs folder, ``rl_zoo3.enjoy``, Optuna, Hub upload) and gains the zoo.

What RL Zoo does not run is zoo-rl's start of a fresh run (``zoo-rl transfer``: the reference
member chosen by LogME on target frames, channel matching, ``start.json``): RL Zoo builds the
extractor with the members' weights as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo_rl.rl.config import algo_defaults
from zoo_rl.rl.extractor import ZooNatureCNN
from zoo_rl.rl.manifest import zoo_paths


def rl_zoo_hyperparams(
    algo: str = "ppo",
    zoo: Sequence[str] = ("agents",),
    *,
    n_timesteps: int = 10_000_000,
    hyperparams_file: str | Path | None = None,
    **extractor_kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """RL Zoo's ``hyperparams`` for Atari games: ``algo``'s entry of ``configs/algos.yaml``
    (or ``hyperparams_file``), RL Zoo's Atari wrapper and 4-frame stack, a CNN policy whose
    feature extractor is ``ZooNatureCNN(zoo=..., **extractor_kwargs)`` (e.g. ``lite=True``,
    ``recipe="paper"``).  ``zoo``: member files, zoo directories, manifests or ``hf://`` members."""
    n_envs, hyperparams = algo_defaults(algo, Path(hyperparams_file) if hyperparams_file else None)
    policy_kwargs = dict(hyperparams.pop("policy_kwargs", {}))
    policy_kwargs.update(
        features_extractor_class=ZooNatureCNN,
        features_extractor_kwargs=dict(zoo=zoo_paths(list(zoo)), **extractor_kwargs),
    )
    entry = dict(
        env_wrapper=["stable_baselines3.common.atari_wrappers.AtariWrapper"],
        frame_stack=4,
        policy="CnnPolicy",
        n_envs=n_envs,
        n_timesteps=n_timesteps,
        policy_kwargs=policy_kwargs,
        **hyperparams,
    )
    return {"atari": entry}
