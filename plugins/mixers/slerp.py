"""Spherical interpolation of two codes: h_mix = slerp(h, h', t), t ~ U(0, 1) per example.

Each example's code is taken as one vector (all feature maps and positions); the mix moves along the
great circle from h to h' (the angle Omega between them), scaled so that both ends are the codes
themselves: ``sin((1 - t) Omega) / sin Omega * h + sin(t Omega) / sin Omega * h'``. For codes whose
norm carries little meaning (a Gaussian-like code) this keeps the mix at a typical norm, where a
linear mix of two distant codes falls towards the origin.

It is not a convex combination: the two coefficients sum to more than 1 for any angle. So the mixer
overrides ``Mixer.combine`` (the mix its weights describe), and its ``MixResult.weights`` say where
the mix lies, ``(1 - t, t)``: the share of each source along the arc. Nearly parallel codes (Omega
under ``eps``) are mixed linearly, the limit of the formula.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import Tensor

from mixframe import BuildContext, Component, Mixer, MixframeError, MixResult, Provides, hookimpl, in_range, param


@attrs.frozen(kw_only=True)
class SlerpConfig:
    low: float = param(0.0, help="t is drawn uniformly from [low, high]: the second code's share along the arc", validator=in_range(0, 1))
    high: float = param(1.0, help="upper end of t's range", validator=in_range(0, 1))
    eps: float = param(1e-4, help="angles (radians) below which two codes are mixed linearly", validator=in_range(0, 1))

    def __attrs_post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")


class SlerpMixer(Mixer):
    """Spherical linear interpolation of two codes, one position t per example."""

    def __init__(self, config: SlerpConfig, context: BuildContext) -> None:
        super().__init__()
        self.config = config

    def forward(self, sources: Sequence[Tensor], labels: Sequence[Tensor] | None = None) -> MixResult:
        h = sources[0]
        t = self.config.low + (self.config.high - self.config.low) * torch.rand(h.shape[0], 1, device=h.device, dtype=h.dtype)
        share = t.expand(h.shape[0], h.shape[1])
        weights = torch.stack([1 - share, share], dim=1)  # (B, 2, C): where the mix lies, not blend coefficients
        return MixResult(codes=self.combine(sources, weights), weights=weights)

    def combine(self, sources: Sequence[Tensor], weights: Tensor) -> Tensor:
        """The point at the second source's share ``t = weights[:, 1]`` (one per example) along the arc from the first."""
        if len(sources) != 2 or weights.dim() < 3 or weights.shape[1] != 2:
            raise MixframeError(f"slerp mixes two codes with weights (B, 2, C), got {len(sources)} sources and weights {tuple(weights.shape)}")
        h, h2 = sources
        t = weights[:, 1].reshape(len(h), -1)[:, :1]  # (B, 1): the same share for every feature map and position
        a, b = h.flatten(1), h2.flatten(1)
        cos = torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12).clamp(-1 + 1e-7, 1 - 1e-7)[:, None]
        omega = torch.arccos(cos)
        near = omega < self.config.eps
        safe = torch.where(near, torch.ones_like(omega), omega)
        first = torch.where(near, 1 - t, torch.sin((1 - t) * safe) / torch.sin(safe))
        second = torch.where(near, t, torch.sin(t * safe) / torch.sin(safe))
        return (first * a + second * b).reshape(h.shape)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="mixer", name="slerp", implementation=SlerpMixer, config=SlerpConfig,
                      provides=("mix", Provides("per_example_weight")),
                      summary="spherical interpolation of two codes, t ~ U(low, high) per example (not a convex blend)")]
