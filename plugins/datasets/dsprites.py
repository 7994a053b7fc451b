"""dSprites, rendered procedurally from its five generative factors (no download).

Factors, as in Matthey et al.'s dataset (index ranges in brackets):
``shape`` [3]: square, ellipse, heart; ``scale`` [6]: 0.5 to 1.0; ``orientation`` [40]: angles
``2 pi k / 40`` (a rotation on screen); ``posX`` [32]: left to right; ``posY`` [32]: top to bottom.
Images are binary: a pixel is on when its centre falls inside the shape. Layout in 64 px units: a
shape at scale 1 spans about 20 px (the square's side is 15 px, the ellipse 20 x 10 px, the heart
about 19 px wide), and its centre moves over [12, 52] px in x and y, so every shape stays in the
frame. ``size`` 32 renders the same layout on a 32 px grid (still binary).

The examples are distinct factor combinations drawn without replacement (so the splits are
disjoint) from all 737,280, fixed by ``seed``.

Labels (``labels``):
- "factors": ``y`` is the int64 factor-index vector (5,); ``label_kind`` "factors".
- "attributes": ``y`` is a float 0/1 vector of three attributes derived from the factors;
  ``label_kind`` "attributes":
  ``large``: scale index >= 3 (scale >= 0.8); ``right``: posX index >= 16 (right half);
  ``low``: posY index >= 16 (lower half of the image).
The spec lists the factor names and sizes in both cases (the factors are known either way).

The bundle's ``generator`` (:class:`DSpritesRenderer`) offers ``render(factors)`` and
``sample_factors(n, generator)`` for the disentanglement metrics.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mixframe import Component, DataBundle, DataContext, DataSpec, MixframeError, hookimpl, param, positive
from mixframe_plugins.datasets._splits import seeded

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
ATTRIBUTE_NAMES = ("large", "right", "low")
SCALES = torch.linspace(0.5, 1.0, 6)
RADIUS = 10.0  # pixels (64 px units) of one shape unit at scale 1
POSITION_RANGE = (12.0, 52.0)  # centre range in 64 px units
CHUNK = 1024


@attrs.frozen(kw_only=True)
class DSpritesConfig:
    size: Literal[64, 32] = param(64, help="image side in pixels (64 as in dSprites)")
    n_train: int = param(20000, help="number of training images (distinct random factor combinations)", validator=positive)
    n_val: int = param(2000, help="number of validation images", validator=positive)
    n_test: int = param(2000, help="number of test images", validator=positive)
    scale: Literal["unit", "signed"] = param("unit", help="pixel values: unit = {0, 1} (for BCE), signed = {-1, 1}")
    labels: Literal["factors", "attributes"] = param("factors", help="y: factor indices (5,), or 3 binary attributes large/right/low")
    seed: int = param(0, help="fixes which factor combinations are drawn and the split")


def attributes(factors: Tensor) -> Tensor:
    """The 0/1 attributes (N, 3) large, right, low of factor indices (N, 5)."""
    return torch.stack([factors[:, 1] >= 3, factors[:, 3] >= 16, factors[:, 4] >= 16], dim=1).float()


def unflatten(index: Tensor) -> Tensor:
    """Factor indices (N, 5) of flat indices into the 737,280 combinations (posY fastest)."""
    out = []
    for size in reversed(FACTOR_SIZES):
        out.append(index % size)
        index = index // size
    return torch.stack(out[::-1], dim=1)


def square(u: Tensor, v: Tensor) -> Tensor:
    """Inside a square of half-side 0.75 (the diamond at 45 degrees reaches 1.06)."""
    return (u.abs() <= 0.75) & (v.abs() <= 0.75)


def ellipse(u: Tensor, v: Tensor) -> Tensor:
    """Inside an ellipse of semi-axes 1 (along u) and 0.5."""
    return u.square() + (v / 0.5).square() <= 1.0


def heart(u: Tensor, v: Tensor) -> Tensor:
    """Inside the heart curve (x^2 + y^2 - 1)^3 <= x^2 y^3, shrunk to about the unit disc, lobes up."""
    x, y = u / 0.85, v / 0.85 + 0.125
    return (x.square() + y.square() - 1).pow(3) <= x.square() * y.pow(3)


SHAPES = (square, ellipse, heart)


class DSpritesRenderer:
    """Renders binary sprites from factor indices, in the data's pixel range."""

    def __init__(self, size: int, low: float, high: float) -> None:
        self.size, self.low, self.high = size, low, high
        centres = (torch.arange(size, dtype=torch.float32) + 0.5) * (64.0 / size)
        self.rows, self.cols = torch.meshgrid(centres, centres, indexing="ij")

    def sample_factors(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n independent uniform draws of the five factor indices: LongTensor (n, 5)."""
        return torch.stack([torch.randint(s, (n,), generator=generator) for s in FACTOR_SIZES], dim=1)

    def masks(self, factors: Tensor) -> Tensor:
        """Boolean masks (N, size, size) of the shapes."""
        factors = factors.long().cpu()
        if factors.dim() != 2 or factors.shape[1] != 5 or (factors < 0).any() or (factors >= torch.tensor(FACTOR_SIZES)).any():
            raise MixframeError(f"dSprites factors must be an integer tensor (N, 5) with indices below {FACTOR_SIZES}, "
                                f"got shape {tuple(factors.shape)}")
        out = []
        for f in factors.split(CHUNK):
            lo, hi = POSITION_RANGE
            cx = (lo + (hi - lo) * f[:, 3] / 31.0).view(-1, 1, 1)
            cy = (lo + (hi - lo) * f[:, 4] / 31.0).view(-1, 1, 1)
            unit = (RADIUS * SCALES[f[:, 1]]).view(-1, 1, 1)
            theta = (2 * math.pi * f[:, 2] / 40.0).view(-1, 1, 1)
            dx, dy = (self.cols - cx) / unit, (self.rows - cy) / unit
            # shape coordinates: u along the shape's axis, v pointing up on screen
            u = torch.cos(theta) * dx - torch.sin(theta) * dy
            v = -(torch.sin(theta) * dx + torch.cos(theta) * dy)
            shape = f[:, 0]
            mask = torch.zeros(u.shape, dtype=torch.bool)
            for k, inside in enumerate(SHAPES):
                sel = shape == k
                if sel.any():
                    mask[sel] = inside(u[sel], v[sel])
            out.append(mask)
        return torch.cat(out) if out else torch.zeros(0, self.size, self.size, dtype=torch.bool)

    def render(self, factors: Tensor) -> Tensor:
        """Images (N, 1, size, size) in the data's pixel range, from factor indices (N, 5)."""
        return (self.low + (self.high - self.low) * self.masks(factors).float()).unsqueeze(1)


class SpriteSet(Dataset):
    """Sprites stored as bits (uint8) and turned into floats in the data's range on access."""

    def __init__(self, masks: Tensor, labels: Tensor, low: float, high: float) -> None:
        self.masks, self.labels, self.low, self.high = masks.to(torch.uint8).unsqueeze(1), labels, low, high

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.low + (self.high - self.low) * self.masks[i].float(), self.labels[i]


def build(config: DSpritesConfig, context: DataContext) -> DataBundle:
    """Distinct random factor combinations, rendered, in fixed train/val/test splits."""
    total = config.n_train + config.n_val + config.n_test
    combos = math.prod(FACTOR_SIZES)
    if total > combos:
        raise MixframeError(f"dsprites: n_train + n_val + n_test = {total} exceeds the {combos} factor combinations; lower them")
    low, high = (0.0, 1.0) if config.scale == "unit" else (-1.0, 1.0)
    renderer = DSpritesRenderer(config.size, low, high)
    factors = unflatten(torch.randperm(combos, generator=seeded(config.seed))[:total])
    masks = renderer.masks(factors)
    labels = factors if config.labels == "factors" else attributes(factors)
    cuts = (0, config.n_train, config.n_train + config.n_val, total)
    train, val, test = (SpriteSet(masks[a:b], labels[a:b], low, high) for a, b in zip(cuts[:-1], cuts[1:]))
    spec = DataSpec(shape=(1, config.size, config.size), value_range=(low, high), factor_names=FACTOR_NAMES, factor_sizes=FACTOR_SIZES,
                    attribute_names=ATTRIBUTE_NAMES if config.labels == "attributes" else ())
    return DataBundle(spec=spec, train=train, val=val, test=test, label_kind=config.labels, generator=renderer)


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    unit = Provides("unit_range", when=lambda c: c.scale == "unit", setting="scale: unit")
    attributes = Provides("attribute_labels", when=lambda c: c.labels == "attributes", setting="labels: attributes")
    return [Component(kind="dataset", name="dsprites", implementation=build, config=DSpritesConfig,
                      provides=("image_data", "known_factors", attributes, unit),
                      summary="dSprites rendered from its 5 factors (offline); factor or attribute labels; generator.render for metrics")]
