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

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN

from zoo_rl.envs import AtariSettings, make_atari_vec_env
from zoo_rl.errors import ConfigError
from zoo_rl.rl.extractor import SCRATCH_MEMBER, ZooNatureCNN, fresh_nature_cnn_weights, zoo_extractors
from zoo_rl.rl.recipes import DEFAULT_RECIPE, RECIPES
from zoo_rl.rl.zoo_files import member_name, source_nature_cnns

GAMMA = 0.99
# A source is "close" to a target when its features there lie within this many spreads of its
# features on its own game.  Measured on the shipped zoo (docs/results.md): 0.06-0.12 for the
# source's own game, 0.46-0.55 from Phoenix to DemonAttack (where finetuning Phoenix beats
# scratch), 0.95 or more from every source to Atlantis (where none does).
CLOSE_SHIFT = 0.75
OWN_GAME_EVERY = 4  # a source's own game: every 4th frame of the same random play is enough for a mean
# The frames that prepare a zoo are played on seeds apart from training's and evaluation's:
# 8 games of up to 1,000 steps.
START_SEED_OFFSET = 20_000
START_ENVS, START_STEPS = 8, 1000


def target_frames(game: str, settings: AtariSettings, seed: int, n_envs: int = 8, steps: int = 600,
                  every: int = 15) -> np.ndarray:  # fmt: skip
    """``n_envs * steps / every`` stacked frames (uint8) of a uniformly random policy."""
    return random_play(game, settings, seed, n_envs, steps, every)[0]


def random_play(game: str, settings: AtariSettings, seed: int, n_envs: int, steps: int,
                every: int = 1) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Frames of a uniformly random policy in the training env (clipped rewards, a lost life
    ends an episode) and their discounted returns, shape (steps // every, n_envs, ...)."""
    env = make_atari_vec_env(game, n_envs, seed, settings, training=True)
    rng = np.random.default_rng(seed)
    frames, rewards, dones = [], [], []
    try:
        obs = env.reset()
        for _ in range(steps):
            frames.append(obs)
            obs, reward, done, _ = env.step(rng.integers(env.action_space.n, size=n_envs))
            rewards.append(reward)
            dones.append(done)
    finally:
        env.close()
    returns = np.zeros((steps, n_envs), dtype=np.float64)
    running = np.zeros(n_envs)
    for t in range(steps - 1, -1, -1):
        running = rewards[t] + GAMMA * running * (1.0 - dones[t])
        returns[t] = running
    kept = slice(every - 1, None, every)
    return np.stack(frames)[kept].reshape(-1, *frames[0].shape[1:]), returns[kept].reshape(-1)


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
                    resamples: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:  # fmt: skip
    """LogME of each model's features, with a 95% interval and the share of resamples where
    it ranks first, from a bootstrap over contiguous blocks of ``block`` samples (frames of
    one stretch of play are not independent)."""
    n = len(returns)
    blocks = [slice(i, min(i + block, n)) for i in range(0, n, block)]
    stats = {}
    for name, f in features.items():
        f64 = f.double().numpy()
        stats[name] = [(f64[b].T @ f64[b], f64[b].T @ returns[b], float(returns[b] @ returns[b]), len(returns[b]))
                       for b in blocks]  # fmt: skip
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in features}
    for _ in range(resamples):
        picks = rng.integers(len(blocks), size=len(blocks))
        for name, per_block in stats.items():
            gram, fy, yy, count = (sum(per_block[i][k] for i in picks) for k in range(4))
            draws[name].append(logme(gram, fy, yy, count))
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
    x = torch.as_tensor(frames)
    return torch.cat([module(x[i : i + batch].float() / 255.0) for i in range(0, len(x), batch)])


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
    own, target = own.double(), target.double()
    spread = own.var(dim=0).sum().sqrt().clamp_min(1e-12)
    return float((target.mean(dim=0) - own.mean(dim=0)).norm() / spread)


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
              reference_prior: float | None = None, games: dict[str, str | None] | None = None) -> dict:  # fmt: skip
    """Prepare fresh zoo extractors (one policy's: shared, actor/critic or online/target) for
    a target: choose a reference member (:func:`choose_reference`: by the domain shift of each
    source whose own game ``games`` names, both games played by a random policy), match every
    member's units to it, and start the gates with ``reference_prior`` on it (the rest shared
    equally; None: uniform).  Training can still move the gates to any member.

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
            own_frames = random_play(own_game, settings, seed, n_envs, steps, every=OWN_GAME_EVERY)[0]
            shifts[name] = domain_shift(extractors[0].member_features(own_frames, members=[i])[0], features[i])
    reference, why = choose_reference(scores, shifts)
    quality = [e.match_channels(frames[::match_every], reference=names.index(reference)) for e in extractors]
    if reference_prior is not None:
        for extractor in extractors:
            extractor.start_with(names.index(reference), reference_prior)
    return {"frames": len(frames), "seed": seed, "logme": scores, "domain_shift": shifts, "reference": reference,
            "why": why, "reference_prior": reference_prior, "match_quality": quality[0]}  # fmt: skip


def prepare_zoo(model: BaseAlgorithm, game: str, seed: int = 0, settings: AtariSettings | None = None,
                reference_prior: float | None = RECIPES[DEFAULT_RECIPE]["reference_prior"],
                steps: int = START_STEPS) -> dict:  # fmt: skip
    """Give the fresh zoo extractors of an SB3 model the start ``zoo-rl transfer`` gives them
    (:func:`start_zoo` on ``steps`` steps of random play in 8 games of ``game``, seeded apart
    from training), and return what it chose.  Call it after building the model, before
    ``learn``: a ``ZooNatureCNN`` that skips it starts from uniform gates over unmatched
    members, which on DemonAttack trained no better than scratch (docs/results.md, section 3).
    ``settings``: the target env's preprocessing (default: ``AtariSettings()``, as
    ``make_atari_vec_env`` builds it)."""
    extractors = zoo_extractors(model)
    if not extractors:
        raise ConfigError(f"prepare_zoo: the {type(model).__name__} policy has no ZooNatureCNN features extractor")
    return start_zoo(extractors, game, settings or AtariSettings(), seed + START_SEED_OFFSET, n_envs=START_ENVS,
                     steps=steps, reference_prior=reference_prior, games=extractors[0].member_games)  # fmt: skip


def inspect_zoo(game: str, zoo: Sequence[str | Path], settings: AtariSettings, seed: int = 0,
                n_envs: int = 8, steps: int = 1000) -> dict:  # fmt: skip
    """Everything ``zoo-rl inspect`` reports, as one JSON-ready dict: LogME of every source
    and of two random NatureCNNs (with bootstrap intervals), each model's feature health and
    CKA to every source, pairwise weight cosines, and the step-0 zoo of every recipe as a run
    of seed ``seed`` would start it."""
    space = gym.spaces.Box(0, 255, (settings.frame_stack, settings.screen_size, settings.screen_size), np.uint8)
    frames, returns = random_play(game, settings, seed, n_envs, steps)
    cnns = {member_name(p): cnn for p, cnn in zip(zoo, source_nature_cnns(space, zoo, trainable=False), strict=True)}
    features = {name: features_of(cnn, frames) for name, cnn in cnns.items()}
    randoms = {f"random{i}": features_of(random_cnn(space, seed + 1000 + i), frames) for i in range(2)}
    # Frames are stored step-major (all games at step 0, then step 1, ...): blocks of up to
    # 100 steps of play, at least 10 blocks.
    block_steps = max(1, min(100, steps // 10))
    scores = logme_bootstrap({**features, **randoms}, returns, block=block_steps * n_envs, seed=seed)
    health = {name: health_row(f, features) for name, f in {**features, **randoms}.items()}
    step0 = {}
    for recipe, options in RECIPES.items():
        torch.manual_seed(seed)  # the fresh member, as a run of this seed would draw it
        extractor = ZooNatureCNN(space, list(zoo), recipe=recipe)
        started = None
        if options["match_channels"]:
            started = start_zoo([extractor], game, settings, seed + START_SEED_OFFSET, n_envs, steps,
                                reference_prior=options["reference_prior"], games=extractor.member_games)  # fmt: skip
        step0[recipe] = {**health_row(features_of(extractor, frames), features), "start": started}
    return {
        "game": game,
        "frames": len(frames),
        "logme": scores,
        "features": health,
        "weight_cosine": weight_cosines(cnns),
        "step0": step0,
    }


def format_report(report: dict) -> str:
    """The terminal tables of ``zoo-rl inspect``."""
    lines = [f"{report['game']}: {report['frames']} frames of random play", "",
             "transferability (LogME per sample, higher is better; 95% block-bootstrap interval; "
             "share of resamples ranked first)"]  # fmt: skip
    for name, s in sorted(report["logme"].items(), key=lambda kv: -kv[1]["logme"]):
        lines.append(f"  {name:24s} {s['logme']:8.4f}  [{s['low']:8.4f}, {s['high']:8.4f}]  first {s['p_first']:.0%}")
    sources = [n for n in report["features"] if not n.startswith("random")]
    lines += ["", "features (dead units, variance, linear CKA to each source)",
              "  " + " " * 24 + "  dead   variance  " + "  ".join(f"{n[:10]:>10s}" for n in sources)]  # fmt: skip
    rows = {**report["features"], **{f"step-0 zoo ({r})": h for r, h in report["step0"].items()}}
    for name, h in rows.items():
        cka = "  ".join(f"{h['cka'][n]:10.2f}" for n in sources)
        lines.append(f"  {name:24s}  {h['dead_units']:.2f}  {h['feature_variance']:9.2e}  {cka}")
    for recipe, h in report["step0"].items():
        if h["start"]:
            quality = ", ".join(f"{q:.2f}" for q in h["start"]["match_quality"])
            lines.append(f"  {recipe}: members matched to {h['start']['reference']}, {h['start']['why']} "
                         f"(unit correlation {quality})")  # fmt: skip
            shifts = h["start"]["domain_shift"]
            if shifts:
                lines.append(
                    "    domain shift of each source (its features on the target against on its own game; "
                    "~0.1: the same game): " + ", ".join(f"{n} {v:.2f}" for n, v in sorted(shifts.items()))
                )
    lines += ["", "weight cosine of each pair (per layer)"]
    for pair, per_layer in report["weight_cosine"].items():
        lines.append(f"  {pair:48s} " + "  ".join(f"{k} {v:+.3f}" for k, v in per_layer.items()))
    return "\n".join(lines)
