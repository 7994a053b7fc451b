"""Mixup in latent space: h_mix = alpha h + (1 - alpha) h', alpha ~ U(0, 1).

One alpha per example shared over channels and positions (the paper's Equation 4), or one per
example and channel (``per_channel``). ``fold`` folds alpha into [0, 0.5] as ACAI does, so that
the mix is always closer to the partner and the critic's target alpha is identifiable.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import Tensor

from mixframe import BuildContext, Component, Mixer, MixResult, blend, hookimpl, param


@attrs.frozen(kw_only=True)
class MixupConfig:
    per_channel: bool = param(False, help="draw one alpha per example and channel instead of one per example")
    fold: bool = param(False, help="fold alpha into [0, 0.5] (alpha <- 0.5 - |alpha - 0.5|), as ACAI does")


class MixupMixer(Mixer):
    """Convex combination of two codes with a uniform random weight."""

    def __init__(self, config: MixupConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config

    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
        h, h2 = sources[0], sources[1]
        channels = h.shape[1]
        alpha = torch.rand(h.shape[0], channels if self.config.per_channel else 1, device=h.device, dtype=h.dtype)
        if self.config.fold:
            alpha = 0.5 - (alpha - 0.5).abs()
        alpha = alpha.expand(h.shape[0], channels)
        weights = torch.stack([alpha, 1 - alpha], dim=1)  # (B, 2, C): broadcast over positions
        return MixResult(codes=blend([h, h2], weights), weights=weights)


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    per_example = Provides("per_example_weight", when=lambda c: not c.per_channel, setting="per_channel: false")
    return [Component(kind="mixer", name="mixup", implementation=MixupMixer, config=MixupConfig, provides=("mix", per_example),
                      summary="h_mix = a h + (1-a) h', a ~ U(0,1) per example (or per channel); optional ACAI folding")]
