"""ACAI's synthetic "lines" benchmark: 32x32 images of one line from the centre at an angle.

Each image shows a segment of ``length`` px (16 by default: from the centre to the border) from
the image centre (16, 16) in the direction ``(cos a, -sin a)`` in (column, row) pixel coordinates,
i.e. the angle ``a ~ U(0, 2 pi)`` is measured anticlockwise on screen from "pointing right". The
line is antialiased: a pixel's intensity is ``clamp(1 - d, 0, 1)`` with ``d`` the distance in
pixels from its centre to the segment (a 1 px wide line). Intensities are scaled to [-1, 1]
(background -1). ``y`` is the angle (a float; ``label_kind`` "none").

The bundle's ``generator`` (:class:`LineRenderer`) offers ``render(angles)`` and
``angle_of(images)``, the nearest true line to each image: the best of ``grid`` (512) rendered
angles by Euclidean distance, with the distance reported as the root-mean-square pixel difference
(in the data's [-1, 1] scale). The lines benchmark metric uses it for the mean distance of
interpolants to the data and the smoothness of the angle along an interpolation path.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

from mixframe import Component, DataBundle, DataContext, DataSpec, MixframeError, hookimpl, in_range, param, positive
from mixframe_plugins.datasets._splits import seeded, split_tensors

SIZE = 32
GRID = 512


@attrs.frozen(kw_only=True)
class LinesConfig:
    n_train: int = param(10000, help="number of training images", validator=positive)
    n_val: int = param(1000, help="number of validation images", validator=positive)
    n_test: int = param(1000, help="number of test images", validator=positive)
    length: float = param(16.0, help="length of the line in pixels, from the centre (16 reaches the border as in ACAI)",
                          validator=in_range(1.0, 16.0))
    seed: int = param(0, help="fixes the angles and the split")


class LineRenderer:
    """Renders lines at given angles and finds the nearest true line to any image (mixframe.KnowsLineAngles)."""

    angle_period = 2 * math.pi  # a line from the centre at angle a differs from the one at a + pi

    def __init__(self, length: float) -> None:
        self.length = length
        centres = torch.arange(SIZE, dtype=torch.float32) + 0.5
        rows, cols = torch.meshgrid(centres, centres, indexing="ij")
        self.offsets = torch.stack([cols - SIZE / 2, rows - SIZE / 2], dim=-1).reshape(-1, 2)  # (P, 2) from the centre
        self._templates: dict[int, Tensor] = {}

    def render(self, angles: Tensor) -> Tensor:
        """Images (N, 1, 32, 32) in [-1, 1] of lines at ``angles`` (N,) in radians."""
        angles = angles.detach().reshape(-1).to("cpu", torch.float32)
        direction = torch.stack([torch.cos(angles), -torch.sin(angles)], dim=1)  # (N, 2) in (column, row)
        along = (self.offsets @ direction.T).T.clamp(0.0, self.length)  # (N, P)
        nearest = along.unsqueeze(-1) * direction.unsqueeze(1)  # (N, P, 2)
        distance = (self.offsets.unsqueeze(0) - nearest).norm(dim=-1)
        intensity = (1.0 - distance).clamp(0.0, 1.0)
        return (2.0 * intensity - 1.0).reshape(-1, 1, SIZE, SIZE)

    def angle_of(self, images: Tensor, grid: int = GRID) -> tuple[Tensor, Tensor]:
        """The angle (N,) of the nearest true line to each image (N, 1, 32, 32), among ``grid``
        equally spaced angles, and the root-mean-square pixel distance (N,) to that line."""
        if images.dim() < 3 or images.shape[-2:] != (SIZE, SIZE) or math.prod(images.shape[1:]) != SIZE * SIZE:
            raise MixframeError(f"angle_of needs images (N, 1, {SIZE}, {SIZE}), got shape {tuple(images.shape)}")
        if grid not in self._templates:
            self._templates[grid] = self.render(torch.arange(grid) * (2 * math.pi / grid)).reshape(grid, -1).double()
        templates = self._templates[grid]
        flat = images.detach().to("cpu", torch.float64).reshape(len(images), -1)
        squared = flat.square().sum(1, keepdim=True) + templates.square().sum(1) - 2 * flat @ templates.T  # (N, grid)
        best, index = squared.min(dim=1)
        rms = (best.clamp_min(0.0) / (SIZE * SIZE)).sqrt()
        return (index * (2 * math.pi / grid)).to(torch.float32), rms.to(torch.float32)


def build(config: LinesConfig, context: DataContext) -> DataBundle:
    """Lines at uniform random angles, cut into fixed train/val/test splits."""
    renderer = LineRenderer(config.length)
    total = config.n_train + config.n_val + config.n_test
    angles = torch.rand(total, generator=seeded(config.seed)) * (2 * math.pi)
    images = torch.cat([renderer.render(chunk) for chunk in angles.split(1024)])
    train, val, test = split_tensors(images, angles, (config.n_train, config.n_val, config.n_test))
    return DataBundle(spec=DataSpec(shape=(1, SIZE, SIZE), value_range=(-1.0, 1.0)), train=train, val=val, test=test,
                      label_kind="none", generator=renderer)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="dataset", name="lines", implementation=build, config=LinesConfig,
                      provides=("image_data", "line_angles"),
                      summary="ACAI's synthetic lines: 32x32 line from the centre at a random angle; generator.angle_of for the benchmark")]
