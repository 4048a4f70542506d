"""Each source's features on its own game, measured once per zoo and kept beside it.

The start compares how a source sees the target with how it sees its own game (the domain
shift).  The second half depends on the source alone, so it is measured once, on random play
of the source's game with a fixed seed, and kept in ``own_games.json`` beside the member's
file: the mean of its 512 features and their spread.  Entries are keyed by the member's
sha256, its game and the preprocessing settings, so that a changed file or other settings are
measured afresh.  A folder that cannot be written (a read-only zoo) is measured every time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from zoo_rl.envs import AtariSettings, game_list
from zoo_rl.io_utils import atomic_write_text
from zoo_rl.rl.zoo.members import sha256
from zoo_rl.rl.zoo.random_play import SEED_OFFSET, random_play

CACHE_NAME = "own_games.json"
OWN_GAME_SEED = SEED_OFFSET  # the seed seed 0's start plays the target on
OWN_GAME_ENVS, OWN_GAME_STEPS, OWN_GAME_EVERY = 8, 1000, 4  # every 4th frame is enough for a mean


def feature_statistics(features: torch.Tensor) -> dict:
    """The mean feature and the spread (root of the summed per-unit variance) of ``features``."""
    f = features.double()
    return {"mean": f.mean(dim=0).tolist(), "spread": float(f.var(dim=0).sum().sqrt()), "frames": len(f)}


def own_game_statistics(member: str | Path | None, game: str, settings: AtariSettings,
                        measure: Callable[[np.ndarray], torch.Tensor]) -> dict:  # fmt: skip
    """:func:`feature_statistics` of a member on random play of ``game``, its own game, from
    the cache beside ``member``'s file where there is one; ``measure`` maps frames to the
    member's features.  ``member`` None: measured, not cached."""
    key = None if member is None else cache_key(Path(member), game, settings)
    cache = Path(member).parent / CACHE_NAME if member is not None else None
    if key is not None and cache.is_file():
        try:
            entry = json.loads(cache.read_text()).get(key)
        except (OSError, json.JSONDecodeError, AttributeError):
            entry = None  # an unreadable cache is measured afresh and rewritten
        if isinstance(entry, dict) and {"mean", "spread"} <= set(entry):
            return entry
    games = game_list(game)  # a multi-game agent's own game is all of its games, in equal shares
    steps = OWN_GAME_STEPS // len(games)
    frames = np.concatenate([random_play(g, settings, OWN_GAME_SEED, OWN_GAME_ENVS, steps, every=OWN_GAME_EVERY)[0]
                             for g in games])  # fmt: skip
    entry = {"game": game, **feature_statistics(measure(frames))}
    if key is not None:
        store(cache, key, entry)
    return entry


def cache_key(member: Path, game: str, settings: AtariSettings) -> str:
    digest = hashlib.sha256(json.dumps(settings.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    return f"{sha256(member)}:{game}:{digest}"


def store(cache: Path, key: str, entry: dict) -> None:
    """Add ``entry`` under ``key``; runs starting at once take turns (a lock file); a folder that
    cannot be written keeps no cache."""
    try:
        with open(cache.with_name(f".{CACHE_NAME}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = json.loads(cache.read_text()) if cache.is_file() else {}
            except json.JSONDecodeError:
                entries = {}
            entries = entries if isinstance(entries, dict) else {}
            entries[key] = entry
            atomic_write_text(cache, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    except OSError:
        return
