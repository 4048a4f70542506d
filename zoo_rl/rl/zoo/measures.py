"""What a zoo's members are measured by, on frames of a target played by a random policy.

*LogME* (You, Liu, Wang, Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021) is the log marginal evidence per sample of a Bayesian linear regression
from a model's features to the target's discounted returns: higher means the features explain
the returns better.  Measured so far it does not rank sources reliably, so zoo-rl reports it and
chooses by the *domain shift* instead (:func:`domain_shift`).  A model's *features* are its
512-d extractor output (after the ReLU); *dead units* the fraction of units whose maximum over
the frames is <= 0; *feature variance* the mean over units of the variance across frames;
*linear CKA* (Kornblith et al. 2019) between two feature matrices with centred columns
``||A^T B||_F^2 / (||A^T A||_F ||B^T B||_F)``; the *linearity error* of two members how far
their weight average is from averaging their features (:func:`mixability`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from stable_baselines3.common.torch_layers import NatureCNN

from zoo_rl.rl.zoo.extractor import (
    CHAIN,
    ZooNatureCNN,
    fresh_nature_cnn_weights,
)
from zoo_rl.rl.zoo.own_games import feature_statistics

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
    f = features.detach().cpu().double().numpy()
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
        f64 = f.detach().cpu().double().numpy()
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
    """:func:`domain_shift` from the :func:`~zoo_rl.rl.zoo.own_games.feature_statistics` of the own game's features."""
    mean = torch.tensor(own["mean"], dtype=torch.float64)
    return float((target.double().mean(dim=0) - mean).norm() / max(own["spread"], 1e-12))


def mixable(errors: Sequence[float]) -> bool:
    """Whether a pair with these per-layer linearity errors is mixable: within
    :data:`MIXABLE_ERROR` at the features (the last layer)."""
    return errors[-1] <= MIXABLE_ERROR


def mixability(extractor: ZooNatureCNN, frames: np.ndarray, sources: int) -> dict:
    """The cross-task-linearity error (:meth:`ZooNatureCNN.linearity_errors`) of every pair of
    the first ``sources`` members as the start leaves them (matched to its reference), per
    layer, and which pairs are mixable: within :data:`MIXABLE_ERROR` at the features layer."""
    pairs = list(itertools.combinations(range(sources), 2))
    errors = extractor.linearity_errors(frames, pairs)
    names = extractor.member_names
    table = {f"{names[i]}~{names[j]}": [round(e, 4) for e in errors[i, j]] for i, j in pairs}
    return {"layers": list(CHAIN), "frames": len(frames), "threshold": MIXABLE_ERROR, "pairs": table,
            "mixable_pairs": [pair for pair, e in table.items() if mixable(e)]}  # fmt: skip
