"""A 2-D Archimedean spiral, the data distribution of AMR's spiral study (seed section 7.2).

The noiseless curve is ``(x, y) = r (cos theta, sin theta)`` for ``theta`` in ``[pi/2, theta_end]``
with ``theta_end = pi/2 + 2 pi turns``, and ``r`` growing linearly with ``theta`` from
``inner_radius`` to 1, so points lie in [-1, 1]^2. By default (``inner_radius: null``) the spiral
starts where an Archimedean spiral from the origin would, ``r = theta / theta_end`` (inner radius
``1 / (1 + 4 turns)``, 0.125 at 1.75 turns), and successive arms are ``2 pi / theta_end`` apart (0.5
with the default 1.75 turns); in general they are ``2 pi (1 - inner_radius) / (theta_end - pi/2)``
apart. ``turns``, ``inner_radius`` and ``noise`` are parameters so that other published spiral
set-ups can be matched. Each example is a point at a
curve parameter ``t ~ U(0, 1)`` (theta linear in t) plus isotropic Gaussian noise of std
``noise``. ``y`` is ``t`` (a float; ``label_kind`` is "none").

The bundle's ``generator`` is the :class:`SpiralCurve`: ``distance_to_manifold(points)`` gives each
point's Euclidean distance to the noiseless curve (against a dense sampling of it), and
``on_manifold_threshold`` is the distance under which a point counts as on the spiral:
3 x the noise std (at least 0.01), which keeps over 99% of real samples.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

from mixframe import Component, DataBundle, DataContext, DataSpec, MixframeError, hookimpl, in_range, param, positive
from mixframe_plugins.datasets._splits import seeded, split_tensors

THETA_START = math.pi / 2
DENSE_POINTS = 20000


@attrs.frozen(kw_only=True)
class SpiralConfig:
    n_train: int = param(5000, help="number of training points", validator=positive)
    n_val: int = param(1000, help="number of validation points", validator=positive)
    n_test: int = param(1000, help="number of test points", validator=positive)
    noise: float = param(0.02, help="std of the Gaussian noise added to each point (the arms are 0.5 apart at 1.75 turns)",
                         validator=in_range(0.0, 0.2))
    turns: float = param(1.75, help="number of turns of the spiral", validator=in_range(0.5, 4.0))
    inner_radius: float | None = param(None, help="radius where the spiral starts, the outer end being at 1 "
                                       "(null: 1 / (1 + 4 turns), an Archimedean spiral from the origin)",
                                       validator=in_range(0.0, 0.95))
    seed: int = param(0, help="fixes the points and the split")


class SpiralCurve:
    """The noiseless spiral: points from curve parameters, and distances of points to the curve."""

    def __init__(self, turns: float, noise: float, inner_radius: float | None = None) -> None:
        self.theta_end = THETA_START + 2 * math.pi * turns
        self.inner_radius = inner_radius
        self.on_manifold_threshold = max(3.0 * noise, 0.01)
        self.dense = self.points(torch.linspace(0.0, 1.0, DENSE_POINTS, dtype=torch.float64))

    def points(self, t: Tensor) -> Tensor:
        """Points (N, 2) on the curve at parameters t (N,) in [0, 1]."""
        theta = THETA_START + t * (self.theta_end - THETA_START)
        if self.inner_radius is None:
            r = theta / self.theta_end
        else:
            r = self.inner_radius + (1.0 - self.inner_radius) * t
        return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1)

    def distance_to_manifold(self, points: Tensor) -> Tensor:
        """Distance (N,) of each point (N, 2) to the noiseless curve."""
        if points.dim() != 2 or points.shape[1] != 2:
            raise MixframeError(f"distance_to_manifold needs points of shape (N, 2), got {tuple(points.shape)}")
        pts = points.detach().to("cpu", torch.float64)
        out = [torch.cdist(chunk, self.dense, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
               for chunk in pts.split(512)]
        return (torch.cat(out) if out else pts.new_zeros(0)).to(points.dtype).to(points.device)


def build(config: SpiralConfig, context: DataContext) -> DataBundle:
    """Noisy points on the spiral, cut into fixed train/val/test splits."""
    curve = SpiralCurve(config.turns, config.noise, config.inner_radius)
    gen = seeded(config.seed)
    total = config.n_train + config.n_val + config.n_test
    t = torch.rand(total, generator=gen, dtype=torch.float64)
    x = curve.points(t) + config.noise * torch.randn(total, 2, generator=gen, dtype=torch.float64)
    train, val, test = split_tensors(x.float(), t.float(), (config.n_train, config.n_val, config.n_test))
    return DataBundle(spec=DataSpec(shape=(2,), value_range=(-1.0, 1.0)), train=train, val=val, test=test,
                      label_kind="none", generator=curve)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="dataset", name="spiral", implementation=build, config=SpiralConfig,
                      provides=("vector_data", "known_manifold"),
                      summary="2-D Archimedean spiral with Gaussian noise; generator.distance_to_manifold for the on-spiral metric")]
