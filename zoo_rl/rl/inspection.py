"""Before training: what a zoo offers a target game.

Measured on frames of the target (a random policy's), with the definitions of the project's
transfer diagnosis.  *LogME* (You, Liu, Wang, Long, "LogME: Practical Assessment of
Pre-trained Models for Transfer Learning", ICML 2021) is the log marginal evidence per sample
of a Bayesian linear regression from a model's features to the target's discounted returns:
higher means the features explain the returns better.  Measured so far it does not rank
sources reliably, so zoo-rl uses it only softly (which member the others are matched to).
Other definitions: a model's *features* are its 512-d extractor output (after the ReLU);
*dead units* the fraction of units whose maximum over the frames is <= 0; *feature variance*
the mean over units of the variance across frames; *linear CKA* (Kornblith et al. 2019)
between two feature matrices with centred columns ``||A^T B||_F^2 / (||A^T A||_F ||B^T B||_F)``.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN

from zoo_rl.envs import AtariSettings
from zoo_rl.errors import ConfigError
from zoo_rl.rl.extractor import (
    CHAIN,
    SCRATCH_MEMBER,
    ZooNatureCNN,
    detach_from_zoo,
    fresh_nature_cnn_weights,
    zoo_extractors,
)
from zoo_rl.rl.own_games import feature_statistics, own_game_statistics
from zoo_rl.rl.random_play import random_play
from zoo_rl.rl.recipes import DEFAULT_RECIPE, RECIPES
from zoo_rl.rl.zoo_files import member_name, source_nature_cnns

# A source is "close" to a target when its features there lie within this many spreads of its
# features on its own game.  Measured on the shipped zoo (docs/results.md): 0.06-0.12 for the
# source's own game, 0.46-0.55 from Phoenix to DemonAttack (where finetuning Phoenix beats
# scratch), 0.95 or more from every source to Atlantis (where none does).
CLOSE_SHIFT = 0.75
# The frames that prepare a zoo are played on seeds apart from training's and evaluation's:
# 8 games of up to 1,000 steps.
START_SEED_OFFSET = 20_000
START_ENVS, START_STEPS = 8, 1000
# Two members are mixable when the features of their 50/50 weight mixture lie within this
# fraction of the 50/50 mixture of their features.  Between the 0.08-0.24 measured for two
# fine-tunes of one Phoenix agent and the 0.59-0.88 of the shipped zoo's independently trained
# agents after matching (docs/results.md).
MIXABLE_ERROR = 0.3
LINEARITY_EVERY = 8  # every 8th frame of the target's random play: 1,000 frames of 8 games


def logme(gram: np.ndarray, fy: np.ndarray, yy: float, n: int) -> float:
    """LogME per sample from sufficient statistics of features F (n x d) and targets y:
    ``gram = F^T F``, ``fy = F^T y``, ``yy = y^T y`` (so a bootstrap only sums block statistics).

    The evidence maximisation of You et al. (2021), in the eigenbasis of F^T F, with t = alpha/beta.
    """
    s2, v = np.linalg.eigh(gram)
    s2 = np.clip(s2, 0.0, None)
    proj = v.T @ fy
    live = s2 > 1e-10 * max(s2.max(), 1e-30)
    z2 = np.where(live, proj**2 / np.where(live, s2, 1.0), 0.0)
    outside = max(yy - z2.sum(), 0.0)
    d = len(s2)
    alpha, beta = 1.0, 1.0
    for _ in range(100):
        t = alpha / beta
        gamma = (s2 / (s2 + t)).sum()
        m2 = (s2 * z2 / (s2 + t) ** 2).sum()
        res2 = (z2 * (t / (s2 + t)) ** 2).sum() + outside
        alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
        if abs(alpha / beta - t) / t < 1e-3:
            break
    t = alpha / beta
    m2 = (s2 * z2 / (s2 + t) ** 2).sum()
    res2 = (z2 * (t / (s2 + t)) ** 2).sum() + outside
    evidence = (
        d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
        - beta / 2 * res2 - alpha / 2 * m2 - 0.5 * np.log(alpha + beta * s2).sum()
    )  # fmt: skip
    return float(evidence / n)


def logme_of(features: torch.Tensor, returns: np.ndarray) -> float:
    """LogME per sample of ``features`` (n x d) for the targets ``returns`` (n)."""
    f = features.double().numpy()
    return logme(f.T @ f, f.T @ returns, float(returns @ returns), len(returns))


def logme_bootstrap(features: dict[str, torch.Tensor], returns: np.ndarray, block: int,
                    resamples: int = 50, seed: int = 0) -> dict[str, dict[str, float]]:  # fmt: skip
    """LogME of each model's features, with a 95% interval and the share of resamples where
    it ranks first, from a bootstrap over contiguous blocks of ``block`` samples (frames of
    one stretch of play are not independent)."""
    n = len(returns)
    blocks = [slice(i, min(i + block, n)) for i in range(0, n, block)]
    sizes = np.array([b.stop - b.start for b in blocks], dtype=np.float64)
    yy = np.array([returns[b] @ returns[b] for b in blocks])
    stats = {}
    for name, f in features.items():
        f64 = f.double().numpy()
        grams = np.stack([f64[b].T @ f64[b] for b in blocks])
        stats[name] = (
            grams.reshape(len(blocks), -1),
            np.stack([f64[b].T @ returns[b] for b in blocks]),
            grams.shape[1:],
        )
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in features}
    for _ in range(resamples):
        # a resample's statistics are its blocks' summed: each block weighted by how often it was drawn
        times = np.bincount(rng.integers(len(blocks), size=len(blocks)), minlength=len(blocks)).astype(np.float64)
        for name, (grams, fys, shape) in stats.items():
            gram = (times @ grams).reshape(shape)
            draws[name].append(logme(gram, times @ fys, float(times @ yy), int(times @ sizes)))
    table = np.array([draws[name] for name in features])
    first = np.bincount(table.argmax(axis=0), minlength=len(features)) / resamples
    out = {}
    for (name, f), row, p_first in zip(features.items(), table, first, strict=True):
        low, high = np.percentile(row, [2.5, 97.5])
        out[name] = {"logme": logme_of(f, returns), "low": float(low), "high": float(high), "p_first": float(p_first)}
    return out


def linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a - a.mean(0)
    b = b - b.mean(0)
    cross = (a.T @ b).pow(2).sum()
    denominator = (a.T @ a).norm() * (b.T @ b).norm()
    return float(cross / denominator) if denominator > 0 else 0.0


def feature_health(features: torch.Tensor) -> dict[str, float]:
    return {
        "dead_units": float((features.max(dim=0).values <= 0).float().mean()),
        "feature_variance": float(features.var(dim=0).mean()),
    }


@torch.no_grad()
def features_of(module: torch.nn.Module, frames: np.ndarray, batch: int = 64) -> torch.Tensor:
    module.eval()
    device = next(module.parameters()).device
    x = torch.as_tensor(frames)
    return torch.cat([module(x[i : i + batch].to(device).float() / 255.0).cpu() for i in range(0, len(x), batch)])


def random_cnn(space, seed: int) -> NatureCNN:
    torch.manual_seed(seed)
    cnn = NatureCNN(space, features_dim=512)
    cnn.load_state_dict(fresh_nature_cnn_weights(space, 512, False))
    return cnn


def weight_cosines(cnns: dict[str, NatureCNN]) -> dict[str, dict[str, float]]:
    """Cosine similarity of the flattened weights of every pair, per layer."""
    names = list(cnns)
    out: dict[str, dict[str, float]] = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            sa, sb = cnns[a].state_dict(), cnns[b].state_dict()
            out[f"{a}~{b}"] = {
                key.rsplit(".", 1)[0]: float(torch.cosine_similarity(sa[key].flatten(), sb[key].flatten(), dim=0))
                for key in sa
                if key.endswith("weight")
            }
    return out


def health_row(features: torch.Tensor, sources: dict[str, torch.Tensor]) -> dict:
    """One row of the report's feature table: dead units, variance and CKA to each source's
    features, all on the same frames (dead units depend on how many frames are seen)."""
    return {**feature_health(features), "cka": {name: linear_cka(features, f) for name, f in sources.items()}}


def domain_shift(own: torch.Tensor, target: torch.Tensor) -> float:
    """How far a model's mean feature on the target's frames lies from its mean feature on its
    own game's, in units of its own game's feature spread (the root of the summed per-unit
    variance): about 0.1 for two samples of the same game.  A source that sees the target as
    it sees its own game has learned features that apply there (the domain-similarity idea
    of Cui et al., "Large Scale Fine-Grained Categorization and Domain-Specific Transfer
    Learning", CVPR 2018, with a scale-free distance instead of their EMD)."""
    return shift_from(feature_statistics(own), target)


def shift_from(own: dict, target: torch.Tensor) -> float:
    """:func:`domain_shift` from the :func:`~zoo_rl.rl.own_games.feature_statistics` of the own game's features."""
    mean = torch.tensor(own["mean"], dtype=torch.float64)
    return float((target.double().mean(dim=0) - mean).norm() / max(own["spread"], 1e-12))


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
              reference_prior: float | None = None, games: dict[str, str | None] | None = None,
              files: dict[str, str | None] | None = None) -> dict:  # fmt: skip
    """Prepare fresh zoo extractors (one policy's: shared, actor/critic or online/target) for
    a target: choose a reference member (:func:`choose_reference`: by the domain shift of each
    source whose own game ``games`` names, both games played by a random policy; a source's
    features on its own game are kept beside its file in ``files``, :mod:`zoo_rl.rl.own_games`),
    match every member's units to it, and start the gates with ``reference_prior`` on it (the
    rest shared equally; None: uniform).  Training can still move the gates to any member.

    Why not LogME, which is also reported: on DemonAttack its ranking of the five shipped
    sources changed with the random-play sample (Phoenix first in 24% of bootstrap resamples),
    while the domain shift put Phoenix first on every sample, far ahead (docs/results.md).
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
    quality = [e.match_channels(frames[::match_every], reference=names.index(reference)) for e in extractors]
    if reference_prior is not None:
        for extractor in extractors:
            extractor.start_with(names.index(reference), reference_prior)
    return {"frames": len(frames), "seed": seed, "logme": scores, "domain_shift": shifts, "reference": reference,
            "why": why, "reference_prior": reference_prior, "match_quality": quality[0],
            "target_in_zoo": in_zoo}  # fmt: skip


def prepare_zoo(model: BaseAlgorithm, game: str, seed: int = 0, settings: AtariSettings | None = None,
                reference_prior: float | None = RECIPES[DEFAULT_RECIPE]["reference_prior"],
                steps: int = START_STEPS) -> dict:  # fmt: skip
    """Give the fresh zoo extractors of an SB3 model the start ``zoo-rl transfer`` gives them
    (:func:`start_zoo` on ``steps`` steps of random play in 8 games of ``game``, seeded apart
    from training), and return what it chose; the model's weights hold its zoo from then on, so
    ``model.save`` makes a file that loads without the zoo (:func:`detach_from_zoo`).  Call it
    after building the model, before ``learn``: a ``ZooNatureCNN`` that skips it starts from
    uniform gates over unmatched members, which on DemonAttack trained no better than scratch
    (docs/results.md).
    ``settings``: the target env's preprocessing (default: ``AtariSettings()``, as
    ``make_atari_vec_env`` builds it)."""
    extractors = zoo_extractors(model)
    if not extractors:
        raise ConfigError(f"prepare_zoo: the {type(model).__name__} policy has no ZooNatureCNN features extractor")
    detach_from_zoo(model)
    return start_zoo(extractors, game, settings or AtariSettings(), seed + START_SEED_OFFSET, n_envs=START_ENVS,
                     steps=steps, reference_prior=reference_prior, games=extractors[0].member_games,
                     files=extractors[0].member_files)  # fmt: skip


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
        progress(f"the zoo at step 0 with the {recipe} recipe" + (" (its start)" if options["match_channels"] else ""))
        torch.manual_seed(seed)  # the fresh member, as a run of this seed would draw it
        extractor = ZooNatureCNN(space, list(zoo), recipe=recipe).to(device)
        started = None
        if options["match_channels"]:
            started = start_zoo([extractor], game, settings, seed + START_SEED_OFFSET, n_envs, steps,
                                reference_prior=options["reference_prior"], games=extractor.member_games,
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


def mixability(extractor: ZooNatureCNN, frames: np.ndarray, sources: int) -> dict:
    """The cross-task-linearity error (:meth:`ZooNatureCNN.linearity_errors`) of every pair of
    the first ``sources`` members as the start leaves them (matched to its reference), per
    layer, and which pairs are mixable: within :data:`MIXABLE_ERROR` at the features layer."""
    pairs = list(itertools.combinations(range(sources), 2))
    errors = extractor.linearity_errors(frames, pairs)
    names = extractor.member_names
    table = {f"{names[i]}~{names[j]}": [round(e, 4) for e in errors[i, j]] for i, j in pairs}
    return {"layers": list(CHAIN), "frames": len(frames), "threshold": MIXABLE_ERROR, "pairs": table,
            "mixable_pairs": [pair for pair, e in table.items() if e[-1] <= MIXABLE_ERROR]}  # fmt: skip


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
