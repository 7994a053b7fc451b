"""Paired differences to a baseline with a bootstrap interval."""

from __future__ import annotations

import math

import numpy as np

from mixframe.tools.stats import bootstrap_interval, paired_difference


def test_a_consistent_gain_is_real_and_pairs_by_seed() -> None:
    method = {0: 0.80, 1: 0.70, 2: 0.75, 3: 0.85, 4: 0.78}
    baseline = {4: 0.41, 3: 0.44, 2: 0.40, 1: 0.39, 0: 0.42, 9: 0.0}  # seed 9 has no partner: left out
    d = paired_difference(method, baseline)
    assert d.n == 5
    assert math.isclose(d.mean, np.mean([0.38, 0.31, 0.35, 0.41, 0.37]))
    assert 0.31 <= d.low < d.mean < d.high <= 0.41
    assert d.real and d.format().endswith("real") and d.format().startswith("+0.364 [")


def test_pairing_removes_what_the_seeds_share() -> None:
    # seeds differ a lot, but within each seed the method is a little higher: paired, that is real
    base = {s: float(s) for s in range(5)}
    method = {s: float(s) + 0.01 * (1 + (s % 2)) for s in range(5)}
    assert paired_difference(method, base).real
    # the same numbers with the pairing scrambled are not
    scrambled = {s: method[(s + 2) % 5] for s in range(5)}
    assert not paired_difference(scrambled, base).real


def test_a_difference_straddling_zero_is_not_shown() -> None:
    d = paired_difference({0: 0.1, 1: -0.1, 2: 0.05}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert d.low < 0 < d.high and not d.real and d.format().endswith("not shown")


def test_a_fixed_reference_value_and_too_few_pairs() -> None:
    d = paired_difference({0: 0.6, 1: 0.62, 2: 0.65}, 0.408)
    assert d.real and math.isclose(d.mean, (0.6 + 0.62 + 0.65) / 3 - 0.408, abs_tol=1e-9)
    assert not paired_difference({0: 0.9, 1: 0.95}, {0: 0.1, 1: 0.1}).real  # two pairs: too few to call
    one = paired_difference({0: 0.9}, {0: 0.1})
    assert one.n == 1 and not one.real and math.isnan(one.low)
    none = paired_difference({0: float("nan")}, {0: 0.1})
    assert none.n == 0 and not none.real and none.format() == "no pairs"


def test_the_interval_is_seeded_and_covers_the_mean() -> None:
    values = np.random.default_rng(1).normal(1.0, 1.0, size=20)
    assert bootstrap_interval(values) == bootstrap_interval(values)
    low, high = bootstrap_interval(values, level=0.95)
    narrow = bootstrap_interval(values, level=0.5)
    assert low < narrow[0] < values.mean() < narrow[1] < high
