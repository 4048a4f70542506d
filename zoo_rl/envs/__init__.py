"""Atari environments: game names, preprocessing settings and the two vector backends."""

from .factory import BACKENDS, AtariSettings, make_atari_vec_env
from .games import UnknownGameError, display_name, full_action_indices, game_list, gym_id, rom_id
from .multi_game import MultiGameVecEnv

__all__ = [
    "BACKENDS",
    "AtariSettings",
    "MultiGameVecEnv",
    "UnknownGameError",
    "display_name",
    "full_action_indices",
    "game_list",
    "gym_id",
    "make_atari_vec_env",
    "rom_id",
]
