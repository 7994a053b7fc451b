"""Consistency (supplementary section 7.2): a decoded mix should re-encode to the mix.

Adds ``weight`` (beta) * ||h_mix - f(g(h_mix))|| to the autoencoder loss, the norm being the mean
squared error (``l2``, the paper's formula) or the mean absolute error (``l1``, the authors' code).
The decoded mix ``x_mix`` is in data space, which is what the encoder takes. Gradients flow into both
sides, as in the paper's formula. The authors used beta = 0 for every quantitative result and
beta > 0 (e.g. 50) only for the qualitative interpolation figures. No critic.
"""

from __future__ import annotations

from typing import Literal

import attrs
from torch import Tensor

from mixframe import BuildContext, Component, MixframeError, Regularizer, Step, hookimpl, in_range, param


@attrs.frozen(kw_only=True)
class ConsistencyConfig:
    weight: float = param(1.0, help="beta, the weight of ||h_mix - f(g(h_mix))|| in the autoencoder loss",
                          validator=in_range(0, None))
    norm: Literal["l2", "l1"] = param("l2", help="l2: mean squared error (the paper); l1: mean absolute error (the authors' code)")


class ConsistencyRegularizer(Regularizer):
    """Re-encodes decoded mixes and pulls the result toward the mixed code."""

    gradient_targets = ("encoder", "decoder")  # h_mix and f(g(h_mix)) both come from the encoder, g(h_mix) from the decoder

    def __init__(self, config: ConsistencyConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config

    def autoencoder_loss(self, step: Step) -> dict[str, Tensor]:
        if step.mix is None or step.x_mix is None:
            raise MixframeError("the consistency regularizer needs decoded mixes: use a mixer (e.g. mixup), not none")
        h_mix = step.mix.codes
        diff = h_mix - step.encoder(step.x_mix)
        distance = diff.pow(2).mean() if self.config.norm == "l2" else diff.abs().mean()
        return {"consistency": self.config.weight * distance}


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    return [Component(kind="regularizer", name="consistency", implementation=ConsistencyRegularizer,
                      config=ConsistencyConfig, requires=(Requires("mix", "it re-encodes decoded mixes"),), provides=(),
                      summary="beta * ||h_mix - f(g(h_mix))|| (re-encoded decoded mixes)")]
