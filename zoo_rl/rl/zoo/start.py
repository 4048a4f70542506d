"""The start of a zoo run, before its first update: choose the reference member (the source
whose features see the target as they see their own game, or the fresh member where none is
close), match every member's units to it, and start the gates on it (or, in a zoo whose
members can be mixed, on it and the sources mixable with it)."""

from __future__ import annotations

from collections.abc import Sequence

from stable_baselines3.common.base_class import BaseAlgorithm

from zoo_rl.envs import AtariSettings
from zoo_rl.errors import ConfigError
from zoo_rl.rl.zoo.extractor import (
    SCRATCH_MEMBER,
    ZooNatureCNN,
    detach_from_zoo,
    zoo_extractors,
)
from zoo_rl.rl.zoo.manifest import member_game
from zoo_rl.rl.zoo.measures import LINEARITY_EVERY, logme_of, mixable, shift_from
from zoo_rl.rl.zoo.own_games import own_game_statistics
from zoo_rl.rl.zoo.random_play import SEED_OFFSET, random_play
from zoo_rl.rl.zoo.recipes import DEFAULT_RECIPE, RECIPES

# A source is "close" to a target when its features there lie within this many spreads of its
# features on its own game.  Measured on the shipped zoo (docs/notebook.md): 0.06-0.12 for the
# source's own game, 0.46-0.55 from Phoenix to DemonAttack (where finetuning Phoenix beats
# scratch), 0.95 or more from every source to Atlantis (where none does).
CLOSE_SHIFT = 0.75
# The frames that prepare a zoo: 8 games of up to 1,000 steps, on the run's seed + SEED_OFFSET.
START_ENVS, START_STEPS = 8, 1000


def member_games(extractor: ZooNatureCNN) -> dict[str, str | None]:
    """Each member's own game, from the manifest beside its file (None: unknown, or a shell)."""
    return {name: None if file is None else member_game(file) for name, file in extractor.member_files.items()}


def choose_reference(logme_scores: dict[str, float], shifts: dict[str, float]) -> tuple[str, str]:
    """``(member, why)``: the source closest to the target by :func:`domain_shift` if one lies
    within :data:`CLOSE_SHIFT`, else the fresh member (no source is close: start as scratch);
    where no source's game is known, the best LogME score."""
    if shifts:
        closest = min(shifts, key=shifts.get)
        if shifts[closest] <= CLOSE_SHIFT or SCRATCH_MEMBER not in logme_scores:
            return closest, f"closest source (domain shift {shifts[closest]:.2f} <= {CLOSE_SHIFT})"
        return SCRATCH_MEMBER, f"no source within domain shift {CLOSE_SHIFT} ({closest}: {shifts[closest]:.2f})"
    return max(logme_scores, key=logme_scores.get), "best LogME (no source's game known)"


def start_zoo(extractors: Sequence[ZooNatureCNN], game: str, settings: AtariSettings, seed: int,
              n_envs: int = 8, steps: int = 1000, match_every: int = 25,
              reference_prior: float | None = None, mixed: bool = False, games: dict[str, str | None] | None = None,
              files: dict[str, str | None] | None = None) -> dict:  # fmt: skip
    """Prepare fresh zoo extractors (one policy's: shared, actor/critic or online/target) for
    a target: choose a reference member (:func:`choose_reference`: by the domain shift of each
    source whose own game ``games`` names, both games played by a random policy; a source's
    features on its own game are kept beside its file in ``files``, :mod:`zoo_rl.rl.zoo.own_games`),
    match every member's units to it, and start the gates with ``reference_prior`` on it (the
    rest shared equally; None: uniform).  Training can still move the gates to any member.

    ``mixed``: ``reference_prior`` is shared equally by the reference and every source whose
    linearity error with it at the features is within ``measures.MIXABLE_ERROR`` (none, in a zoo
    of independently trained agents): the zoo then starts as the weight mixture of those
    members, which computes the mixture of their features only where they are mixable.

    Why not LogME, which is also reported: on DemonAttack its ranking of the five shipped
    sources changed with the random-play sample (Phoenix first in 24% of bootstrap resamples),
    while the domain shift put Phoenix first on every sample, far ahead (docs/notebook.md).
    """
    frames, returns = random_play(game, settings, seed, n_envs, steps)
    names = extractors[0].member_names
    features = extractors[0].member_features(frames)
    scores = {name: logme_of(f, returns) for name, f in zip(names, features, strict=True)}
    shifts = {}
    for i, name in enumerate(names):
        own_game = (games or {}).get(name)
        if own_game is not None:
            measure = lambda frames, i=i: extractors[0].member_features(frames, members=[i])[0]  # noqa: E731
            own = own_game_statistics((files or {}).get(name), own_game, settings, measure)
            shifts[name] = shift_from(own, features[i])
    reference, why = choose_reference(scores, shifts)
    in_zoo = sorted(
        name for name, own_game in (games or {}).items() if own_game is not None and game in own_game.split("+")
    )
    if reference in in_zoo:
        why = f"{game} is itself in the zoo: {why}"
    index = names.index(reference)
    quality = [e.match_channels(frames[::match_every], reference=index) for e in extractors]
    starts_on, mix_errors = [reference], {}
    if mixed and reference != SCRATCH_MEMBER:
        others = [j for j, name in enumerate(names) if name not in (reference, SCRATCH_MEMBER)]
        errors = extractors[0].linearity_errors(frames[::LINEARITY_EVERY], [(index, j) for j in others])
        mix_errors = {names[j]: round(errors[index, j][-1], 4) for j in others}
        starts_on += [names[j] for j in others if mixable(errors[index, j])]
    if reference_prior is not None and len(starts_on) < len(names):
        for extractor in extractors:
            extractor.start_with([names.index(name) for name in starts_on], reference_prior)
    return {"frames": len(frames), "seed": seed, "logme": scores, "domain_shift": shifts, "reference": reference,
            "why": why, "reference_prior": reference_prior, "starts_on": starts_on, "mix_errors": mix_errors,
            "match_quality": quality[0], "target_in_zoo": in_zoo}  # fmt: skip


def prepare_zoo(model: BaseAlgorithm, game: str, seed: int = 0, settings: AtariSettings | None = None,
                reference_prior: float | None = RECIPES[DEFAULT_RECIPE].reference_prior,
                mixed: bool = RECIPES[DEFAULT_RECIPE].start_mixed, steps: int = START_STEPS) -> dict:  # fmt: skip
    """Give the fresh zoo extractors of an SB3 model the start ``zoo-rl transfer`` gives them
    (:func:`start_zoo` on ``steps`` steps of random play in 8 games of ``game``, seeded apart
    from training), and return what it chose; the model's weights hold its zoo from then on, so
    ``model.save`` makes a file that loads without the zoo (:func:`detach_from_zoo`).  Call it
    after building the model, before ``learn``: a ``ZooNatureCNN`` that skips it starts from
    uniform gates over unmatched members, which on DemonAttack trained no better than scratch
    (docs/results.md).  ``reference_prior`` and ``mixed``: as in :func:`start_zoo`.
    ``settings``: the target env's preprocessing (default: ``AtariSettings()``, as
    ``make_atari_vec_env`` builds it)."""
    extractors = zoo_extractors(model)
    if not extractors:
        raise ConfigError(f"prepare_zoo: the {type(model).__name__} policy has no ZooNatureCNN features extractor")
    detach_from_zoo(model)
    # The start's statistics are float64 numpy work on a few thousand frames: run it on the CPU
    # whatever the model trains on (module.to keeps the parameter objects the optimizer holds).
    device = model.device
    for extractor in extractors:
        extractor.cpu()
    try:
        return start_zoo(extractors, game, settings or AtariSettings(), seed + SEED_OFFSET, n_envs=START_ENVS,
                         steps=steps, reference_prior=reference_prior, mixed=mixed,
                         games=member_games(extractors[0]), files=extractors[0].member_files)  # fmt: skip
    finally:
        for extractor in extractors:
            extractor.to(device)
