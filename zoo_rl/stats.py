"""Interval estimates for few-seed comparisons, on rliable (Agarwal et al., "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021).

One estimator everywhere: the mean over runs with a 95% percentile stratified-bootstrap
interval.  The study table (``zoo-rl summary``) and the learning-curve bands (``zoo-rl plot``)
both call :func:`mean_interval`, so a row and the last point of its curve agree.  Three seeds
give wide intervals; that is the honest width of three seeds, not a defect to tune away.

rliable and its dependencies (arch, pandas, seaborn) are imported inside the functions: they
take seconds to import and only the reports need them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np

CONFIDENCE = 0.95
# Bootstrap replications: rliable's default is 50,000; its resampling runs in Python, and 2,000
# keep the 38-run study's report at about two minutes on two CPU cores.
REPS = 2000
SEED = 0  # every report is reproducible: same runs, same intervals
Interval = tuple[float, float, float]  # point, low, high


@contextmanager
def _seeded() -> Iterator[None]:
    """numpy's global generator seeded for the block, and the caller's state given back after:
    rliable draws its resampling indices from the global generator (its random_state only
    reaches arch)."""
    state = np.random.get_state()
    np.random.seed(SEED)
    try:
        with warnings.catch_warnings():  # arch deprecates the RandomState that rliable passes
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        np.random.set_state(state)


def _bootstrap(
    scores: Mapping[str, np.ndarray | tuple[np.ndarray, np.ndarray]], func: Callable[..., np.ndarray]
) -> dict[str, np.ndarray]:
    """Each entry's (low, high) interval of ``func`` over its runs."""
    from rliable import library as rly

    # One seeded draw per entry: an entry's interval depends on its own runs only, not on which
    # other methods share the report.
    intervals = {}
    for key, value in scores.items():
        with _seeded():
            _, ci = rly.get_interval_estimates(
                {key: list(value) if isinstance(value, tuple) else value}, func,
                reps=REPS, confidence_interval_size=CONFIDENCE, random_state=np.random.RandomState(SEED),
            )  # fmt: skip
        intervals.update(ci)
    return intervals


def mean_interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs and its 95% bootstrap interval, for ``values`` of shape (runs,) or
    (runs, points) (a learning curve per run: rliable resamples the runs of each point
    independently); NaN entries (a run with no score yet) are left out of each point.  One
    run has no interval: low and high are NaN there."""
    a = np.asarray(values, dtype=float)
    squeeze = a.ndim == 1
    a = a.reshape(len(a), 1, -1)  # rliable's (runs, tasks, ...) with one task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN point stays NaN
        mean = np.nanmean(a, axis=(0, 1))
        if len(a) < 2:
            low = high = np.full_like(mean, math.nan)
        else:
            ci = _bootstrap({"x": a}, lambda s: np.nanmean(s, axis=(0, 1)))
            low, high = ci["x"]
    if squeeze:
        return mean[0], low[0], high[0]
    return mean, low, high


def aggregate_intervals(scores: Mapping[str, np.ndarray]) -> dict[str, dict[str, Interval]]:
    """Interquartile mean and mean of normalised scores across tasks, per method, each as
    (point, low, high) with stratified bootstrap intervals (runs resampled within each task).
    ``scores[method]`` has shape (runs, tasks); one run has no interval (NaN), and is not
    bootstrapped (rliable's resampling runs in Python: each call costs seconds)."""
    from rliable import metrics

    many = {k: s for k, s in scores.items() if len(s) > 1}
    out: dict[str, dict[str, Interval]] = {k: {} for k in scores}
    for name, func in (("iqm", metrics.aggregate_iqm), ("mean", metrics.aggregate_mean)):
        ci = _bootstrap(many, lambda s, f=func: np.array([f(s)]))
        for k, s in scores.items():
            low, high = (ci[k][0, 0], ci[k][1, 0]) if k in ci else (math.nan, math.nan)
            out[k][name] = (float(func(s)), float(low), float(high))
    return out


def improvement_probability(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Interval]:
    """P(X > Y): the probability that a run of X beats a run of Y on a task picked at random
    (ties count half), as (point, low, high).  ``pairs[label] = (x, y)``, each of shape
    (runs, tasks); the runs of x and y are resampled independently, and a side with one run
    gives no interval (NaN)."""
    from rliable import metrics

    many = {k: xy for k, xy in pairs.items() if min(len(xy[0]), len(xy[1])) > 1}
    ci = _bootstrap(many, lambda x, y: np.array([metrics.probability_of_improvement(x, y)]))
    out = {}
    for k, (x, y) in pairs.items():
        low, high = (ci[k][0, 0], ci[k][1, 0]) if k in ci else (math.nan, math.nan)
        out[k] = (float(metrics.probability_of_improvement(x, y)), float(low), float(high))
    return out


def performance_profiles(scores: Mapping[str, np.ndarray], taus: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """Score distributions: per method, the fraction of runs scoring above each tau, and its
    bootstrap band (NaN for one run), as (profile, low, high)."""
    from rliable import library as rly

    bands = {}
    for k, s in scores.items():
        if len(s) > 1:
            with _seeded():
                _, band = rly.create_performance_profile({k: s}, taus, reps=REPS, confidence_interval_size=CONFIDENCE)
            bands[k] = band[k]
    nan = np.full(len(taus), math.nan)
    return {k: (rly.score_distributions(s, taus), *bands.get(k, (nan, nan))) for k, s in scores.items()}
