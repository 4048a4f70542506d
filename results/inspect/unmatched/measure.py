"""Linearity errors of the family zoo as shipped: no start, so no channel matching.

Run from the repository root: ``python results/inspect/unmatched/measure.py``.
It writes ``linearity.json`` beside itself (per pair, one error per layer), the control
that showed the start's one-by-one matching undid the siblings' shared units.
"""

import itertools
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from zoo_rl.envs import AtariSettings
from zoo_rl.rl.zoo.extractor import ZooNatureCNN
from zoo_rl.rl.zoo.measures import LINEARITY_EVERY
from zoo_rl.rl.zoo.random_play import random_play

FAMILY = Path("agents/family")
MEMBERS = [
    "phoenix_ppo_s0.zip",
    "spaceinvaders_ppo_s0.zip",
    "assault_ppo_s0.zip",
    "breakout_ppo_s0.zip",
    "pong_ppo_s0.zip",
    "pong+breakout+spaceinvaders+assault+phoenix_ppo_s0.zip",
]


def main() -> None:
    torch.set_num_threads(2)
    zoo = [str(FAMILY / name) for name in MEMBERS]
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    out = {}
    for game in ["DemonAttack", "Atlantis"]:
        frames, _ = random_play(game, AtariSettings(), 0, 8, 1000)
        extractor = ZooNatureCNN(space, zoo)  # no start: members as shipped
        pairs = list(itertools.combinations(range(len(zoo)), 2))
        err = extractor.linearity_errors(frames[::LINEARITY_EVERY], pairs)
        names = extractor.member_names
        out[game] = {f"{names[i]}~{names[j]}": [round(e, 4) for e in err[i, j]] for i, j in pairs}
        for pair, errors in out[game].items():
            print(game, pair, errors)
    (Path(__file__).parent / "linearity.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
