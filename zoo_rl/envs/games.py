"""Atari game names: what users type (``Pong``, ``ALE/Pong-v5``, ``PongNoFrameskip-v4``)
mapped to ALE ROM ids (``pong``) and gymnasium ids (``ALE/Pong-v5``).

A multi-game agent's "game" is its games joined by ``+`` (``Pong+Breakout``): one string keeps
run names, configs and manifests as they are for one game, and :func:`game_list` splits it."""

from __future__ import annotations

import difflib
import re
from functools import cache

from zoo_rl.errors import ZooRlError


class UnknownGameError(ZooRlError, ValueError):
    """A game name that no installed ALE ROM matches, or a list of games naming one twice."""


@cache
def rom_ids() -> tuple[str, ...]:
    from ale_py import roms

    return tuple(roms.get_all_rom_ids())


def _camel(rom: str) -> str:
    return "".join(part.capitalize() for part in rom.split("_"))


def rom_id(game: str) -> str:
    """The ALE ROM id (snake case) of ``game``; raises :class:`UnknownGameError`."""
    name = game.strip()
    name = re.sub(r"^ALE/", "", name)
    name = re.sub(r"(NoFrameskip)?-v\d+$", "", name)
    name = re.sub(r"Deterministic$", "", name)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    for candidate in (snake, name.lower()):
        if candidate in rom_ids():
            return candidate
    by_camel = {_camel(r).lower(): r for r in rom_ids()}
    if name.lower() in by_camel:
        return by_camel[name.lower()]
    close = difflib.get_close_matches(snake, rom_ids(), n=3)
    hint = f"; did you mean {', '.join(_camel(c) for c in close)}?" if close else ""
    raise UnknownGameError(f"unknown Atari game {game!r}{hint}")


def game_list(game: str) -> list[str]:
    """The display names of the games in ``game``: one, or several joined by ``+``."""
    names = [_camel(rom_id(part)) for part in game.split("+")]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UnknownGameError(f"{game!r}: game(s) {', '.join(twice)} named twice")
    return names


def display_name(game: str) -> str:
    """``Pong``, ``MsPacman``, ``Pong+Breakout``: the name used in run directories, manifests and plots."""
    return "+".join(game_list(game))


def full_action_indices(game: str) -> list[int]:
    """Where each action of ``game``'s minimal action set sits in ALE's full set of 18:
    a head trained on the full set (a multi-game agent's) answers for the game's own actions
    through these rows."""
    from ale_py import Action
    from ale_py.env import AtariEnv

    return [Action.__members__[meaning].value for meaning in AtariEnv(rom_id(game)).get_action_meanings()]


def gym_id(game: str) -> str:
    """The gymnasium id of the game's v5 environment, e.g. ``ALE/Pong-v5``."""
    return f"ALE/{display_name(game)}-v5"
