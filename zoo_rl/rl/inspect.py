"""Before training: what a zoo offers a target game.

Measured on frames of the target (a random policy's), with the definitions of the project's
transfer diagnosis: a model's *features* are its 512-d extractor output (after the ReLU);
*dead units* the fraction of units whose maximum over the frames is <= 0; *feature variance*
the mean over units of the variance across frames; *linear CKA* (Kornblith et al. 2019)
between two feature matrices with centred columns ``||A^T B||_F^2 / (||A^T A||_F ||B^T B||_F)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.torch_layers import NatureCNN

from zoo_rl.envs import AtariSettings, make_atari_vec_env
from zoo_rl.rl.extractor import ZooNatureCNN, fresh_nature_cnn_weights
from zoo_rl.rl.zoo_files import nature_cnn_weights


def target_frames(game: str, settings: AtariSettings, seed: int, n_envs: int = 8, steps: int = 600,
                  every: int = 15) -> np.ndarray:  # fmt: skip
    """``n_envs * steps / every`` stacked frames (uint8) of a uniformly random policy."""
    env = make_atari_vec_env(game, n_envs, seed, settings, training=True)
    rng = np.random.default_rng(seed)
    try:
        obs = env.reset()
        kept = []
        for step in range(1, steps + 1):
            obs, *_ = env.step(rng.integers(env.action_space.n, size=n_envs))
            if step % every == 0:
                kept.append(obs.copy())
    finally:
        env.close()
    return np.concatenate(kept)


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


def source_cnns(zoo: Sequence[str | Path], space) -> dict[str, NatureCNN]:
    cnns = {}
    for path in zoo:
        cnn = NatureCNN(space, features_dim=512)
        cnn.load_state_dict(nature_cnn_weights(path, in_channels=space.shape[0]))
        cnns[Path(path).stem] = cnn
    return cnns


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
                key.rsplit(".", 1)[0]: float(torch.nn.functional.cosine_similarity(sa[key].flatten(), sb[key].flatten(),
                                                                                   dim=0))  # fmt: skip
                for key in sa
                if key.endswith("weight")
            }
    return out


def zoo_health(extractor: ZooNatureCNN, frames: np.ndarray, sources: dict[str, torch.Tensor]) -> dict:
    """Step-0 features of a zoo extractor: dead units, variance, CKA to each source's features."""
    features = features_of(extractor, frames)
    return {**feature_health(features), "cka": {name: linear_cka(features, f) for name, f in sources.items()}}
