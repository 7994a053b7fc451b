"""k-way mixing: one mix made from k codes (the batch and k - 1 permutations of it).

``mixup``: convex weights w ~ Dirichlet(1, ..., 1) per example, shared over channels and positions,
h_mix = sum_i w_i h_i. ``bernoulli``: for each example and feature map one source is chosen
uniformly (a one-hot mask m), h_mix = sum_i m_i h_i. The sum matters: the authors' general-k code
overwrote the mix source by source, so only the last chosen source survived.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import torch
from torch import Tensor
from torch.nn import functional as F

from mixframe import BuildContext, Component, Mixer, MixframeError, MixResult, blend, hookimpl, in_range, param


@attrs.frozen(kw_only=True)
class KWayConfig:
    k: int = param(3, help="number of codes mixed into one (the batch plus k-1 random permutations of it)",
                   validator=in_range(2, None))
    mode: Literal["mixup", "bernoulli"] = param(
        "mixup", help="mixup: Dirichlet(1,...,1) weights per example; bernoulli: one source per example and feature map")


class KWayMixer(Mixer):
    """Mixes k sources with Dirichlet weights or a one-hot choice per feature map."""

    def __init__(self, config: KWayConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.num_sources = config.k

    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
        k = self.config.k
        if len(sources) != k:
            raise MixframeError(f"kway mixer with k: {k} got {len(sources)} sources; the engine must pass k batches of codes")
        h = sources[0]
        batch, channels = h.shape[0], h.shape[1]
        if self.config.mode == "mixup":
            # Sampled in float32: half-precision codes (autocast) have no Dirichlet sampler.
            concentration = torch.ones(k, device=h.device, dtype=torch.float32)
            w = torch.distributions.Dirichlet(concentration).sample((batch,)).to(h.dtype)  # (B, k)
            weights = w.unsqueeze(-1).expand(batch, k, channels)
        else:
            choice = torch.randint(k, (batch, channels), device=h.device)
            weights = F.one_hot(choice, k).to(h.dtype).permute(0, 2, 1)  # (B, k, C)
        return MixResult(codes=blend(sources, weights), weights=weights)


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    per_example = Provides("per_example_weight", when=lambda c: c.k == 2 and c.mode == "mixup", setting="k: 2, mode: mixup")
    return [Component(kind="mixer", name="kway", implementation=KWayMixer, config=KWayConfig, provides=("mix", per_example),
                      summary="k-way mixing of k codes: Dirichlet mixup weights or a one-hot source per feature map")]
