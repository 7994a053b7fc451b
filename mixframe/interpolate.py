"""Interpolation pictures: the same pairs of test examples interpolated by several runs, side by side.

For images this is the paper's Figures 7 to 11: for each pair a block of rows, first pixel-space
linear interpolation (the baseline every autoencoder should beat), then one row per run in the order
given. Each row holds x1, K decoded interpolants (the first and last are the reconstructions of x1
and x2), and x2. For 2-D data (the spiral) it draws each run's decoded interpolation paths over real
points instead, one panel per run.

Two ways to move between the codes h1 = f(x1) and h2 = f(x2):

* ``linear``: (1 - a) h1 + a h2 for a evenly spaced in [0, 1];
* ``bernoulli``: a hard mask over feature maps (axis 1 of the codes) that swaps progressively more
  of them: the C channels are put in a fixed random order (seeded) and at step j the first
  round(j C / (K - 1)) of them come from h2, the rest from h1.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs
import torch
from torch import Tensor

from mixframe.errors import MixframeError
from mixframe.interfaces import DataSpec

if TYPE_CHECKING:
    from mixframe.api import Run
from mixframe.runs import RunFolder

Mode = Literal["linear", "bernoulli"]
MODES: tuple[str, ...] = ("linear", "bernoulli")
SPLITS: tuple[str, ...] = ("train", "val", "test")
PIXEL = "pixel"


# ---------------------------------------------------------------------------------------------
# Loading and checking runs


def load_runs(run_dirs: Sequence[str | Path], device: str = "cpu") -> list[Run]:
    """Trained runs on one dataset (the same data section), checked before any model is built."""
    from mixframe.api import load_run

    if not run_dirs:
        raise MixframeError("no run folders given; pass one or more folders made by 'mixframe train'")
    folders = [RunFolder.open(d) for d in run_dirs]
    recipes = [f.read_recipe() for f in folders]
    first = recipes[0].data.to_dict()
    for folder, recipe in zip(folders[1:], recipes[1:]):
        if recipe.data.to_dict() != first:
            raise MixframeError(
                f"runs {folders[0].name} and {folder.name} use different datasets "
                f"({folders[0].name}: data {first}; {folder.name}: data {recipe.data.to_dict()}); "
                "interpolations are compared on the same examples, so pass runs whose recipes have the same data section")
    for folder in folders:
        if not folder.has_checkpoint:
            raise MixframeError(f"{folder.path} has no {RunFolder.CHECKPOINT} (the run never saved one); train or resume it first")
    return [load_run(f.path, device) for f in folders]


def pick_pairs(run: Run, pairs: int, split: str = "test", seed: int = 0) -> tuple[Tensor, Tensor]:
    """``pairs`` seeded random pairs of distinct examples from a split: the same for every run on that data."""
    if split not in SPLITS:
        raise MixframeError(f"unknown split {split!r}; choices: {', '.join(SPLITS)}")
    if pairs < 1:
        raise MixframeError(f"--pairs must be at least 1, got {pairs}")
    dataset = getattr(run.data, split)
    if 2 * pairs > len(dataset):
        raise MixframeError(f"the {split} split has {len(dataset)} examples, too few for {pairs} pairs; ask for at most {len(dataset) // 2}")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[: 2 * pairs].tolist()
    xs = torch.stack([dataset[i][0] for i in order])
    return xs[0::2], xs[1::2]  # pair i is examples 2i and 2i+1 of the order: asking for more pairs keeps the first ones


# ---------------------------------------------------------------------------------------------
# Interpolation


def check_steps(steps: int) -> None:
    if steps < 2:
        raise MixframeError(f"--steps must be at least 2 (the two ends), got {steps}")


def interpolation_weights(channels: int, steps: int, mode: Mode = "linear", seed: int = 0) -> Tensor:
    """``(steps, 2, channels)``: the weights of h1 and h2 at each step, from all h1 (first) to all h2 (last).

    ``linear``: (1 - a, a) for a evenly spaced in [0, 1]. ``bernoulli``: one seeded random order of
    the channels; at step j the first round(j C / (K - 1)) of them come from h2, so the count of
    swapped maps never decreases.
    """
    check_steps(steps)
    if mode == "linear":
        to_second = torch.linspace(0, 1, steps)[:, None].expand(steps, channels)
    elif mode == "bernoulli":
        order = torch.randperm(channels, generator=torch.Generator().manual_seed(seed))
        to_second = torch.zeros(steps, channels)
        for j in range(steps):
            to_second[j, order[: round(j * channels / (steps - 1))]] = 1.0
    else:
        raise MixframeError(f"unknown interpolation mode {mode!r}; choices: {', '.join(MODES)}")
    return torch.stack([1 - to_second, to_second], dim=1)


def pixel_interpolants(x1: Tensor, x2: Tensor, steps: int) -> Tensor:
    """``(pairs, steps, *data_shape)``: linear interpolation in data space, the baseline row."""
    check_steps(steps)
    alphas = torch.linspace(0, 1, steps).reshape(1, steps, *([1] * (x1.dim() - 1)))
    return (1 - alphas) * x1[:, None] + alphas * x2[:, None]


def interpolation_blocks(runs: Sequence[Run], x1: Tensor, x2: Tensor, steps: int, mode: Mode = "linear",
                         seed: int = 0) -> list[list[tuple[str, Tensor]]]:
    """One block per pair: rows ``(label, (steps + 2, *data_shape))`` = x1, interpolants, x2; pixel first."""
    x1, x2 = x1.cpu(), x2.cpu()
    per_row = [(PIXEL, pixel_interpolants(x1, x2, steps))]
    per_row += [(run.name, run.interpolate(x1, x2, steps, mode, seed)) for run in runs]
    return [[(label, torch.cat([x1[i, None], inner[i], x2[i, None]])) for label, inner in per_row] for i in range(len(x1))]


# ---------------------------------------------------------------------------------------------
# Drawing image rows


@attrs.frozen(kw_only=True)
class GridLayout:
    """Where everything goes in the picture, in pixels: labelled rows of square tiles, grouped in blocks."""

    tile: int
    rows_per_block: int
    blocks: int
    cols: int
    label_width: int
    pad: int = 2
    block_gap: int = 10
    header: int = 22

    @property
    def rows(self) -> int:
        return self.rows_per_block * self.blocks

    @property
    def width(self) -> int:
        return self.label_width + self.cols * (self.tile + self.pad) + self.pad

    @property
    def height(self) -> int:
        return self.header + self.rows * (self.tile + self.pad) + (self.blocks - 1) * self.block_gap + self.pad

    def cell(self, block: int, row: int, col: int) -> tuple[int, int]:
        """The top-left corner of a tile."""
        top = self.header + (block * self.rows_per_block + row) * (self.tile + self.pad) + block * self.block_gap + self.pad
        return self.label_width + col * (self.tile + self.pad) + self.pad, top


def tile_scale(height: int, width: int, target: int = 48) -> int:
    """Nearest-neighbour enlargement factor that makes small images readable (16 px digits -> 48 px)."""
    return max(1, target // max(height, width))


def _font(size: int):  # noqa: ANN202 - PIL font classes differ by build
    from PIL import ImageFont

    import matplotlib

    try:
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except OSError:
        return ImageFont.load_default()


def render_blocks(blocks: list[list[tuple[str, Tensor]]], spec: DataSpec, steps: int):  # noqa: ANN201 - returns (PIL image, layout)
    """The picture of labelled rows of images, and its layout."""
    import numpy as np
    from PIL import Image, ImageDraw

    from mixframe.pictures import to_unit

    _, height, width = spec.shape
    scale = tile_scale(height, width)
    font = _font(13)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [label for label, _ in blocks[0]]
    label_width = 12 + max(int(measure.textlength(label, font=font)) for label in labels)
    layout = GridLayout(tile=max(height, width) * scale, rows_per_block=len(blocks[0]), blocks=len(blocks),
                        cols=steps + 2, label_width=label_width)
    image = Image.new("RGB", (layout.width, layout.height), "white")
    draw = ImageDraw.Draw(image)
    heads = ["x1"] + [f"{j / (steps - 1):.2f}".rstrip("0").rstrip(".") for j in range(steps)] + ["x2"]
    for col, head in enumerate(heads):
        left, _ = layout.cell(0, 0, col)
        draw.text((left + layout.tile / 2, layout.header / 2), head, fill="black", font=font, anchor="mm")
    for b, block in enumerate(blocks):
        for r, (label, row) in enumerate(block):
            tiles = to_unit(row.float(), spec)
            tiles = torch.nn.functional.interpolate(tiles, scale_factor=scale, mode="nearest") if scale > 1 else tiles
            for col, t in enumerate(tiles):
                pixels = (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[..., :3]
                tile = Image.fromarray(pixels, "RGB")
                if tile.size != (layout.tile, layout.tile):  # non-square images are centred in their tile
                    canvas = Image.new("RGB", (layout.tile, layout.tile), "white")
                    canvas.paste(tile, ((layout.tile - tile.width) // 2, (layout.tile - tile.height) // 2))
                    tile = canvas
                image.paste(tile, layout.cell(b, r, col))
            _, top = layout.cell(b, r, 0)
            draw.text((layout.label_width - 6, top + layout.tile / 2), label, font=font, anchor="rm",
                      fill="dimgray" if label == PIXEL else "black")
    return image, layout


# ---------------------------------------------------------------------------------------------
# Drawing 2-D paths


def render_paths(runs: Sequence[Run], x1: Tensor, x2: Tensor, steps: int, mode: Mode, seed: int, split: str) -> bytes:
    """PNG bytes: one panel per run, its decoded interpolation paths over real points (pixel paths dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, _ = runs[0].split(split)
    real = real[:2000]
    pixel = pixel_interpolants(x1.cpu(), x2.cpu(), steps)
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 4.2), squeeze=False)
    for ax, run in zip(axes[0], runs):
        paths = run.interpolate(x1, x2, steps, mode, seed)
        ax.scatter(real[:, 0], real[:, 1], s=3, c="lightgray", label=f"real ({split})")
        for i in range(len(x1)):
            color = f"C{i % 10}"
            ax.plot(pixel[i, :, 0], pixel[i, :, 1], linestyle=":", linewidth=0.8, color=color)
            ax.plot(paths[i, :, 0], paths[i, :, 1], marker="o", markersize=3, linewidth=1.2, color=color)
            ax.scatter([x1[i, 0], x2[i, 0]], [x1[i, 1], x2[i, 1]], marker="x", s=40, color=color, zorder=3)
        ax.set_title(run.name, fontsize=9)
        ax.set_aspect("equal")
    axes[0][0].plot([], [], color="black", marker="o", markersize=3, label=f"decoded {mode} path")
    axes[0][0].plot([], [], color="black", linestyle=":", label="pixel (straight) path")
    axes[0][0].scatter([], [], marker="x", color="black", label="x1, x2")
    axes[0][0].legend(loc="best", fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# The whole picture


def interpolation_png(runs: Sequence[Run], pairs: int = 4, steps: int = 8, mode: Mode = "linear",
                      split: str = "test", seed: int = 0, x1: Tensor | None = None, x2: Tensor | None = None) -> bytes:
    """PNG bytes of the comparison picture for runs on one dataset (rows for images, panels for 2-D).

    The pairs are ``pairs`` seeded pairs from the data's ``split``, or your own ``x1``, ``x2`` (model
    input, e.g. from ``run.to_input``).
    """
    check_steps(steps)
    spec = runs[0].spec
    if x1 is None or x2 is None:
        x1, x2 = pick_pairs(runs[0], pairs, split, seed)
    if spec.is_image:
        image, _ = render_blocks(interpolation_blocks(runs, x1, x2, steps, mode, seed), spec, steps)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    if spec.shape != (2,):
        raise MixframeError(f"interpolate draws images (C, H, W) or 2-D points, not data of shape {spec.shape}")
    return render_paths(runs, x1, x2, steps, mode, seed, split)
