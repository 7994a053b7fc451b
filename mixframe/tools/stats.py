"""Paired comparisons of a method with a baseline over seeds, with a bootstrap confidence interval.

Runs of two methods with the same seed share their data splits, and since metrics draw their pairs
and subsets from the metric's own evaluation seed, they are also scored on the same evaluation set:
a method's value minus the baseline's, seed by seed, removes what the two share. A difference is
called real only when its interval excludes zero. With 3 to 5 seeds a percentile bootstrap is
narrow (it never reaches beyond the observed differences, and covers less than its nominal 95%), so
it calls a difference real more readily than a t interval would: an interval that barely excludes
zero over 5 seeds is weak evidence.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import attrs
import numpy as np


@attrs.frozen(kw_only=True)
class PairedDifference:
    """``mean`` of the per-seed differences (method - baseline), its bootstrap interval [``low``, ``high``]
    at ``level``, and the number ``n`` of seeds paired."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def real(self) -> bool:
        """The interval excludes zero, over at least three pairs (two give a bootstrap only three distinct means)."""
        return self.n >= 3 and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 3) -> str:
        """``+0.123 [+0.050, +0.201]``, followed by ``real`` or ``not shown``."""
        if self.n == 0:
            return "no pairs"
        if self.n == 1:
            return f"{self.mean:+.{digits}f} (one pair: not shown)"
        verdict = "real" if self.real else "not shown"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}] {verdict}"


def bootstrap_interval(values: np.ndarray, *, level: float = 0.95, resamples: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (seeded, so a table prints the same twice)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def paired_difference(values: Mapping[Hashable, float], baseline: Mapping[Hashable, float] | float, *, level: float = 0.95,
                      resamples: int = 10000, seed: int = 0) -> PairedDifference:
    """The method's ``values`` minus the ``baseline``'s, paired by key (the training seed).

    ``baseline`` is a mapping with the same keys (seeds present in only one are left out), or one number
    for a reference that does not depend on the seed (such as data-space averaging scored on the fixed
    evaluation set). Non-finite values are left out with their pair.
    """
    if isinstance(baseline, Mapping):
        keys = [k for k in values if k in baseline]
        diffs = [values[k] - baseline[k] for k in keys]
    else:
        diffs = [v - float(baseline) for v in values.values()]
    diffs_arr = np.asarray([d for d in diffs if math.isfinite(d)], dtype=np.float64)
    if not len(diffs_arr):
        return PairedDifference(mean=math.nan, low=math.nan, high=math.nan, n=0, level=level)
    low, high = bootstrap_interval(diffs_arr, level=level, resamples=resamples, seed=seed)
    return PairedDifference(mean=float(diffs_arr.mean()), low=low, high=high, n=len(diffs_arr), level=level)
