"""Bernoulli mixup: each feature map of the mix comes whole from one of the two parents.

h_mix = m h + (1 - m) h', with a mask m of one value per example and channel, broadcast over
positions. Two samplers:

* ``per_batch`` ("fm2" in the authors' code): one p ~ U(0, 1) for the whole batch, then m i.i.d.
  Bernoulli(p). This is the sampler the authors' experiment scripts call Bernoulli mixup
  (``mixer fm2``), so it is the default.
* ``per_example`` ("fm"): p ~ U(0, 1) per example and channel, then m ~ Bernoulli(p); marginally
  every mask value is a fair coin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import torch
from torch import Tensor

from mixframe import BuildContext, Component, Mixer, MixResult, blend, hookimpl, param


@attrs.frozen(kw_only=True)
class BernoulliConfig:
    sampler: Literal["per_batch", "per_example"] = param(
        "per_batch",
        help="per_batch ('fm2', the authors' Bernoulli mixup): one p ~ U(0,1) per batch, m iid Bernoulli(p); "
             "per_example ('fm'): p ~ U(0,1) per example and channel, m ~ Bernoulli(p)")


class BernoulliMixer(Mixer):
    """Mask mixing of two codes, one mask value per example and feature map."""

    interpolation = "bernoulli"

    def __init__(self, config: BernoulliConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config

    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
        h, h2 = sources[0], sources[1]
        batch, channels = h.shape[0], h.shape[1]
        if self.config.sampler == "per_batch":
            p = torch.rand((), device=h.device, dtype=h.dtype).expand(batch, channels).contiguous()
        else:
            p = torch.rand(batch, channels, device=h.device, dtype=h.dtype)
        m = torch.bernoulli(p)
        weights = torch.stack([m, 1 - m], dim=1)  # (B, 2, C): broadcast over positions
        return MixResult(codes=blend([h, h2], weights), weights=weights, extras={"p": p})


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="mixer", name="bernoulli", implementation=BernoulliMixer, config=BernoulliConfig, provides=("mix",),
                      summary="h_mix = m h + (1-m) h', m ~ Bernoulli(p) per example and feature map (p per batch or per example)")]
