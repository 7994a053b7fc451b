"""Attribute accuracy: does a decoded mix show the attributes it was aimed at? (supervised AMR, docs/supervised.md)

A small CNN classifier is trained on the run's real training images (seeded; runs on the same data
and settings share one, kept for the process), then reads random test pairs' decoded mixes (a study's tuning runs: validation pairs):

* ``mix_*``: the classifier reads y_mix in the decoded mix (``mix_attribute_accuracy``: the fraction of
  attributes; ``mix_vector_accuracy``: of whole vectors; ``mix_accuracy_NAME`` per attribute);
* ``first_parent_*``: in the real first parent, what a mixer that copies one parent would score;
* ``reconstruction_*``: reconstructions read as their own labels, the ceiling the decoder allows;
* ``classifier_test_*``: the classifier on real test images, its own ceiling.

A mixer that predicts masks from attributes (:class:`mixframe.PredictsMasks`, the class mixer) aims at
targets drawn as it draws them in training; any other two-parent mixer cannot aim: its own forward
draws the mix, against targets drawn alike (each attribute from the first parent with q ~ U(0, 1) per
pair). ``mixframe attribute-accuracy RUN...`` and ``mixframe evaluate RUN --metric attribute_accuracy``
compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mixframe import BuildContext, Component, Metric, MixframeError, PredictsMasks, RunView, blend, hookimpl, param, positive
from mixframe.kernel.interfaces import DataBundle

Predict = Callable[[Tensor], Tensor]


@attrs.frozen(kw_only=True)
class AttributeAccuracyConfig:
    pairs: int = param(2000, help="random test pairs, one target y_mix each", validator=positive)
    seed: int = param(0, help="seeds the classifier, the pairs, the targets and the masks")
    classifier_epochs: int = param(4, help="epochs of classifier training on the real training split", validator=positive)


def sample_masks(p: Tensor, generator: torch.Generator) -> Tensor:
    """m ~ Bernoulli(p), drawn on the CPU from ``generator`` so that pictures are reproducible."""
    return torch.bernoulli(p.detach().float().cpu(), generator=generator).to(p.device)



class AttributeClassifier(nn.Module):
    """A small CNN: three stride-2 convs, pooled to a 4x4 map (position attributes need where, not only what)."""

    def __init__(self, channels: int, num_attributes: int, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(2 * width * 16, num_attributes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def split_tensors(data: DataBundle, name: str, limit: int | None = None) -> tuple[Tensor, Tensor]:
    dataset = getattr(data, name)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    xs, ys = zip(*(dataset[i] for i in range(n)))
    return torch.stack(xs), torch.stack(ys).float()


def train_attribute_classifier(data: DataBundle, seed: int = 0, epochs: int = 4, batch_size: int = 128,
                               lr: float = 2e-3, limit: int | None = None) -> tuple[Predict, dict[str, float]]:
    """Fit the classifier on the real training split (seeded); returns ``predict`` (0/1) and its test accuracy."""
    if not data.spec.is_image or not data.spec.attribute_names:
        raise MixframeError("attribute-accuracy needs image data with binary attributes (label_kind attributes), "
                            "e.g. dsprites with labels: attributes")
    x, y = split_tensors(data, "train", limit)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttributeClassifier(data.spec.shape[0], y.shape[1])
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).split(batch_size):
                loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    model.eval()

    @torch.no_grad()
    def predict(images: Tensor) -> Tensor:
        return torch.cat([(model(b.cpu().float()) > 0).float() for b in images.split(512)])

    xt, yt = split_tensors(data, "test")
    stats = agreement(predict(xt), yt, data.spec.attribute_names)
    return predict, {f"classifier_test_{k}": v for k, v in stats.items()}


def agreement(predicted: Tensor, target: Tensor, names: tuple[str, ...] | list[str] = ()) -> dict[str, float]:
    """Fraction of attributes, of whole vectors, and per attribute where ``predicted`` equals ``target``."""
    same = predicted.round() == target.round()
    out = {"attribute_accuracy": float(same.float().mean()), "vector_accuracy": float(same.all(dim=1).float().mean())}
    for i, name in enumerate(names):
        out[f"accuracy_{name}"] = float(same[:, i].float().mean())
    return out


def uniform_targets(y1: Tensor, y2: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Targets for a mixer that cannot aim: each attribute from the first parent with probability q ~ U(0, 1) per pair
    (the class mixer's draw, so that every mixer is judged on the same kind of targets)."""
    q = torch.rand(len(y1), 1, generator=generator)
    from_first = torch.bernoulli(q.expand_as(y1).contiguous(), generator=generator)
    return from_first * y1 + (1 - from_first) * y2, from_first


@torch.no_grad()
def decode_mixes(run: Any, x1: Tensor, x2: Tensor, y_mix: Tensor, from_first: Tensor, seed: int) -> Tensor:
    """Decoded mixes of each pair, made the way the run's own mixer mixes.

    A class mixer aims at ``y_mix``: m ~ Bernoulli(masks_for(c)) with c = y_mix, or c = ``from_first``
    (m_y) for ``condition: sources`` (m = p when it was trained with the soft estimator). Any other
    two-parent mixer cannot aim; its own forward draws the mix and the targets are ignored.
    """
    mixer = run.mixer
    if mixer is None or getattr(mixer, "num_sources", 2) != 2:
        raise MixframeError(f"run {run.dir} has no two-parent mixer; attribute-accuracy compares mixes of pairs "
                            "(use a run with a mixer such as class_mixer, bernoulli or mixup)")
    h1, h2 = run.encode(x1), run.encode(x2)
    if isinstance(mixer, PredictsMasks):
        condition = y_mix if mixer.mask_condition == "y_mix" else from_first
        p = mixer.masks_for(condition.to(run.device)).float()
        m = p if mixer.soft_masks else sample_masks(p, torch.Generator().manual_seed(seed))
        codes = blend([h1, h2], torch.stack([m, 1 - m], dim=1).to(h1.dtype))
    else:
        with torch.random.fork_rng(devices=[run.device] if run.device.type == "cuda" else []):
            torch.manual_seed(seed)
            train = getattr(run.recipe, "train", None)
            size = train.batch_size if train is not None else 256
            # minibatches of the training batch size, so that a per-batch sampler draws as often as in training
            codes = torch.cat([mixer([a, b]).codes for a, b in zip(h1.split(size), h2.split(size))])
    return run.decode(codes)


def measure_mixes(run: Any, predict: Predict, pairs: int = 2000, seed: int = 0, split: str = "test") -> dict[str, float]:
    """How often the classifier reads y_mix in the decoded mixes of random test pairs (and two references).

    ``mix_*``: decoded mixes against y_mix. ``first_parent_*``: the real first parent x1 against
    y_mix, what a mixer that copies one parent would score. ``reconstruction_*``: decoded
    reconstructions against their own labels, the ceiling the decoder allows. The pairs come from ``split``.
    """
    x, y = split_tensors(run.data, split)
    y = y.float()
    if len(x) < 2:
        raise MixframeError("the test split needs at least two examples to form pairs")
    gen = torch.Generator().manual_seed(seed)
    i1 = torch.randint(len(x), (pairs,), generator=gen)
    i2 = (i1 + torch.randint(1, len(x), (pairs,), generator=gen)) % len(x)  # a different example
    mixer = run.mixer
    draw = mixer.draw_targets if isinstance(mixer, PredictsMasks) else uniform_targets
    y_mix, from_first = draw(y[i1], y[i2], gen)
    x_mix = decode_mixes(run, x[i1], x[i2], y_mix, from_first, seed).cpu()
    names = tuple(run.spec.attribute_names)
    out = {f"mix_{k}": v for k, v in agreement(predict(x_mix), y_mix, names).items()}
    out.update({f"first_parent_{k}": v for k, v in agreement(predict(x[i1]), y_mix).items()})
    x_rec = run.decode(run.encode(x)).cpu()
    out.update({f"reconstruction_{k}": v for k, v in agreement(predict(x_rec), y).items()})
    out["pairs_with_differing_attributes"] = float((y[i1] != y[i2]).any(dim=1).float().mean())
    return out


_CLASSIFIERS: dict[tuple[str, int, int], tuple[Predict, dict[str, float]]] = {}


def shared_classifier(run: RunView, seed: int, epochs: int) -> tuple[Predict, dict[str, float]]:
    """The classifier of the run's data (its recipe's data section), trained once per process for each seed and epochs."""
    key = (repr(run.recipe.data), seed, epochs)
    if key not in _CLASSIFIERS:
        _CLASSIFIERS[key] = train_attribute_classifier(run.data, seed=seed, epochs=epochs)
    return _CLASSIFIERS[key]


def attribute_accuracy(run: RunView, pairs: int = 2000, seed: int = 0, classifier_epochs: int = 4, split: str = "test") -> dict[str, float]:
    """Every value of the measurement for one run (see the module's docstring), on pairs of ``split``."""
    predict, stats = shared_classifier(run, seed, classifier_epochs)
    return {**stats, **measure_mixes(run, predict, pairs=pairs, seed=seed, split=split)}


class AttributeAccuracy(Metric):
    headline = "mix_attribute_accuracy"
    meanings = {
        "mix_attribute_accuracy": "fraction of attributes the classifier reads as aimed (y_mix) in decoded mixes; higher is better",
        "mix_vector_accuracy": "fraction of decoded mixes showing every aimed attribute; higher is better",
        "mix_accuracy_{name}": "fraction of decoded mixes showing the aimed value of this attribute",
        "first_parent_attribute_accuracy": "the same for the real first parent: what copying one parent scores",
        "first_parent_vector_accuracy": "whole vectors, for the real first parent",
        "first_parent_accuracy_{name}": "this attribute, for the real first parent",
        "reconstruction_attribute_accuracy": "attributes of reconstructions read as their own labels: the decoder's ceiling",
        "reconstruction_vector_accuracy": "whole vectors of reconstructions read as their own labels",
        "reconstruction_accuracy_{name}": "this attribute of reconstructions read as its own label",
        "classifier_test_attribute_accuracy": "the classifier on real test images: its own ceiling",
        "classifier_test_vector_accuracy": "whole vectors of real test images read right by the classifier",
        "classifier_test_accuracy_{name}": "this attribute of real test images read right by the classifier",
        "pairs_with_differing_attributes": "fraction of pairs whose parents differ in some attribute (the others test nothing)",
    }
    directions = {"mix_attribute_accuracy": "max", "mix_vector_accuracy": "max"}
    references = {"mix_attribute_accuracy": "first_parent_attribute_accuracy", "mix_vector_accuracy": "first_parent_vector_accuracy"}

    def __init__(self, config: AttributeAccuracyConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: RunView, split: str = "test") -> dict[str, float]:
        return attribute_accuracy(run, pairs=self.config.pairs, seed=self.config.seed, classifier_epochs=self.config.classifier_epochs,
                                  split=split)


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("attribute_labels", "its classifier learns the binary attributes of the data"),
                Requires("image_data", "its classifier is a small CNN on images"),
                Requires("mix", "it decodes mixes of pairs made by the run's two-parent mixer"))
    return [Component(kind="metric", name="attribute_accuracy", implementation=AttributeAccuracy, config=AttributeAccuracyConfig,
                      requires=requires, provides=(),
                      summary="how often a classifier reads the aimed attributes y_mix in decoded mixes (supervised AMR)")]
