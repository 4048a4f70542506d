"""Atari environments: game names, preprocessing settings and the two vector backends."""

from .factory import BACKENDS, AtariSettings, make_atari_vec_env
from .games import UnknownGameError, display_name, gym_id, rom_id

__all__ = ["BACKENDS", "AtariSettings", "UnknownGameError", "display_name", "gym_id", "make_atari_vec_env", "rom_id"]
