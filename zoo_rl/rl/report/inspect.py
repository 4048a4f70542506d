"""``zoo-rl inspect``: before training, what a zoo offers a target game, in words first, then
each measure (:mod:`zoo_rl.rl.zoo.measures`) with a legend."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from zoo_rl.envs import AtariSettings
from zoo_rl.rl.zoo.extractor import (
    SCRATCH_MEMBER,
    ZooNatureCNN,
)
from zoo_rl.rl.zoo.measures import (
    LINEARITY_EVERY,
    features_of,
    health_row,
    logme_bootstrap,
    mixability,
    random_cnn,
    weight_cosines,
)
from zoo_rl.rl.zoo.members import member_name, source_nature_cnns
from zoo_rl.rl.zoo.random_play import SEED_OFFSET, random_play
from zoo_rl.rl.zoo.recipes import DEFAULT_RECIPE, RECIPES
from zoo_rl.rl.zoo.start import CLOSE_SHIFT, member_games, start_zoo


def inspect_zoo(game: str, zoo: Sequence[str | Path], settings: AtariSettings, seed: int = 0, n_envs: int = 8,
                steps: int = 1000, progress: Callable[[str], None] = lambda _: None,
                device: torch.device | str = "cpu") -> dict:  # fmt: skip
    """Everything ``zoo-rl inspect`` reports, as one JSON-ready dict: LogME of every source
    and of two random NatureCNNs (with bootstrap intervals), each model's feature health and
    CKA to every source, pairwise weight cosines, the step-0 zoo of every recipe as a run
    of seed ``seed`` would start it, and the linearity error of every source pair.
    ``progress`` is told what each stage is about to do; the networks run on ``device``."""
    space = gym.spaces.Box(0, 255, (settings.frame_stack, settings.screen_size, settings.screen_size), np.uint8)
    progress(f"playing {n_envs} random games of {game} ({steps} steps each)")
    frames, returns = random_play(game, settings, seed, n_envs, steps)
    progress(f"features, LogME and CKA of {len(zoo)} sources and 2 random networks on {len(frames)} frames")
    cnns = {member_name(p): cnn.to(device) for p, cnn in zip(zoo, source_nature_cnns(space, zoo, trainable=False),
                                                             strict=True)}  # fmt: skip
    features = {name: features_of(cnn, frames) for name, cnn in cnns.items()}
    randoms = {f"random{i}": features_of(random_cnn(space, seed + 1000 + i).to(device), frames) for i in range(2)}
    # Frames are stored step-major (all games at step 0, then step 1, ...): blocks of up to
    # 100 steps of play, at least 10 blocks.
    block_steps = max(1, min(100, steps // 10))
    scores = logme_bootstrap({**features, **randoms}, returns, block=block_steps * n_envs, seed=seed)
    health = {name: health_row(f, features) for name, f in {**features, **randoms}.items()}
    step0 = {}
    for recipe, options in RECIPES.items():
        progress(f"the zoo at step 0 with the {recipe} recipe" + (" (its start)" if options.match_channels else ""))
        torch.manual_seed(seed)  # the fresh member, as a run of this seed would draw it
        extractor = ZooNatureCNN(space, list(zoo), recipe=recipe).to(device)
        started = None
        if options.match_channels:
            started = start_zoo([extractor], game, settings, seed + SEED_OFFSET, n_envs, steps,
                                reference_prior=options.reference_prior, mixed=options.start_mixed,
                                games=member_games(extractor),
                                files=extractor.member_files)  # fmt: skip
        step0[recipe] = {**health_row(features_of(extractor, frames), features), "start": started}
        if recipe == DEFAULT_RECIPE:
            progress("linearity error of every source pair")
            linearity = mixability(extractor, frames[::LINEARITY_EVERY], len(zoo))
    return {
        "game": game,
        "frames": len(frames),
        "logme": scores,
        "features": health,
        "weight_cosine": weight_cosines(cnns),
        "step0": step0,
        "linearity": linearity,
    }


def verdict(report: dict) -> list[str]:
    """The report's first lines, in words: which source the start uses and why, and whether
    the zoo can be mixed or only chosen from."""
    start = report["step0"][DEFAULT_RECIPE]["start"]
    linearity = report["linearity"]
    if start["reference"] == SCRATCH_MEMBER:
        lines = [f"No source is close to {report['game']}: the start uses the fresh member ({start['why']}),",
                 "so a zoo run starts as scratch does and its gates can still move to a source."]  # fmt: skip
    else:
        lines = [f"The start uses {start['reference']}: {start['why']}.",
                 f"Its gates start at {start['reference_prior']:.2f} on it: the zoo starts as that source, "
                 "and training can move the gates to any member."]  # fmt: skip
    pairs = linearity["pairs"]
    if pairs:
        mixable = linearity["mixable_pairs"]
        kind = "can mix them" if len(mixable) == len(pairs) else "can mix some" if mixable else "selects, never mixes"
        lines.append(f"{len(mixable)} of {len(pairs)} source pairs are mixable (linearity error at the features "
                     f"<= {linearity['threshold']:.2f}): with this zoo Zoo-Tuning {kind}.")  # fmt: skip
        if start["reference"] != SCRATCH_MEMBER:
            partners = [other for pair in mixable for a, b in [pair.split("~")] if start["reference"] in (a, b)
                        for other in (a, b) if other != start["reference"]]  # fmt: skip
            lines.append(
                f"With --method-option start_mixed=true the gates would start at {start['reference_prior']:.2f} "
                f"shared by {' + '.join([start['reference'], *partners])}, the zoo as their weight mixture."
                if partners else
                f"start_mixed=true would change nothing: no source is mixable with {start['reference']}."
            )  # fmt: skip
    return lines


LEGEND = {
    "shift": "Domain shift (what the start uses): how far a source's mean features on the target lie from its "
    "mean features on its own game, in units of their spread on its own game. About 0.1 means the target looks "
    f"like the source's own game; a source within {CLOSE_SHIFT} is close.",
    "logme": "LogME (reported, not used to choose): how well a linear model on a model's features predicts "
    "the discounted returns of random play (log evidence per frame; higher is better). Interval: 95%, "
    "resampling stretches of play (a block bootstrap: neighbouring frames are not independent). 'first': "
    "the share of resamples in which the model ranks first. Random networks are there for scale.",
    "features": "Features (512 units after the last layer, on the target's frames): dead = the fraction of units "
    "never active; variance = mean variance of a unit across frames; CKA = linear centred kernel alignment "
    "to each source's features (1: the same up to rotation and scale, 0: unrelated). 'step-0 zoo' rows are "
    "the zoo as a run of that recipe starts, before its first update; 'unit correlation' is how well the "
    "members' units matched the reference's, per layer (1: the same units).",
    "linearity": "Linearity error (cross-task linearity): for a pair of sources after the start's matching, "
    "how far the activations of their 50/50 weight average lie from the average of their activations, per "
    "layer, relative to its size. Near 0: mixing weights mixes features, so gates can combine members (models "
    "fine-tuned from one ancestor); near 1: a mixture is a different network, so gates can only choose one.",
    "cosine": "Weight cosine: cosine of two sources' flattened weights per layer; about 0 for agents that "
    "share nothing. High values in every layer mean both are still close to a common start (the same "
    "initialisation seed, or one ancestor) and moved little from it.",
}


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=100, initial_indent="  ", subsequent_indent="  ")


def format_report(report: dict) -> str:
    """The terminal report of ``zoo-rl inspect``: a verdict in words, then each measure with its legend."""
    start = report["step0"][DEFAULT_RECIPE]["start"]
    lines = [f"{report['game']}: what the zoo offers ({report['frames']} frames of random play)", "",
             *verdict(report), ""]  # fmt: skip
    sources = [n for n in report["features"] if not n.startswith("random")]
    width = max(len(n) for n in [*report["features"], f"step-0 zoo ({DEFAULT_RECIPE})"]) + 2
    shifts = start["domain_shift"]
    lines += ["Domain shift of each source", *_wrap(LEGEND["shift"])]
    if shifts:
        for name, value in sorted(shifts.items(), key=lambda kv: kv[1]):
            mark = "  <- the start's reference" if name == start["reference"] else ""
            lines.append(f"  {name:{width}s} {value:6.2f}{mark}")
    else:
        lines.append("  no source's own game is known (no manifest.json beside the zoo): the start uses LogME's best")
    lines += ["", "LogME", *_wrap(LEGEND["logme"])]
    ranked = sorted(report["logme"].items(), key=lambda kv: -kv[1]["logme"])
    for name, s in ranked:
        interval = f"[{s['low']:8.4f}, {s['high']:8.4f}]"
        lines.append(f"  {name:{width}s} {s['logme']:8.4f}  {interval}  first {s['p_first']:.0%}")
    most_first = max(report["logme"], key=lambda n: report["logme"][n]["p_first"])
    if shifts and most_first != start["reference"]:
        lines += _wrap(f"LogME and the domain shift disagree: LogME ranks {most_first} first most often "
                       f"({report['logme'][most_first]['p_first']:.0%} of resamples), the start uses "
                       f"{start['reference']}. The start goes by the domain shift: on the games measured so far it "
                       "chose the same source on every sample of play, while LogME's ranking changed from "
                       "sample to sample (here random networks, "
                       "which know nothing of any game, rank first in "
                       f"{sum(s['p_first'] for n, s in report['logme'].items() if n.startswith('random')):.0%} "
                       "of resamples).")  # fmt: skip
    lines += ["", "Features on the target", *_wrap(LEGEND["features"]), ""]
    lines.append("  " + " " * width + "  dead  variance  " + "  ".join(f"CKA to {n}" for n in sources))
    rows = {**report["features"], **{f"step-0 zoo ({r})": h for r, h in report["step0"].items()}}
    for name, h in rows.items():
        cka = "  ".join(f"{h['cka'][n]:{len(n) + 7}.2f}" for n in sources)
        lines.append(f"  {name:{width}s}  {h['dead_units']:.2f}  {h['feature_variance']:8.2e}  {cka}")
    quality = ", ".join(f"{q:.2f}" for q in start["match_quality"])
    lines.append(f"  unit correlation of the members matched to {start['reference']}, per layer: {quality}")
    lines += ["", "Linearity error of each source pair, per layer", *_wrap(LEGEND["linearity"])]
    layers = report["linearity"]["layers"]
    pair_width = max([len(p) for p in report["linearity"]["pairs"]] + [4]) + 2
    lines.append("  " + " " * pair_width + "".join(f"{layer:>10s}" for layer in layers))
    for pair, errors in report["linearity"]["pairs"].items():
        lines.append(f"  {pair:{pair_width}s}" + "".join(f"{e:10.2f}" for e in errors))
    lines += ["", "Weight cosine of each source pair, per layer", *_wrap(LEGEND["cosine"])]
    for pair, per_layer in report["weight_cosine"].items():
        lines.append(f"  {pair:{pair_width}s}" + "".join(f"{v:+10.3f}" for v in per_layer.values()))
    return "\n".join(lines)
