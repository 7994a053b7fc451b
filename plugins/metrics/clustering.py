"""Clustering accuracy of codes, as in ACAI (Berthelot et al., 2019).

The flattened training codes are centred and whitened with their SVD (each principal direction
scaled to unit variance; directions with a negligible singular value are dropped so that noise is
not blown up), k-means with k = the number of classes is fitted on them (best of ``n_init``
starts), the test codes are whitened with the same transform and assigned to clusters, and the
clusters are matched one-to-one to the test labels by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) to maximise the number of agreements.
"""

from __future__ import annotations

import attrs
import numpy as np

from mixframe import BuildContext, Component, Metric, Run, hookimpl, param, positive
from mixframe_plugins.metrics._nets import metric_rng, pick, require_class_labels


@attrs.frozen(kw_only=True)
class ClusteringConfig:
    n_init: int = param(10, validator=positive, help="k-means restarts; the one with the lowest inertia is kept (ACAI used 1000)")
    max_iter: int = param(300, validator=positive, help="k-means iterations per restart")
    max_train: int | None = param(None, validator=positive, help="fit whitening and k-means on at most this many training codes (null: all)")
    whiten: bool = param(True, help="SVD-whiten the codes before k-means, as ACAI does")
    seed: int = param(0, help="evaluation seed, the same for every run (not the run's seed), for the k-means starts and the training subsample")


def cluster_accuracy(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose cluster, mapped one-to-one to a label by the Hungarian algorithm, is their label."""
    from scipy.optimize import linear_sum_assignment

    cluster_ids, cluster_idx = np.unique(clusters, return_inverse=True)
    label_ids, label_idx = np.unique(labels, return_inverse=True)
    counts = np.zeros((len(cluster_ids), len(label_ids)), dtype=np.int64)
    np.add.at(counts, (cluster_idx, label_idx), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels))


def fit_whitening(codes: np.ndarray, rel_tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Mean and projection ``W`` such that ``(codes - mean) @ W`` has identity covariance."""
    mean = codes.mean(axis=0)
    _, s, vt = np.linalg.svd(codes - mean, full_matrices=False)
    keep = s > rel_tol * max(float(s.max(initial=0.0)), 1e-12)
    scale = s[keep] / np.sqrt(max(len(codes) - 1, 1))
    return mean, vt[keep].T / scale


def clustering_accuracy(
    train_codes: np.ndarray, test_codes: np.ndarray, test_labels: np.ndarray, k: int, *,
    n_init: int = 10, max_iter: int = 300, whiten: bool = True, seed: int = 0,
) -> float:
    """ACAI's clustering accuracy of ``test_codes`` with k-means fitted on ``train_codes``."""
    from sklearn.cluster import KMeans

    train, test = train_codes.astype(np.float64), test_codes.astype(np.float64)
    if whiten:
        mean, proj = fit_whitening(train)
        train, test = (train - mean) @ proj, (test - mean) @ proj
    kmeans = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed).fit(train)
    return cluster_accuracy(kmeans.predict(test), test_labels)


class ClusteringMetric(Metric):
    """k-means clustering accuracy of whitened codes (needs class labels)."""
    directions = {"cluster_acc": "max"}
    meanings = {
        "cluster_acc": "accuracy of k-means clusters of the whitened test codes, each cluster matched to one class (Hungarian); "
                       "higher is better, chance is about 1 / classes",
    }

    def __init__(self, config: ClusteringConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: Run, split: str = "test") -> dict[str, float]:
        k = require_class_labels(run.data, "clustering")
        rng = metric_rng(self.config.seed)
        train, _ = run.codes("train")
        test, test_labels = run.codes(split)
        train = train.reshape(len(train), -1)[pick(len(train), self.config.max_train, rng)]
        acc = clustering_accuracy(train, test.reshape(len(test), -1), test_labels.reshape(-1), k, n_init=self.config.n_init,
                                  max_iter=self.config.max_iter, whiten=self.config.whiten, seed=int(rng.integers(0, 2**31 - 1)))
        return {"cluster_acc": acc}


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("class_labels", "it matches k-means clusters (k = the number of classes) to class labels"),)
    return [Component(kind="metric", name="clustering", implementation=ClusteringMetric, config=ClusteringConfig,
                      requires=requires, provides=(),
                      summary="ACAI clustering accuracy: SVD-whitened codes, k-means (k = classes), Hungarian-matched test labels")]
