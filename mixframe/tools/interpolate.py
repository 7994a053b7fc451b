"""Interpolation pictures: the same pairs of test examples interpolated by several runs, side by side.

For images (the default layout): for each pair a block of rows, first pixel-space
linear interpolation (the baseline every autoencoder should beat), then one row per run in the order
given. Each row holds x1, K decoded interpolants (the first and last are the reconstructions of x1
and x2), and x2. For 2-D data (the spiral) it draws each run's decoded interpolation paths over real
points instead, one panel per run.

:func:`paper_figure_png` draws the seed's own layout: per pair the two real images once, at the
block's left and right ends, with the pixel-space row and one row per run between them, a title
naming the mixing mode (mixup or Bernoulli mixup) and a caption naming the rows.
The numbers on such paths (how evenly they move, whether midpoints lean to one end, how far midpoints
are from real examples) are the ``paths`` metric plugin's (``mixframe_plugins.metrics.paths``).

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
from typing import TYPE_CHECKING

import attrs
import torch
from torch import Tensor

from mixframe.errors import MixframeError
from mixframe.kernel.interfaces import MODES as MODES
from mixframe.kernel.interfaces import DataSpec, Mode, check_steps, to_unit

if TYPE_CHECKING:
    from mixframe.runs.api import Run
from mixframe.runs.folder import RunFolder

SPLITS: tuple[str, ...] = ("train", "val", "test")
PIXEL = "pixel"


# ---------------------------------------------------------------------------------------------
# Loading and checking runs


def load_runs(run_dirs: Sequence[str | Path], device: str = "cpu") -> list[Run]:
    """Trained runs on one dataset (the same data section), checked before any model is built."""
    from mixframe.runs.api import load_run

    if not run_dirs:
        raise MixframeError("no run folders given; pass one or more folders made by 'mixframe train'")
    folders = [RunFolder.open(d) for d in run_dirs]
    recipes = [f.read_recipe(for_training=False) for f in folders]
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


def pixel_interpolants(x1: Tensor, x2: Tensor, steps: int) -> Tensor:
    """``(pairs, steps, *data_shape)``: linear interpolation in data space, the baseline row."""
    check_steps(steps)
    alphas = torch.linspace(0, 1, steps).reshape(1, steps, *([1] * (x1.dim() - 1)))
    return (1 - alphas) * x1[:, None] + alphas * x2[:, None]


def interpolation_blocks(runs: Sequence[Run], x1: Tensor, x2: Tensor, steps: int, mode: Mode = "linear",
                         seed: int = 0, labels: Sequence[str] | None = None) -> list[list[tuple[str, Tensor]]]:
    """One block per pair: rows ``(label, (steps + 2, *data_shape))`` = x1, interpolants, x2; pixel first."""
    x1, x2 = x1.cpu(), x2.cpu()
    per_row = [(PIXEL, pixel_interpolants(x1, x2, steps))]
    per_row += [(name, run.interpolate(x1, x2, steps, mode, seed)) for run, name in zip(runs, run_names(runs, labels))]
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
    import matplotlib
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except OSError:
        return ImageFont.load_default()


def render_blocks(blocks: list[list[tuple[str, Tensor]]], spec: DataSpec, steps: int):  # noqa: ANN201 - returns (PIL image, layout)
    """The picture of labelled rows of images, and its layout."""
    import numpy as np
    from PIL import Image, ImageDraw

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


def render_paths(runs: Sequence[Run], x1: Tensor, x2: Tensor, steps: int, mode: Mode, seed: int, split: str,
                 labels: Sequence[str] | None = None) -> bytes:
    """PNG bytes: one panel per run, its decoded interpolation paths over real points (pixel paths dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, _ = runs[0].split(split)
    real = real[:2000]
    pixel = pixel_interpolants(x1.cpu(), x2.cpu(), steps)
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 4.2), squeeze=False)
    for ax, run, name in zip(axes[0], runs, run_names(runs, labels)):
        paths = run.interpolate(x1, x2, steps, mode, seed)
        ax.scatter(real[:, 0], real[:, 1], s=3, c="lightgray", label=f"real ({split})")
        for i in range(len(x1)):
            color = f"C{i % 10}"
            ax.plot(pixel[i, :, 0], pixel[i, :, 1], linestyle=":", linewidth=0.8, color=color)
            ax.plot(paths[i, :, 0], paths[i, :, 1], marker="o", markersize=3, linewidth=1.2, color=color)
            ax.scatter([x1[i, 0], x2[i, 0]], [x1[i, 1], x2[i, 1]], marker="x", s=40, color=color, zorder=3)
        ax.set_title(name, fontsize=9)
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
                      split: str = "test", seed: int = 0, x1: Tensor | None = None, x2: Tensor | None = None,
                      labels: Sequence[str] | None = None) -> bytes:
    """PNG bytes of the comparison picture for runs on one dataset (rows for images, panels for 2-D).

    The pairs are ``pairs`` seeded pairs from the data's ``split``, or your own ``x1``, ``x2`` (model
    input, e.g. from ``run.to_input``). ``labels`` name the runs' rows (default: their folders' names).
    """
    labels = run_names(runs, labels)  # a wrong count is said before any work
    check_steps(steps)
    spec = runs[0].spec
    if x1 is None or x2 is None:
        x1, x2 = pick_pairs(runs[0], pairs, split, seed)
    if spec.is_image:
        image, _ = render_blocks(interpolation_blocks(runs, x1, x2, steps, mode, seed, labels), spec, steps)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    if spec.shape != (2,):
        raise MixframeError(f"interpolate draws images (C, H, W) or 2-D points, not data of shape {spec.shape}")
    return render_paths(runs, x1, x2, steps, mode, seed, split, labels)


def between(run: Run, first: str | Path, second: str | Path) -> tuple[Tensor, Tensor]:
    """Two of your own picture files as model input ``(1, *shape)`` each, prepared as the run's training pictures were."""
    x = run.to_input([Path(first), Path(second)])
    return x[:1], x[1:]


def interpolation_gif(run: Run, x1: Tensor, x2: Tensor, steps: int = 8, mode: Mode = "linear", seed: int = 0,
                      frame_ms: int = 250, side: int = 128) -> bytes:
    """An animated GIF (bytes) of ``run.interpolate(x1, x2)`` for one pair: the decoded path from f(x1) to f(x2) and back,
    each frame enlarged (nearest neighbour) to about ``side`` pixels and captioned with its weight a."""
    from PIL import Image, ImageDraw

    check_steps(steps)
    if not run.spec.is_image:
        raise MixframeError(f"an animated GIF shows pictures; run {run.name} models data of shape {run.spec.shape}: write a .png")
    frames = run.to_images(run.interpolate(x1[:1], x2[:1], steps, mode, seed)[0])
    scale = max(1, side // max(frames[0].size))
    font = _font(12)
    shown = []
    for j, frame in enumerate(frames):
        big = frame.convert("RGB").resize((frame.width * scale, frame.height * scale), Image.Resampling.NEAREST)
        canvas = Image.new("RGB", (big.width, big.height + 18), "white")
        canvas.paste(big, (0, 0))
        weight = j / (steps - 1) if mode == "linear" else None
        text = f"a = {weight:.2f}" if weight is not None else f"{j}/{steps - 1} maps from x2"
        ImageDraw.Draw(canvas).text((4, big.height + 2), text, fill="black", font=font)
        shown.append(canvas)
    loop = shown + shown[-2:0:-1]  # there and back
    buffer = io.BytesIO()
    loop[0].save(buffer, format="GIF", save_all=True, append_images=loop[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# The paper's layout (seed Figures 7 to 11 and 13)

MODE_TITLES = {
    "linear": "mixup (Eq. 4): decoded (1 - a) f(x1) + a f(x2), a from 0 to 1",
    "bernoulli": "Bernoulli mixup (Eq. 5): decoded codes taking progressively more feature maps from f(x2)",
}


@attrs.frozen(kw_only=True)
class PaperLayout:
    """Where the paper-layout picture puts everything, in pixels.

    Each pair is a block: the real x1 on the left and the real x2 on the right, vertically centred
    on the block, and between them ``rows_per_block`` rows of ``steps`` tiles, the pixel-space row
    first, then one row per run. Blocks stack in ``columns`` columns; the row labels stand left of
    the first column. A title line and the column heads are above, a caption line below.
    """

    tile: int
    steps: int
    rows_per_block: int
    blocks: int
    columns: int
    label_width: int
    pad: int = 2
    end_gap: int = 8
    block_gap: int = 12
    column_gap: int = 24
    title: int = 22
    heads: int = 18
    caption: int = 22

    @property
    def block_rows(self) -> int:
        return -(-self.blocks // self.columns)

    @property
    def block_width(self) -> int:
        return 2 * self.tile + 2 * self.end_gap + self.steps * (self.tile + self.pad) - self.pad

    @property
    def block_height(self) -> int:
        return self.rows_per_block * (self.tile + self.pad) - self.pad

    @property
    def width(self) -> int:
        return self.label_width + self.columns * self.block_width + (self.columns - 1) * self.column_gap + 2 * self.pad

    @property
    def height(self) -> int:
        return self.title + self.heads + self.block_rows * (self.block_height + self.block_gap) - self.block_gap + self.caption

    def origin(self, block: int) -> tuple[int, int]:
        """The top-left corner of a block's x1 column."""
        column, row = block % self.columns, block // self.columns
        return (self.label_width + self.pad + column * (self.block_width + self.column_gap),
                self.title + self.heads + row * (self.block_height + self.block_gap))

    def end(self, block: int, side: int) -> tuple[int, int]:
        """The top-left corner of a real end image: x1 (side 0) or x2 (side 1)."""
        left, top = self.origin(block)
        top += (self.block_height - self.tile) // 2
        return (left, top) if side == 0 else (left + self.block_width - self.tile, top)

    def cell(self, block: int, row: int, step: int) -> tuple[int, int]:
        """The top-left corner of interpolant ``step`` (0 .. steps - 1) of a row (0 = pixel space)."""
        left, top = self.origin(block)
        return left + self.tile + self.end_gap + step * (self.tile + self.pad), top + row * (self.tile + self.pad)


def run_names(runs: Sequence[Run], labels: Sequence[str] | None = None) -> list[str]:
    """The runs' row labels: ``labels``, one per run in order, or the run folders' names."""
    if labels is not None and len(labels) != len(runs):
        raise MixframeError(f"{len(labels)} label(s) given for {len(runs)} run(s); give one label per run, in the same order")
    return list(labels) if labels is not None else [run.name for run in runs]


def row_labels(runs: Sequence[Run], labels: Sequence[str] | None = None) -> list[str]:
    """'(a) pixel', then '(b) <label or run name>' per run, as the paper's captions letter its rows."""
    names = [PIXEL, *run_names(runs, labels)]
    return [f"({chr(ord('a') + i)}) {name}" for i, name in enumerate(names)]


def paper_rows(runs: Sequence[Run], x1: Tensor, x2: Tensor, steps: int, mode: Mode = "linear", seed: int = 0) -> Tensor:
    """``(pairs, 1 + runs, steps, *data_shape)``: per pair the pixel-space row, then each run's decoded row."""
    x1, x2 = x1.cpu(), x2.cpu()
    rows = [pixel_interpolants(x1, x2, steps), *(run.interpolate(x1, x2, steps, mode, seed) for run in runs)]
    return torch.stack(rows, dim=1)


def render_paper(x1: Tensor, x2: Tensor, rows: Tensor, spec: DataSpec, labels: Sequence[str], mode: Mode,
                 columns: int = 1, ends: str = "real test images"):  # noqa: ANN201 - returns (PIL image, layout)
    """The paper-layout picture of ``rows`` (from :func:`paper_rows`) between the real ``x1``, ``x2``, and its layout."""
    import numpy as np
    from PIL import Image, ImageDraw

    pairs, rows_per_block, steps = rows.shape[:3]
    _, height, width = spec.shape
    scale = tile_scale(height, width, target=64)
    font, small = _font(13), _font(11)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    layout = PaperLayout(tile=max(height, width) * scale, steps=steps, rows_per_block=rows_per_block, blocks=pairs,
                         columns=max(1, min(columns, pairs)), label_width=12 + max(int(measure.textlength(s, font=font)) for s in labels))
    title_width = int(measure.textlength(MODE_TITLES[mode], font=font)) + 2 * layout.pad
    if layout.width < title_width:  # a narrow picture widens its label column so that the title fits
        layout = attrs.evolve(layout, label_width=layout.label_width + title_width - layout.width)
    caption = (f"x1, x2: {ends}. Rows per pair, top to bottom: {', '.join(labels)}. "
               "The pixel row starts at x1 and ends at x2; a run's row starts and ends at its reconstructions of them.")
    caption_lines = wrap(caption, layout.width - 2 * layout.pad, small, measure)
    layout = attrs.evolve(layout, caption=8 + CAPTION_LINE * len(caption_lines))
    image = Image.new("RGB", (layout.width, layout.height), "white")
    draw = ImageDraw.Draw(image)

    def paste(x: Tensor, corner: tuple[int, int]) -> None:
        tile = to_unit(x[None].float(), spec)
        tile = torch.nn.functional.interpolate(tile, scale_factor=scale, mode="nearest")[0] if scale > 1 else tile[0]
        pixels = (tile.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[..., :3]
        picture = Image.fromarray(pixels, "RGB")
        offset = ((layout.tile - picture.width) // 2, (layout.tile - picture.height) // 2)  # non-square images centred
        image.paste(picture, (corner[0] + offset[0], corner[1] + offset[1]))

    draw.text((layout.pad, layout.title // 2), MODE_TITLES[mode], fill="black", font=font, anchor="lm")
    heads = [f"{j / (steps - 1):.2f}".rstrip("0").rstrip(".") for j in range(steps)]
    for column in range(layout.columns):
        for side, head in ((0, "x1"), (1, "x2")):
            left, _ = layout.end(column, side)
            draw.text((left + layout.tile / 2, layout.title + layout.heads / 2), head, fill="black", font=small, anchor="mm")
        for j, head in enumerate(heads):
            left, _ = layout.cell(column, 0, j)
            draw.text((left + layout.tile / 2, layout.title + layout.heads / 2), head, fill="dimgray", font=small, anchor="mm")
    for b in range(pairs):
        paste(x1[b], layout.end(b, 0))
        paste(x2[b], layout.end(b, 1))
        for r in range(rows_per_block):
            for j in range(steps):
                paste(rows[b, r, j], layout.cell(b, r, j))
            if b % layout.columns == 0:
                _, top = layout.cell(b, r, 0)
                draw.text((layout.label_width - 6, top + layout.tile / 2), labels[r], font=font, anchor="rm",
                          fill="dimgray" if r == 0 else "black")
    caption_top = layout.height - layout.caption + 4
    for k, line in enumerate(caption_lines):
        draw.text((layout.pad, caption_top + k * CAPTION_LINE), line, fill="dimgray", font=small, anchor="lt")
    return image, layout


CAPTION_LINE = 15


def wrap(text: str, width: int, font, measure) -> list[str]:  # noqa: ANN001 - PIL font and draw objects
    """``text`` broken at spaces into lines no wider than ``width`` pixels (a longer word stands alone)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and measure.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def paper_figure_png(runs: Sequence[Run], pairs: int = 4, steps: int = 8, mode: Mode = "linear", split: str = "test",
                     seed: int = 0, x1: Tensor | None = None, x2: Tensor | None = None, labels: Sequence[str] | None = None,
                     columns: int = 1) -> bytes:
    """PNG bytes of the paper's layout (seed Figures 7 to 11 and 13) for image runs on one dataset.

    For each pair: the two real images at the ends, the pixel-space row, then one row per run, in
    the order given (the paper's order is pixel, AE+GAN, ACAI, AMR). ``mode`` is how codes are
    mixed along the rows: "linear" (mixup, Figures 7, 9, 13) or "bernoulli" (Bernoulli mixup,
    Figures 8, 10, 11); any run can be drawn either way, whatever mixer it was trained with.
    ``labels`` name the runs' rows (default: the run folders' names). The pairs are ``pairs``
    seeded pairs from ``split``, or your own ``x1``, ``x2`` (model input, e.g. from ``run.to_input``).
    """
    check_steps(steps)
    if mode not in MODES:
        raise MixframeError(f"unknown interpolation mode {mode!r}; choices: {', '.join(MODES)}")
    if not runs:
        raise MixframeError("no runs given; pass one or more trained runs")
    spec = runs[0].spec
    if not spec.is_image:
        raise MixframeError(f"the paper layout draws images, and these runs model data of shape {spec.shape}; "
                            "use the default layout (interpolation_png, or mixframe interpolate without --layout paper)")
    names = row_labels(runs, labels)
    if x1 is None or x2 is None:
        x1, x2 = pick_pairs(runs[0], pairs, split, seed)
        ends = f"real {split} images"
    else:
        x1, x2 = runs[0]._batch(x1.float()), runs[0]._batch(x2.float())
        ends = "the images given"
    image, _ = render_paper(x1.cpu(), x2.cpu(), paper_rows(runs, x1, x2, steps, mode, seed), spec, names, mode, columns, ends)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
