"""Disentanglement of codes on data with known generative factors (dSprites): FactorVAE and beta-VAE metrics.

Both need the dataset bundle's ``generator`` to offer ``sample_factors(n, generator) -> LongTensor
(n, F)`` (factors drawn from the data distribution with a ``torch.Generator``) and
``render(factors) -> x`` (examples in data space, as the splits yield them), plus
``spec.factor_sizes``. Factors of size 1 never vary and are never chosen.

FactorVAE metric (Kim & Mnih, 2018): each code dimension's global std is estimated from
``n_global`` samples; dimensions whose std is below ``min_std_ratio`` times the largest are
collapsed and ignored. One vote: choose a factor k uniformly, draw ``factorvae_L`` factor vectors
that all share one value of k (the value of the first draw), encode them, divide by the global std,
and vote for the (active) dimension of least variance. A majority-vote classifier maps each
dimension to the factor it was most often voted for on the training votes; the score is its
accuracy on held-out votes. Every factor is counted, the last one included (the AMR authors' code
skipped the last factor while still counting its votes, capping the score at 0.8 for dSprites).

beta-VAE metric (Higgins et al., 2017): one point: choose a factor k, draw ``betavae_L`` pairs of
factor vectors that agree on k, and average the absolute difference of their codes; a linear
classifier (standardised features, logistic regression) learns k from such points; the score is
its accuracy on held-out points.

Chance level is ``1 / number of varying factors`` for both (0.2 on dSprites).

The no-learning reference, ``pca_factorvae`` and ``pca_betavae``: the same two scores for a code that
involves no autoencoder, the rendered pixels projected on their first principal components (as many as
the run's code has dimensions, at most one per pixel), fitted on ``pca_samples`` fresh draws of the
split's stream. The scores are measured on the same votes and points as the run's (the same draws of the
same stream), so a study can pair them; they depend on the run only through its code size, so runs of one
code size share one reference row. It says whether a learned code beats a linear projection of the pixels
at naming the factors, which chance alone does not.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
import torch
from torch import Tensor

from mixframe import BuildContext, Component, Metric, MixframeError, RendersFactors, RunView, hookimpl, in_range, param, positive
from mixframe_plugins.metrics._nets import metric_rng, to_numpy, torch_generator

VAL_STREAM = 1_000_003  # split "val": the evaluation seed plus this, so tuning never sees the test samples
PCA_STREAM = 1  # the PCA reference's fitting samples: a sub-stream of the split's, so the votes and points stay the run's own

EncodeFactors = Callable[[Tensor], np.ndarray]
"""Maps factors ``(N, F)`` to flat codes ``(N, D)``: render, then encode."""
SampleFactors = Callable[[int, torch.Generator], Tensor]


@attrs.frozen(kw_only=True)
class DisentanglementConfig:
    n_global: int = param(5000, validator=positive, help="samples that estimate each code dimension's global std (FactorVAE)")
    factorvae_L: int = param(64, validator=positive, help="samples per FactorVAE vote (all share the fixed factor's value)")
    factorvae_train_votes: int = param(300, validator=positive, help="votes that fit the majority-vote classifier")
    factorvae_test_votes: int = param(200, validator=positive, help="held-out votes the FactorVAE score is measured on")
    betavae_L: int = param(32, validator=positive, help="pairs averaged into one beta-VAE point")
    betavae_train_points: int = param(300, validator=positive, help="points that fit the beta-VAE linear classifier")
    betavae_test_points: int = param(200, validator=positive, help="held-out points the beta-VAE score is measured on")
    min_std_ratio: float = param(0.01, validator=in_range(0.0, 1.0),
                                 help="code dimensions whose global std is below this fraction of the largest are collapsed and ignored")
    batch_size: int = param(1024, validator=positive, help="factor vectors rendered and encoded at a time")
    pca_samples: int = param(5000, validator=positive, help="fresh samples of the split's stream the no-learning PCA reference is fitted on")
    seed: int = param(0, help="evaluation seed, the same for every run (not the run's seed), for every draw")


def varying_factors(factor_sizes: tuple[int, ...]) -> np.ndarray:
    """Indices of the factors that take more than one value."""
    varying = np.flatnonzero(np.asarray(factor_sizes) > 1)
    if len(varying) == 0:
        raise MixframeError(f"disentanglement needs at least one factor with more than one value, got factor_sizes={factor_sizes}")
    return varying


def encode_in_chunks(encode: EncodeFactors, factors: Tensor, batch_size: int) -> np.ndarray:
    """``encode`` applied to ``factors`` a chunk at a time, as one float64 array."""
    return np.concatenate([np.asarray(encode(chunk), dtype=np.float64).reshape(len(chunk), -1) for chunk in factors.split(batch_size)])


def _fixed_factor_batches(sample_factors: SampleFactors, count: int, size: int, varying: np.ndarray,
                          rng: np.random.Generator, gen: torch.Generator) -> tuple[Tensor, np.ndarray]:
    """``count`` groups of ``size`` factor vectors, each group sharing the value of one randomly chosen factor."""
    chosen = rng.choice(varying, size=count)
    groups = sample_factors(count * size, gen).long().reshape(count, size, -1).clone()
    for g, k in enumerate(chosen):
        groups[g, :, k] = groups[g, 0, k]
    return groups, chosen


def factorvae_score(encode: EncodeFactors, sample_factors: SampleFactors, factor_sizes: tuple[int, ...], *,
                    n_global: int, L: int, train_votes: int, test_votes: int, rng: np.random.Generator,
                    min_std_ratio: float = 0.01, batch_size: int = 1024) -> dict[str, float]:
    """The FactorVAE metric (``factorvae``) and the number of non-collapsed code dimensions (``factorvae_active_dims``)."""
    gen = torch_generator(rng)
    varying = varying_factors(factor_sizes)
    std = encode_in_chunks(encode, sample_factors(n_global, gen).long(), batch_size).std(axis=0, ddof=1)
    active = np.flatnonzero(std > min_std_ratio * std.max()) if std.max() > 0 else np.arange(len(std))
    std = np.where(std > 0, std, 1.0)  # a fully collapsed code: every vote ties, the score falls to chance

    def votes(count: int) -> tuple[np.ndarray, np.ndarray]:
        groups, chosen = _fixed_factor_batches(sample_factors, count, L, varying, rng, gen)
        codes = encode_in_chunks(encode, groups.reshape(count * L, -1), batch_size).reshape(count, L, -1)
        variance = (codes[:, :, active] / std[active]).var(axis=1, ddof=1)
        return active[variance.argmin(axis=1)], chosen

    train_dims, train_factors = votes(train_votes)
    test_dims, test_factors = votes(test_votes)
    counts = np.zeros((len(std), len(factor_sizes)), dtype=np.int64)
    np.add.at(counts, (train_dims, train_factors), 1)
    predicted = counts.argmax(axis=1)
    return {"factorvae": float(np.mean(predicted[test_dims] == test_factors)), "factorvae_active_dims": float(len(active))}


def betavae_score(encode: EncodeFactors, sample_factors: SampleFactors, factor_sizes: tuple[int, ...], *,
                  L: int, train_points: int, test_points: int, rng: np.random.Generator, batch_size: int = 1024) -> float:
    """The beta-VAE metric: held-out accuracy of a linear classifier of the fixed factor from mean |z1 - z2|."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    gen = torch_generator(rng)
    varying = varying_factors(factor_sizes)

    def points(count: int) -> tuple[np.ndarray, np.ndarray]:
        first, chosen = _fixed_factor_batches(sample_factors, count, L, varying, rng, gen)
        second = sample_factors(count * L, gen).long().reshape(count, L, -1).clone()
        index = torch.as_tensor(chosen).view(count, 1, 1).expand(count, L, 1)
        second.scatter_(2, index, first.gather(2, index))
        both = torch.cat([first.reshape(count * L, -1), second.reshape(count * L, -1)])
        codes = encode_in_chunks(encode, both, batch_size)
        diffs = np.abs(codes[: count * L] - codes[count * L:]).reshape(count, L, -1).mean(axis=1)
        return diffs, chosen

    train_x, train_y = points(train_points)
    test_x, test_y = points(test_points)
    if len(np.unique(train_y)) < 2:
        return float(np.mean(test_y == train_y[0]))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train_x, train_y)
    return float(clf.score(test_x, test_y))


def pca_encoder(render: Callable[[Tensor], Tensor], factors: Tensor, components: int, seed: int,
                batch_size: int = 1024) -> EncodeFactors:
    """Factors -> rendered pixels projected on their first ``components`` principal components, fitted on the renderings of
    ``factors``: a code of the same size as a run's that no autoencoder learned (the metric's reference)."""
    from sklearn.decomposition import PCA

    def pixels(chunk: Tensor) -> np.ndarray:
        return to_numpy(render(chunk)).reshape(len(chunk), -1).astype(np.float64)

    fit = np.concatenate([pixels(chunk) for chunk in factors.split(batch_size)])
    pca = PCA(n_components=max(1, min(components, *fit.shape)), random_state=seed).fit(fit)

    def encode(chunk: Tensor) -> np.ndarray:
        return np.asarray(pca.transform(pixels(chunk)))

    return encode


class DisentanglementMetric(Metric):
    """FactorVAE and beta-VAE disentanglement scores (needs a factor dataset such as dSprites)."""
    directions = {"factorvae": "max", "betavae": "max"}
    references = {"factorvae": "pca_factorvae", "betavae": "pca_betavae"}
    meanings = {
        "factorvae": "FactorVAE score: how often the code dimension that varies least when one factor is held fixed names that factor "
                     "(majority vote, held-out votes); higher is better, chance is 1 / varying factors",
        "factorvae_active_dims": "code dimensions not collapsed (std at least min_std_ratio of the largest), which the FactorVAE vote uses",
        "betavae": "beta-VAE score: test accuracy of a linear classifier telling which factor two codes share from their mean "
                   "absolute difference; higher is better, chance is 1 / varying factors",
        "pca_factorvae": "the no-learning reference: the FactorVAE score, on the same votes, of the rendered pixels' first principal "
                         "components (as many as the run's code has dimensions, fitted on fresh samples of the same split's stream)",
        "pca_betavae": "the no-learning reference: the beta-VAE score, on the same points, of the rendered pixels' first principal "
                       "components (as many as the run's code has dimensions, fitted on fresh samples of the same split's stream)",
    }

    def __init__(self, config: DisentanglementConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: RunView, split: str = "test") -> dict[str, float]:
        data, cfg = run.data, self.config
        generator = data.generator
        if not data.spec.factor_sizes or not isinstance(generator, RendersFactors):
            raise MixframeError(
                "metric 'disentanglement' needs a dataset with known generative factors (spec.factor_sizes, and a generator "
                "implementing mixframe.RendersFactors: sample_factors and render), such as dsprites; "
                f"this dataset has none (label_kind {data.label_kind!r})")

        def encode(factors: Tensor) -> np.ndarray:
            return to_numpy(run.encode(generator.render(factors))).reshape(len(factors), -1)

        stream = cfg.seed if split == "test" else cfg.seed + VAL_STREAM  # fresh samples: val has a stream of its own
        sizes = tuple(data.spec.factor_sizes)

        def scores(encode: EncodeFactors) -> dict[str, float]:
            rng = metric_rng(stream)  # the same stream for the run and the reference: the same votes and points
            out = factorvae_score(encode, generator.sample_factors, sizes, n_global=cfg.n_global, L=cfg.factorvae_L,
                                  train_votes=cfg.factorvae_train_votes, test_votes=cfg.factorvae_test_votes, rng=rng,
                                  min_std_ratio=cfg.min_std_ratio, batch_size=cfg.batch_size)
            out["betavae"] = betavae_score(encode, generator.sample_factors, sizes, L=cfg.betavae_L, train_points=cfg.betavae_train_points,
                                           test_points=cfg.betavae_test_points, rng=rng, batch_size=cfg.batch_size)
            return out

        out = scores(encode)
        fit_rng = np.random.default_rng([stream & 0xFFFFFFFF, PCA_STREAM])
        fit_factors = generator.sample_factors(cfg.pca_samples, torch_generator(fit_rng)).long()
        reference = scores(pca_encoder(generator.render, fit_factors, encode(fit_factors[:1]).shape[1], seed=int(fit_rng.integers(0, 2**31)),
                                       batch_size=cfg.batch_size))
        return out | {"pca_factorvae": reference["factorvae"], "pca_betavae": reference["betavae"]}


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("known_factors", "its scores render examples that vary one generative factor at a time"),)
    return [Component(kind="metric", name="disentanglement", implementation=DisentanglementMetric, config=DisentanglementConfig,
                      requires=requires, provides=(),
                      summary="FactorVAE (all factors, majority vote) and beta-VAE (linear classifier) disentanglement scores")]
