"""Shared pieces of the critic-owning regularizers: spectral norm, GAN losses, chance levels.

GAN losses take raw critic outputs (logits). ``bce`` is the standard GAN with the non-saturating
generator loss (targets 1 for the generator); ``least_squares`` is LSGAN with targets 0 (fake) and
1 (real) on the raw output. :func:`chance` gives the scores of a critic that learns nothing about
its input: ln 2 per BCE term and 0.25 per least-squares term when it judges one kind of fake.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from mixframe import BuildContext, Discriminator, MixframeError

LN2 = math.log(2.0)
TARGETS = ("reconstruction", "mix")
"""What a critic may judge as fake (its ``judge`` setting)."""


def check_judge(_inst: Any, _attr: Any, value: tuple[str, ...]) -> None:
    """The ``judge`` validator every critic's config shares: a non-empty list of distinct TARGETS."""
    unknown = [v for v in value if v not in TARGETS]
    if not value or unknown or len(set(value)) != len(value):
        raise ValueError(f"must be a non-empty list of distinct items from {list(TARGETS)}, got {list(value)!r}")


def build_body(context: BuildContext, owner: str) -> Discriminator:
    """A fresh critic body from the recipe's ``discriminator`` section."""
    if context.build_discriminator is None:
        raise MixframeError(f"the {owner} regularizer needs a critic: add a `discriminator:` section to the recipe")
    return context.build_discriminator()


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral-normalise every Conv and Linear layer of ``module`` (skipping ones already normalised)."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
            if not parametrize.is_parametrized(layer, "weight"):
                spectral_norm(layer)
    return module


def has_spectral_norm(layer: nn.Module) -> bool:
    """Whether ``layer``'s weight is spectral-normalised (for tests and logs)."""
    return parametrize.is_parametrized(layer, "weight") and any(
        type(p).__name__ == "_SpectralNorm" for p in layer.parametrizations["weight"])


def d_loss(out: Tensor, real: bool, kind: str) -> Tensor:
    """The critic's loss for outputs ``out`` that should be judged real (True) or fake (False)."""
    target = 1.0 if real else 0.0
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out, out.new_full(out.shape, target))
    return ((out - target) ** 2).mean()


def g_loss(out: Tensor, kind: str) -> Tensor:
    """The generator's loss: make the critic call ``out`` real (non-saturating for BCE)."""
    return d_loss(out, True, kind)


def chance(kind: str, num_fake_terms: int) -> tuple[float, float]:
    """Scores (real term, each fake term) of the best constant critic, one that learns nothing.

    With one real term and n fake terms of equal weight, the best constant output is the base rate
    s = 1 / (n + 1) (sigmoid output for BCE, raw output for least squares). For n = 1 that is the
    familiar ln 2 (BCE) or 0.25 (least squares) per term; for AMR's two fakes (reconstructions and
    mixes) a blind critic sits at ln 3 ~ 1.099 on reals and ln 1.5 ~ 0.405 on each fake (BCE), or
    4/9 and 1/9 (least squares), which is also where a critic ends when the generator wins.
    """
    s = 1.0 / (num_fake_terms + 1)
    if kind == "bce":
        return -math.log(s), -math.log(1.0 - s)
    return (1.0 - s) ** 2, s**2
