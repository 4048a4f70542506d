"""Atari game names: what users type (``Pong``, ``ALE/Pong-v5``, ``PongNoFrameskip-v4``)
mapped to ALE ROM ids (``pong``) and gymnasium ids (``ALE/Pong-v5``)."""

from __future__ import annotations

import difflib
import re
from functools import cache

from zoo_rl.errors import ZooRlError


class UnknownGameError(ZooRlError, ValueError):
    """A game name that no installed ALE ROM matches."""


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


def display_name(game: str) -> str:
    """``Pong``, ``MsPacman``: the name used in run directories, manifests and plots."""
    return _camel(rom_id(game))


def gym_id(game: str) -> str:
    """The gymnasium id of the game's v5 environment, e.g. ``ALE/Pong-v5``."""
    return f"ALE/{display_name(game)}-v5"
