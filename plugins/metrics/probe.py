"""Linear probe: how linearly readable the class is from frozen bottleneck codes.

The sound protocol (the AMR authors instead logged a probe's test accuracy during training):
the encoder is frozen, the flattened codes are standardised with statistics of the training split,
a logistic regression is fitted on the training split for each C of a small grid, C is chosen by
accuracy on the validation split, and the chosen probe's test accuracy is reported once. Scored on
the validation split instead (a study's tuning runs), C is chosen on every fifth training example,
held out of the fit, and the validation accuracy is reported.

Few-label probes draw ``n`` training examples per class with the metric's seed (every example of a
class that has fewer), and average the test accuracy over ``repeats`` draws. C is chosen on the
full validation split in every setting, the same for every run, so the numbers stay comparable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from mixframe import BuildContext, Component, Metric, Run, hookimpl, param, positive
from mixframe_plugins.metrics._nets import metric_rng, require_class_labels

Split = tuple[np.ndarray, np.ndarray]


def _positive_items(_inst: Any, attribute: attrs.Attribute, value: Sequence[float]) -> None:
    if any(v <= 0 for v in value):
        raise ValueError(f"every item must be > 0, got {tuple(value)!r}")


def _non_empty_positive(inst: Any, attribute: attrs.Attribute, value: Sequence[float]) -> None:
    if not value:
        raise ValueError("must list at least one value")
    _positive_items(inst, attribute, value)


@attrs.frozen(kw_only=True)
class ProbeConfig:
    c_grid: tuple[float, ...] = param((1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0), validator=_non_empty_positive,
                                      help="inverse L2 strengths C tried; the one with the best validation accuracy is used")
    few_labels: tuple[int, ...] = param((10, 100), validator=_positive_items,
                                        help="labelled training examples per class for the few-label probes (empty: none)")
    repeats: int = param(3, validator=positive, help="random draws of the few labelled examples, averaged")
    max_iter: int = param(1000, validator=positive, help="L-BFGS iterations per fit")
    seed: int = param(0, help="evaluation seed, the same for every run (not the run's seed), to draw the few labelled examples")


def fit_probe(train: Split, val: Split, test: Split, c_grid: Sequence[float], max_iter: int = 1000) -> tuple[float, float]:
    """Test accuracy of the logistic regression whose C scores best on ``val``, and that C.

    Features are standardised with the training split's mean and std; ties go to the smaller C.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train[0])
    xs = [scaler.transform(split[0]) for split in (train, val, test)]
    best: tuple[float, float, LogisticRegression] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # C is chosen on validation accuracy, not convergence
        for c in sorted(c_grid):
            clf = LogisticRegression(C=c, max_iter=max_iter).fit(xs[0], train[1])
            acc = float(clf.score(xs[1], val[1]))
            if best is None or acc > best[0]:
                best = (acc, c, clf)
    assert best is not None
    return float(best[2].score(xs[2], test[1])), float(best[1])


def draw_per_class(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` examples of each class (all of a class that has fewer), drawn with ``rng``."""
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        chosen.append(rng.choice(members, size=min(n, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def probe_scores(train: Split, val: Split, test: Split, config: ProbeConfig, rng: np.random.Generator) -> dict[str, float]:
    """Every number of the probe metric for codes/labels already split (the testable core)."""
    acc, c = fit_probe(train, val, test, config.c_grid, config.max_iter)
    out = {"probe_acc": acc, "probe_c": c}
    for n in config.few_labels:
        accs = []
        for _ in range(config.repeats):
            idx = draw_per_class(train[1], n, rng)
            accs.append(fit_probe((train[0][idx], train[1][idx]), val, test, config.c_grid, config.max_iter)[0])
        out[f"probe_acc_{n}"] = float(np.mean(accs))
        out[f"probe_acc_{n}_std"] = float(np.std(accs))
    return out


class ProbeMetric(Metric):
    """Linear-probe accuracy of frozen codes (needs class labels)."""
    directions = {"probe_acc": "max"}
    meanings = {
        "probe_acc": "test accuracy of a logistic regression on the frozen codes (C chosen on validation), all training labels; higher is better",
        "probe_c": "the inverse regularisation strength C that scored best on validation",
        "probe_acc_{n}": "the same test accuracy with only {n} labelled training examples per class (mean over draws); higher is better",
        "probe_acc_{n}_std": "standard deviation over the draws of probe_acc_{n}",
    }

    def __init__(self, config: ProbeConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: Run, split: str = "test") -> dict[str, float]:
        require_class_labels(run.data, "probe")
        splits = [run.codes(name) for name in ("train", "val", "test")]
        train, val, test = [(codes.reshape(len(codes), -1), labels.reshape(-1)) for codes, labels in splits]
        if split == "val":  # scored on val, so C is chosen on every fifth training example, held out of the fit
            held = np.arange(len(train[0])) % 5 == 4
            train, val, test = (train[0][~held], train[1][~held]), (train[0][held], train[1][held]), val
        return probe_scores(train, val, test, self.config, metric_rng(self.config.seed))


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("class_labels", "its linear probe predicts class labels from codes"),)
    return [Component(kind="metric", name="probe", implementation=ProbeMetric, config=ProbeConfig,
                      requires=requires, provides=(),
                      summary="logistic-regression probe on frozen codes: C chosen on val, test accuracy once; few-label variants")]
