"""How real do decoded mixes look, to a judge trained only on real data?

No pretrained network can be downloaded, so each evaluation trains its own judge: a small
classifier (:class:`~mixframe_plugins.metrics._nets.Judge`: a CNN for images, an MLP for flat
data) fitted on the training split's class labels with the metric's seed, nothing cached between
runs. Its accuracy on the evaluated test examples is ``realism_classifier_acc``: if it is low, the
other numbers say little.

- ``midpoint_confidence``: the judge's mean max-softmax on decoded midpoints ``g((h1 + h2) / 2)``
  of random pairs of test examples, beside ``real_confidence`` on real test examples and
  ``rec_confidence`` on their reconstructions. A mix that looks like a real example of some class
  gets a confident answer; a blurry superposition of two examples does not.
- ``mix_fid``: the Frechet distance between Gaussians fitted to the judge's penultimate features of
  real test examples and of decoded midpoints (FID's formula with the judge in place of
  Inception); ``rec_fid``: the same for reconstructions, as a reference (lower is better).
  Numbers are comparable only between runs evaluated with the same judge settings and seed.
  ``real_fid_floor``: the real examples scored against as many others of the other held-out split (val for
  test, test for val), the floor at about the same sample sizes.
- ``own_mix_fid``, ``own_mix_confidence``: the same for mixes made by the run's own trained mixer, the
  mixes it trained on (runs with a mixer only), beside the common midpoints every run is scored on.

Decoded outputs are clamped to the dataset's value range before judging, as real data are.
"""

from __future__ import annotations

import math
import warnings

import attrs
import numpy as np
from torch import Tensor

from mixframe import BuildContext, Component, Metric, Run, hookimpl, param, positive
from mixframe_plugins.metrics._nets import (
    OWN_MIX_STREAM,
    judge,
    load,
    metric_rng,
    own_mixes,
    pick,
    random_pairs,
    require_class_labels,
    train_judge,
)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are examples) of a feature matrix."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance of two Gaussians: ``|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))``.

    A singular product (fewer examples than features) gets ``eps`` added to both diagonals; tiny
    imaginary parts from rounding are dropped, and rounding below zero is clipped.
    """
    import scipy.linalg

    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(covmean).all():
            offset = eps * np.eye(len(cov1))
            covmean = scipy.linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(np.real(covmean))
    return float(max(value, 0.0))


def feature_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature matrices."""
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


@attrs.frozen(kw_only=True)
class RealismConfig:
    epochs: int = param(10, validator=positive, help="training epochs of the judge classifier")
    max_train: int | None = param(10000, validator=positive, help="train the judge on at most this many training examples (null: all)")
    n_eval: int = param(1000, validator=positive, help="test examples judged (real, reconstructed), and random pairs whose midpoints are judged")
    width: int = param(32, validator=positive, help="judge width (the CNN's first layer; its features have twice as many)")
    lr: float = param(3e-3, validator=positive, help="judge Adam learning rate")
    batch_size: int = param(128, validator=positive, help="judge training batch size")
    seed: int = param(0, help="evaluation seed, the same for every run (not the run's seed), for the judge's training and the pairs")


class RealismMetric(Metric):
    """Judge-network confidence and Frechet distance of decoded midpoints (needs class labels)."""
    directions = {"mix_fid": "min", "midpoint_confidence": "max", "rec_fid": "min", "own_mix_fid": "min", "own_mix_confidence": "max"}
    references = {"mix_fid": ("pixel_mix_fid", "real_fid_floor"), "midpoint_confidence": "pixel_midpoint_confidence",
                  "own_mix_fid": ("pixel_mix_fid", "real_fid_floor"), "own_mix_confidence": "pixel_midpoint_confidence"}
    meanings = {
        "realism_classifier_acc": "test accuracy of the judge (a classifier trained on real data); if low, the other realism numbers say little",
        "real_confidence": "the judge's mean top-class probability on real test examples (the reference for the others)",
        "midpoint_confidence": "its mean top-class probability on decoded midpoints of random test pairs; higher means mixes look like "
                               "some real class",
        "rec_confidence": "its mean top-class probability on reconstructions",
        "mix_fid": "Frechet distance between the judge's features of real test examples and of decoded midpoints; lower is better",
        "rec_fid": "the same Frechet distance for reconstructions (a reference; lower is better)",
        "pixel_midpoint_confidence": "the no-learning reference: its mean top-class probability on pixel midpoints (x1 + x2) / 2 "
                                     "of the same pairs",
        "pixel_mix_fid": "the no-learning reference: the Frechet distance for pixel midpoints of the same pairs (lower is better)",
        "real_fid_floor": "the floor: the Frechet distance between the real examples scored and up to as many real examples of "
                          "the other held-out split (val for test, test for val): real data at about mix_fid's sample sizes",
        "own_mix_fid": "the Frechet distance for decoded mixes made by the run's own trained mixer (the mixes it trained on; "
                       "runs with a mixer only); lower is better",
        "own_mix_confidence": "the judge's mean top-class probability on the run's own mixer's decoded mixes",
    }

    def __init__(self, config: RealismConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: Run, split: str = "test") -> dict[str, float]:
        cfg = self.config
        k = require_class_labels(run.data, "realism")
        rng = metric_rng(cfg.seed)
        low, high = run.data.spec.value_range
        x_train, y_train = load(run.data.train, pick(len(run.data.train), cfg.max_train, rng))  # type: ignore[arg-type]
        net = train_judge(x_train, y_train.long(), k, epochs=cfg.epochs, seed=int(rng.integers(0, 2**62)), device=run.device,
                          batch_size=cfg.batch_size, lr=cfg.lr, width=cfg.width)

        examples = getattr(run.data, split)
        n_test = len(examples)
        x_real, y_real = load(examples, pick(n_test, cfg.n_eval, rng))
        first, second = random_pairs(n_test, cfg.n_eval, rng)
        x1, _ = load(examples, first)
        x2, _ = load(examples, second)

        def decoded(h: Tensor) -> Tensor:
            return run.decode(h).cpu().float().clamp(low, high)

        midpoints = decoded((run.encode(x1).cpu() + run.encode(x2).cpu()) / 2)
        recs = decoded(run.encode(x_real).cpu())
        p_real, f_real = judge(net, x_real, run.device)
        p_mid, f_mid = judge(net, midpoints, run.device)
        p_rec, f_rec = judge(net, recs, run.device)
        p_pix, f_pix = judge(net, (x1.float() + x2.float()) / 2, run.device)  # the same pairs blended in pixel space
        extra = {"real_fid_floor": math.nan}
        others = getattr(run.data, "val" if split == "test" else "test")
        if len(others) >= 2:
            # the floor at about mix_fid's sample sizes: finite-sample Frechet distances are biased upwards, the more the
            # smaller the samples (two halves of 360 test digits: 1.1; all 360 against 359 others: 0.22). The other
            # split's examples are drawn from a stream of their own, so that no earlier draw changed.
            stream = np.random.default_rng(np.random.SeedSequence([int(cfg.seed) & 0xFFFFFFFF, OWN_MIX_STREAM, 1]))
            x_other, _ = load(others, pick(len(others), cfg.n_eval, stream))
            extra["real_fid_floor"] = feature_fid(f_real.numpy(), judge(net, x_other, run.device)[1].numpy())
        own = own_mixes(run, examples, cfg.n_eval, cfg.seed)
        if own is not None:
            p_own, f_own = judge(net, decoded(own), run.device)
            extra.update(own_mix_fid=feature_fid(f_real.numpy(), f_own.numpy()), own_mix_confidence=float(p_own.max(dim=1).values.mean()))
        return {
            "realism_classifier_acc": float((p_real.argmax(dim=1) == y_real.long()).float().mean()),
            "real_confidence": float(p_real.max(dim=1).values.mean()),
            "midpoint_confidence": float(p_mid.max(dim=1).values.mean()),
            "rec_confidence": float(p_rec.max(dim=1).values.mean()),
            "mix_fid": feature_fid(f_real.numpy(), f_mid.numpy()),
            "rec_fid": feature_fid(f_real.numpy(), f_rec.numpy()),
            "pixel_midpoint_confidence": float(p_pix.max(dim=1).values.mean()),
            "pixel_mix_fid": feature_fid(f_real.numpy(), f_pix.numpy()),
        } | extra


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("class_labels", "its judge is a classifier trained on class labels"),)
    return [Component(kind="metric", name="realism", implementation=RealismMetric, config=RealismConfig,
                      requires=requires, provides=(),
                      summary="a judge classifier trained on real data: confidence on decoded midpoints, Frechet distance of its features")]

