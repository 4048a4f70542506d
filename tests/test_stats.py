"""The report statistics (rliable) and the human-normalised scores."""

import math

import numpy as np
import pytest

from zoo_rl.envs.scores import REFERENCE_SCORES, human_normalized
from zoo_rl.errors import ConfigError
from zoo_rl.rl.report.summary import against_rows, aggregate_rows, best_source, normalized_scores
from zoo_rl.stats import aggregate_intervals, improvement_probability, mean_interval, performance_profiles


def test_mean_interval_brackets_the_mean_and_one_seed_has_none():
    mean, low, high = mean_interval(np.array([100.0, 200.0, 330.0]))
    assert mean == pytest.approx(210.0) and 100.0 <= low < mean < high <= 330.0
    mean, low, high = mean_interval(np.array([5.0]))
    assert mean == 5.0 and math.isnan(low) and math.isnan(high)


def test_curve_intervals_are_reproducible_and_leave_numpy_alone():
    curves = np.array([[1.0, 10.0, 100.0], [2.0, 20.0, 300.0], [4.0, 15.0, 200.0]])
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    first = mean_interval(curves)
    assert np.random.rand() == expected_next  # the caller's generator state is untouched
    second = mean_interval(curves)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)
    mean, low, high = first
    assert mean.tolist() == pytest.approx(curves.mean(axis=0).tolist())
    assert (low <= mean).all() and (mean <= high).all() and (low >= curves.min(axis=0)).all()
    assert np.isnan(mean_interval(np.array([[np.nan, 1.0], [np.nan, 2.0]]))[0][0])


def test_aggregates_and_improvement_probability_on_known_scores():
    rng = np.random.default_rng(0)
    low_scores, high_scores = rng.uniform(0, 1, (5, 4)), rng.uniform(2, 3, (5, 4))
    stats = aggregate_intervals({"low": low_scores, "high": high_scores, "one": high_scores[:1]})
    for method, scores in (("low", low_scores), ("high", high_scores)):
        point, lo, hi = stats[method]["mean"]
        assert point == pytest.approx(scores.mean()) and lo <= point <= hi
        sorted_scores = np.sort(scores, axis=None)
        assert stats[method]["iqm"][0] == pytest.approx(sorted_scores[5:15].mean())  # the middle half
    assert math.isnan(stats["one"]["iqm"][1])
    p = improvement_probability({"high>low": (high_scores, low_scores), "low>high": (low_scores, high_scores),
                                 "same": (low_scores, low_scores)})  # fmt: skip
    assert p["high>low"][:3] == (1.0, 1.0, 1.0) and p["low>high"][0] == 0.0
    assert p["same"][0] == pytest.approx(0.5)


def test_an_interval_does_not_depend_on_the_other_methods_in_the_report():
    # A report that gains a method must not move the intervals of the ones it had.
    rng = np.random.default_rng(3)
    runs = {name: rng.normal(shift, 1.0, (5, 1)) for name, shift in (("a", 0.0), ("b", 0.4), ("c", 0.8), ("d", 1.2))}
    pairs = {f"{x}>{y}": (runs[x], runs[y]) for x in runs for y in runs if x != y}
    alone = {k: improvement_probability({k: xy})[k] for k, xy in pairs.items()}
    assert improvement_probability(pairs) == alone
    assert aggregate_intervals(runs) == {k: aggregate_intervals({k: s})[k] for k, s in runs.items()}
    taus = np.linspace(-2.0, 3.0, 11)
    together = performance_profiles(runs, taus)
    for k, s in runs.items():
        alone_profile = performance_profiles({k: s}, taus)[k]
        assert all(np.array_equal(u, v) for u, v in zip(together[k], alone_profile, strict=True))


def test_performance_profile_counts_runs_above_each_threshold():
    scores = {"a": np.array([[0.1, 0.5], [0.3, 0.9]]), "b": np.array([[0.2, 0.4]])}
    profiles = performance_profiles(scores, np.array([0.0, 0.25, 0.6, 1.0]))
    assert profiles["a"][0].tolist() == [1.0, 0.75, 0.25, 0.0]
    assert profiles["b"][0].tolist() == [1.0, 0.5, 0.0, 0.0] and np.isnan(profiles["b"][1]).all()
    assert (profiles["a"][1] <= profiles["a"][0]).all() and (profiles["a"][0] <= profiles["a"][2]).all()


def test_human_normalized_scores():
    assert len(REFERENCE_SCORES) == 57
    random, human = REFERENCE_SCORES["DemonAttack"]
    assert human_normalized("DemonAttack", random) == 0.0 and human_normalized("DemonAttack", human) == 1.0
    with pytest.raises(KeyError, match="NoSuchGame"):
        human_normalized("NoSuchGame", 1.0)


def _records(scores: dict[tuple[str, str], list[float]]) -> dict:
    return {k: [{"seed": s, "final": v, "auc": v} for s, v in enumerate(vals)] for k, vals in scores.items()}


def test_aggregates_take_methods_run_on_every_game_with_equal_seeds():
    records = _records({
        ("Pong", "scratch"): [-20.7, -20.7], ("Breakout", "scratch"): [1.7, 1.7],
        ("Pong", "finetune:a"): [14.6, 14.6], ("Breakout", "finetune:a"): [30.5, 30.5],
        ("Pong", "finetune:b"): [-3.05, -3.05], ("Breakout", "finetune:b"): [16.1, 16.1],
        ("Pong", "lite"): [14.6], ("Breakout", "lite"): [30.5, 1.7],  # unequal seeds: left out
        ("Pong", "zoo"): [0.0],  # not run on Breakout: left out
        ("NoReference", "scratch"): [5.0, 6.0],  # no reference scores: not a column
    })  # fmt: skip
    games, finals = normalized_scores(records, "final")
    assert games == ["Breakout", "Pong"] and set(finals) == {"scratch", "finetune:a", "finetune:b"}
    assert finals["scratch"].tolist() == [[0.0, 0.0], [0.0, 0.0]] and finals["finetune:a"].shape == (2, 2)
    assert best_source(finals) == "finetune:a"
    rows = {r["method"]: r for r in aggregate_rows(records)}
    assert rows["finetune:a"]["iqm_final"] == pytest.approx(1.0)
    assert rows["finetune:b"]["mean_final"] == pytest.approx(0.5)
    assert rows["finetune:a"]["p_over_scratch"] == 1.0 and rows["scratch"]["p_over_best_source"] == 0.0
    assert rows["finetune:b"]["over_best_source"] == "finetune:a" and math.isnan(rows["scratch"]["p_over_scratch"])


def test_mean_interval_is_the_percentile_bootstrap_of_the_mean(monkeypatch):
    """The interval's values, not only its order: the 2.5th and 97.5th percentiles of the mean
    over resampled runs, against the exact bootstrap distribution (every one of the 5**5
    resamples). A t-interval (low -1.7 here, below every run) or a 90% interval fails."""
    import itertools

    monkeypatch.setattr("zoo_rl.stats.REPS", 2000)  # about +-0.4 points of probability per percentile
    values = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    means = np.array([np.mean(c) for c in itertools.product(values, repeat=len(values))])
    mean, low, high = mean_interval(values)
    assert mean == pytest.approx(3.2)
    assert np.quantile(means, 0.015) <= low <= np.quantile(means, 0.035)
    assert np.quantile(means, 0.965) <= high <= np.quantile(means, 0.985)
    assert not np.quantile(means, 0.04) <= low <= np.quantile(means, 0.06)  # the test tells 95% from 90%


def test_against_compares_every_method_with_each_baseline_on_its_own_target():
    records = _records({
        ("DemonAttack", "finetune:a"): [200.0, 210.0, 190.0], ("DemonAttack", "lite"): [300.0, 330.0, 270.0],
        ("DemonAttack", "zoo"): [195.0, 205.0, 200.0], ("Atlantis", "lite"): [5.0, 6.0],
        ("NoReference", "finetune:a"): [1.0, 2.0], ("NoReference", "lite"): [3.0],
    })  # fmt: skip
    rows = {(r["game"], r["method"]): r for r in against_rows(records, ["finetune:a"])}
    assert set(rows) == {("DemonAttack", "lite"), ("DemonAttack", "zoo"), ("NoReference", "lite")}  # not Atlantis
    lite = rows[("DemonAttack", "lite")]
    assert lite["against"] == "finetune:a" and lite["seeds"] == lite["against_seeds"] == 3
    assert lite["auc_ratio"] == pytest.approx(1.5) and (lite["p_auc"], lite["p_auc_low"]) == (1.0, 1.0)
    zoo = rows[("DemonAttack", "zoo")]
    assert zoo["p_final"] == pytest.approx(4.5 / 9)  # a tie counts half
    assert zoo["p_final_low"] < 0.5 < zoo["p_final_high"]
    assert math.isnan(rows[("NoReference", "lite")]["p_auc_low"])  # one seed: a point, no interval
    with pytest.raises(ConfigError, match=r"--against finetune:b: no finished runs.*finetune:a, lite, zoo"):
        against_rows(records, ["finetune:b"])
