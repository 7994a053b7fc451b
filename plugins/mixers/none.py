"""No mixing: the plain autoencoder and the AE+GAN baseline.

The mixer returns the codes unchanged with one source of weight 1, so recipes that have no mixing
still go through the same engine path (a regularizer with ``on: [reconstruction]`` never looks at
the mix).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import Tensor

from mixframe import BuildContext, Component, Mixer, MixResult, hookimpl


@attrs.frozen(kw_only=True)
class NoneConfig:
    """No parameters."""


class NoneMixer(Mixer):
    """Identity "mix" of a single source."""

    num_sources = 1

    def __init__(self, config: NoneConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config

    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
        h = sources[0]
        weights = torch.ones(h.shape[0], 1, h.shape[1], device=h.device, dtype=h.dtype)
        return MixResult(codes=h, weights=weights)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="mixer", name="none", implementation=NoneMixer, config=NoneConfig, provides=(),
                      summary="no mixing: codes pass through unchanged (plain AE, AE+GAN)")]
