"""Do decoded mixes stay on the data manifold? For low-dimensional data with a known manifold (the spiral).

The dataset's generator answers ``distance_to_manifold(points) -> distances`` (a tensor of points
``(N, *spec.shape)`` in data space) and gives ``on_manifold_threshold``, the distance under which a
point counts as on the manifold. ``n_mixes`` random pairs of distinct test examples are encoded,
mixed by plain mixup ``alpha h1 + (1 - alpha) h2`` with ``alpha ~ U(0, 1)`` per pair, and decoded.
Plain mixup is used whatever the run's own mixer is, so that every run is judged on the same kind
of mix (the spiral study's Figure 12 plots exactly these decoded random mixes).

Keys: ``on_manifold_fraction`` (mixes within the threshold), ``on_manifold_threshold`` (the
threshold used), ``mix_distance_mean``; and as references, reconstructions of the same test
examples: ``rec_on_manifold_fraction``, ``rec_distance_mean``, and the no-learning reference of
mixing the same pairs in data space with the same weights, ``alpha x1 + (1 - alpha) x2``:
``data_mix_on_manifold_fraction``, ``data_mix_distance_mean`` (identical for every run of a dataset,
since the pairs come from the metric's evaluation seed, not the run's). A run with a mixer is also scored
on the mixes it trained on: ``own_mix_on_manifold_fraction``, ``own_mix_distance_mean`` (its own trained
mixer, :func:`~mixframe_plugins.metrics._nets.own_mixes`).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from mixframe import BuildContext, Component, KnowsManifold, Metric, MixframeError, Run, hookimpl, param, positive
from mixframe_plugins.metrics._nets import load, metric_rng, own_mixes, random_pairs, to_numpy


def mixup_codes(h1: Tensor, h2: Tensor, alpha: Tensor) -> Tensor:
    """``alpha h1 + (1 - alpha) h2`` with one weight per example, broadcast over the code's other axes."""
    weight = alpha.to(h1.dtype).view(-1, *([1] * (h1.dim() - 1)))
    return weight * h1 + (1 - weight) * h2


def manifold_scores(mix_distances: np.ndarray, rec_distances: np.ndarray, threshold: float) -> dict[str, float]:
    """The metric's numbers from distances to the manifold of decoded mixes and of reconstructions."""
    mix, rec = np.asarray(mix_distances, dtype=np.float64), np.asarray(rec_distances, dtype=np.float64)
    return {
        "on_manifold_fraction": float(np.mean(mix < threshold)),
        "on_manifold_threshold": float(threshold),
        "mix_distance_mean": float(mix.mean()),
        "rec_on_manifold_fraction": float(np.mean(rec < threshold)),
        "rec_distance_mean": float(rec.mean()),
    }


@attrs.frozen(kw_only=True)
class ManifoldConfig:
    n_mixes: int = param(2000, validator=positive, help="random pairs of test examples mixed and decoded")
    seed: int = param(0, help="evaluation seed, the same for every run (not the run's seed), to draw the pairs and the mixing weights")


class ManifoldMetric(Metric):
    """Fraction of decoded random mixes that land on the known data manifold."""

    headline = "on_manifold_fraction"
    directions = {"on_manifold_fraction": "max", "mix_distance_mean": "min", "rec_on_manifold_fraction": "max", "rec_distance_mean": "min",
                  "own_mix_on_manifold_fraction": "max", "own_mix_distance_mean": "min"}
    references = {"on_manifold_fraction": "data_mix_on_manifold_fraction", "mix_distance_mean": "data_mix_distance_mean",
                  "own_mix_on_manifold_fraction": "data_mix_on_manifold_fraction"}
    panel_title = "decoded random mixes (orange) over real samples (blue)"
    meanings = {
        "on_manifold_fraction": "fraction of decoded random mixes (mixup of two test codes) closer to the data manifold than the threshold; "
                                "higher is better",
        "on_manifold_threshold": "the distance under which a point counts as on the manifold (the dataset's)",
        "mix_distance_mean": "mean distance of the decoded mixes to the manifold; lower is better",
        "rec_on_manifold_fraction": "the same fraction for reconstructions of the test examples (a ceiling for the mixes)",
        "rec_distance_mean": "mean distance of the reconstructions to the manifold",
        "data_mix_on_manifold_fraction": "the same fraction for mixing the pairs in data space (the no-learning reference)",
        "data_mix_distance_mean": "mean distance to the manifold of mixing the pairs in data space (the no-learning reference)",
        "own_mix_on_manifold_fraction": "the same fraction for mixes made by the run's own trained mixer (the mixes it trained on; "
                                        "runs with a mixer only); higher is better",
        "own_mix_distance_mean": "mean distance to the manifold of the run's own mixer's decoded mixes; lower is better",
    }

    def __init__(self, config: ManifoldConfig, context: BuildContext) -> None:
        self.config = config

    def draw_panel(self, run: Run, ax: Any) -> None:
        """Decoded random mixes (orange) over the real test points (blue), the same draw for every run
        (:class:`mixframe.kernel.interfaces.DrawsPanel`: a sweep's panels.png)."""
        from mixframe.tools.pictures import draw_mix_scatter, random_mix_weights

        x, _ = run.split("test")
        perm, alpha = random_mix_weights(len(x))
        h = run.encode(x).cpu()
        draw_mix_scatter(ax, x, run.decode(alpha * h + (1 - alpha) * h[perm]))

    def evaluate(self, run: Run, split: str = "test") -> dict[str, float]:
        generator = run.data.generator
        if not isinstance(generator, KnowsManifold):
            raise MixframeError("metric 'manifold' needs a dataset with a known manifold (its generator offers distance_to_manifold "
                                "and on_manifold_threshold), such as spiral; it does not apply to this dataset")
        rng = metric_rng(self.config.seed)
        examples = getattr(run.data, split)
        first, second = random_pairs(len(examples), self.config.n_mixes, rng)
        x1, _ = load(examples, first)
        x2, _ = load(examples, second)
        h1, h2 = run.encode(x1).cpu(), run.encode(x2).cpu()
        alpha = torch.as_tensor(rng.uniform(0.0, 1.0, size=len(first)))
        mixes = run.decode(mixup_codes(h1, h2, alpha)).cpu()
        recs = run.decode(h1).cpu()
        threshold = float(generator.on_manifold_threshold)
        out = manifold_scores(to_numpy(generator.distance_to_manifold(mixes)), to_numpy(generator.distance_to_manifold(recs)), threshold)
        blends = to_numpy(generator.distance_to_manifold(mixup_codes(x1.cpu(), x2.cpu(), alpha).to(x1.dtype)))
        out.update(data_mix_on_manifold_fraction=float(np.mean(blends < threshold)), data_mix_distance_mean=float(np.mean(blends)))
        own = own_mixes(run, examples, self.config.n_mixes, self.config.seed)
        if own is not None:
            distances = to_numpy(generator.distance_to_manifold(run.decode(own).cpu()))
            out.update(own_mix_on_manifold_fraction=float(np.mean(distances < threshold)), own_mix_distance_mean=float(np.mean(distances)))
        return out


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("known_manifold", "it measures how far decoded mixes land from the data manifold"),)
    return [Component(kind="metric", name="manifold", implementation=ManifoldMetric, config=ManifoldConfig,
                      requires=requires, provides=(),
                      summary="fraction of decoded random mixup mixes on the known data manifold (spiral), and their mean distance")]
