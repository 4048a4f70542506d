"""Train zoo extractors with RL Baselines3 Zoo (``python -m rl_zoo3.train``).

RL Zoo takes its hyperparameters from a Python file passed as ``--conf-file`` (a module-level
``hyperparams`` dict, keyed by env id or ``"atari"``).  :func:`rl_zoo_hyperparams` builds that
dict from the same ``configs/algos.yaml`` zoo-rl trains with (themselves RL Zoo's Atari
hyperparameters), with :class:`ZooNatureCNN` as the policy's feature extractor, so an RL Zoo user
keeps the RL Zoo workflow (logs folder, ``rl_zoo3.enjoy``, Optuna, Hub upload) and gains the zoo.

With the default recipe the hyperparams also name :class:`ZooStart`, a callback that gives the
fresh model the start ``zoo-rl transfer`` gives a run (``zoo_rl.rl.prepare_zoo``: the reference
member chosen on the target's frames, every member matched to it, the gates started on it): without
it the zoo starts from uniform gates over unmatched members, which on DemonAttack trained no better
than scratch (docs/recipes.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from zoo_rl.envs import AtariSettings
from zoo_rl.errors import ConfigError
from zoo_rl.rl.config import algo_defaults
from zoo_rl.rl.zoo.extractor import ZooNatureCNN
from zoo_rl.rl.zoo.manifest import zoo_paths
from zoo_rl.rl.zoo.recipes import DEFAULT_RECIPE, RECIPES, Recipe, recipe
from zoo_rl.rl.zoo.start import START_STEPS, prepare_zoo


def rl_zoo_hyperparams(
    algo: str = "ppo",
    zoo: Sequence[str] = ("agents",),
    *,
    n_timesteps: int = 10_000_000,
    hyperparams_file: str | Path | None = None,
    start_steps: int = START_STEPS,
    **extractor_kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """RL Zoo's ``hyperparams`` for Atari games: ``algo``'s entry of ``configs/algos.yaml``
    (or ``hyperparams_file``), RL Zoo's Atari wrapper and 4-frame stack, a CNN policy whose
    feature extractor is ``ZooNatureCNN(zoo=..., **extractor_kwargs)`` (e.g. ``lite=True``,
    ``recipe="paper"``), and, where the recipe starts its zoo (the default), the :class:`ZooStart`
    callback on ``start_steps`` steps of random play in 8 games (0: no start).  ``zoo``: member
    files, zoo directories, manifests or ``hf://`` members."""
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
    chosen = extractor_kwargs.get("recipe", DEFAULT_RECIPE)
    chosen = chosen if isinstance(chosen, Recipe) else recipe(chosen)
    if chosen.match_channels and start_steps > 0:
        start = {"steps": start_steps, "reference_prior": chosen.reference_prior, "mixed": chosen.start_mixed}
        entry["callback"] = [{f"{__name__}.{ZooStart.__name__}": start}]
    return {"atari": entry}


DEFAULT_START = RECIPES[DEFAULT_RECIPE]


class ZooStart(BaseCallback):
    """Before the first update of a fresh model, give its zoo extractors the start of
    ``zoo-rl transfer`` (:func:`zoo_rl.rl.prepare_zoo`) on the training env's game, seeded by
    the model's seed.  A model that has trained before (its optimizer holds state: RL Zoo's
    ``--trained-agent``) is left as it is: its zoo started when it was fresh.  What the start
    chose is in ``self.start`` (None when skipped).  ``game`` and ``settings``: the target, when
    the training env is not a gymnasium env that says its id (RL Zoo's always do)."""

    def __init__(self, steps: int = START_STEPS, reference_prior: float | None = DEFAULT_START.reference_prior,
                 mixed: bool = DEFAULT_START.start_mixed, game: str | None = None,
                 settings: AtariSettings | None = None, verbose: int = 0):  # fmt: skip
        super().__init__(verbose)
        self.steps, self.reference_prior, self.mixed = steps, reference_prior, mixed
        self.game, self.settings = game, settings
        self.start: dict | None = None

    def _on_training_start(self) -> None:
        if self.model.policy.optimizer.state:
            return
        game, settings = self.game, self.settings
        if game is None:
            try:
                spec = self.training_env.get_attr("spec", indices=0)[0]
            except AttributeError as e:
                raise ConfigError(f"ZooStart: the training env does not give its game id ({e}); pass game=...") from e
            game = spec.id
            # The emulator's sticky actions as the env id sets them (RL Zoo's NoFrameskip-v4: none).
            sticky = float(spec.kwargs.get("repeat_action_probability", 0.25))
            settings = settings or AtariSettings(sticky_actions=sticky)
        self.start = prepare_zoo(self.model, game, self.model.seed or 0, settings,
                                 reference_prior=self.reference_prior, mixed=self.mixed, steps=self.steps)  # fmt: skip
        print(f"zoo start on {game}: reference {self.start['reference']} ({self.start['why']})")

    def _on_step(self) -> bool:
        return True
