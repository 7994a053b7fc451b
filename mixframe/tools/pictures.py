"""Pictures: interpolation grids, 2-D mix scatter plots, loss curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from mixframe.kernel.interfaces import LEVEL_SUFFIX, VALIDATION_LOSS, DataBundle, DataSpec, to_unit
from mixframe.runs.folder import png_bytes, write_file


def first_pairs(data: DataBundle, pairs: int, split: str = "val") -> tuple[Tensor, Tensor]:
    """``pairs`` fixed pairs from a split: examples 0..n-1 against n..2n-1 (the same every call)."""
    dataset = getattr(data, split)
    n = min(pairs, len(dataset) // 2)
    xs = torch.stack([dataset[i][0] for i in range(2 * n)])
    return xs[:n], xs[n:]


@torch.no_grad()
def latent_interpolations(encoder, decoder, x1: Tensor, x2: Tensor, steps: int) -> Tensor:  # noqa: ANN001
    """``(pairs, steps, *shape)``: decoded linear interpolations from f(x1) (first) to f(x2) (last)."""
    h1, h2 = encoder(x1), encoder(x2)
    alphas = torch.linspace(0, 1, steps, device=h1.device)
    rows = [decoder.to_data(decoder((1 - a) * h1 + a * h2)) for a in alphas]
    return torch.stack(rows, dim=1)


REAL_FRAME = (0.90, 0.55, 0.0)  # orange: the frame around real images in a grid


def font(size: int):  # noqa: ANN201 - PIL font classes differ by build
    """DejaVu Sans (shipped with matplotlib) at ``size`` px, else PIL's default font."""
    import matplotlib
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except OSError:
        return ImageFont.load_default()


def wrap_text(text: str, width: int, face, measure) -> list[str]:  # noqa: ANN001 - PIL font and draw objects
    """``text`` broken into lines no wider than ``width`` pixels."""
    lines: list[str] = []
    for word in text.split():
        if lines and measure.textlength(f"{lines[-1]} {word}", font=face) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def save_rows(rows: list[Tensor], spec: DataSpec, path: Path, real_columns: tuple[int, ...] = (),
              heads: Sequence[str] = (), caption: str = "") -> None:
    """Save rows of images (each ``(n, C, H, W)``) as one grid picture (PNG, RGB).

    The columns in ``real_columns`` (indices, negative from the end) hold real images: each is set
    apart by a wider gap and framed in orange, so that a reader tells them from decoded ones.
    ``heads`` label the columns above the first row; ``caption`` is set below the grid, wrapped to its width.
    """
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    ncol = rows[0].shape[0]
    images = to_unit(torch.cat(rows).cpu().float(), spec)
    if images.shape[-1] < 48:  # small images are enlarged (nearest neighbour) so that the grid is readable
        images = torch.nn.functional.interpolate(images, scale_factor=48 // images.shape[-1], mode="nearest")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    height, width = images.shape[-2:]
    pad, gap, frame = 4, 8, 2  # white between tiles; more beside a real column; its frame's width (within the white)
    real = {c % ncol for c in real_columns}
    lefts, x = [], pad
    for c in range(ncol):
        x += gap if c in real and c > 0 else 0
        lefts.append(x)
        x += width + pad + (gap if c in real and c < ncol - 1 else 0)
    head = 18 if heads else 0
    canvas = torch.ones(3, head + pad + len(rows) * (height + pad), x)
    colour = torch.tensor(REAL_FRAME)[:, None, None]
    for i, tile in enumerate(images):
        r, c = divmod(i, ncol)
        top, left = head + pad + r * (height + pad), lefts[c]
        if c in real:
            canvas[:, top - frame:top + height + frame, left - frame:left + width + frame] = colour
        canvas[:, top:top + height, left:left + width] = tile[:3]
    pixels = (canvas.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    picture = Image.fromarray(pixels)
    if heads or caption:
        small = font(11)
        draw = ImageDraw.Draw(picture)
        for c, text in enumerate(heads):
            draw.text((lefts[c] + width / 2, head / 2 + 2), text, fill="black", font=small, anchor="mm")
        lines = wrap_text(caption, picture.width - 2 * pad, small, draw) if caption else []
        if lines:
            framed = Image.new("RGB", (picture.width, picture.height + 4 + 14 * len(lines)), "white")
            framed.paste(picture, (0, 0))
            draw = ImageDraw.Draw(framed)
            for k, line in enumerate(lines):
                draw.text((pad, picture.height + 2 + 14 * k), line, fill=(60, 60, 60), font=small)
            picture = framed
    write_file(path, png_bytes(picture))  # atomic: a full disk leaves the previous picture or none, never half of one


def alpha_heads(steps: int) -> list[str]:
    """Column heads of an interpolation row: x1, the weights a of f(x2) from 0 to 1, x2."""
    return ["x1", *(f"a={j / (steps - 1):.2f}".replace("0.00", "0").replace("1.00", "1") for j in range(steps)), "x2"]


def grid_caption(epoch: int | None, steps: int) -> str:
    """What a training grid shows, in words, so that the picture needs no documentation beside it."""
    when = f"after epoch {epoch}" if epoch is not None else "at the end of training"
    return (f"Validation pairs {when}. Each row: the real x1 and x2 (orange frames) at the ends; between them the decoder's "
            f"output for the code (1 - a) f(x1) + a f(x2), {steps} values of a from 0 to 1 (a = 0 and a = 1: the reconstructions).")


@torch.no_grad()
def save_training_grid(model, data: DataBundle, path: Path, device: torch.device, pairs: int = 8, steps: int = 8,  # noqa: ANN001
                       epoch: int | None = None) -> None:
    """The picture saved during training: image interpolations, or mixes over real points for 2-D data.

    Each image row is x1 (real, framed), the decoded interpolation from f(x1) to f(x2) (its ends are the
    reconstructions), then x2 (real, framed); the columns are labelled with a, and a caption says what the rows are."""
    model.eval()
    x1, x2 = (t.to(device) for t in first_pairs(data, pairs))
    if data.spec.is_image:
        inner = latent_interpolations(model.encoder, model.decoder, x1, x2, steps)
        rows = [torch.cat([a[None], row, b[None]]) for a, row, b in zip(x1, inner, x2)]
        save_rows(rows, data.spec, path, real_columns=(0, -1), heads=alpha_heads(steps), caption=grid_caption(epoch, steps))
    else:
        save_mix_scatter(model.encoder, model.decoder, data, path, device)


def random_mix_weights(n: int) -> tuple[Tensor, Tensor]:
    """A fixed draw of partners and mixup weights for ``n`` points, the same in every picture."""
    gen = torch.Generator().manual_seed(0)
    return torch.randperm(n, generator=gen), torch.rand(n, 1, generator=gen)


def draw_mix_scatter(ax, real: Tensor, mixes: Tensor, title: str = "") -> None:  # noqa: ANN001
    """Decoded mixes (orange) over real samples (blue) on one matplotlib axis."""
    ax.scatter(*real.cpu().T[:2], s=3, c="tab:blue", label="real")
    ax.scatter(*mixes.cpu().T[:2], s=3, c="tab:orange", label="decoded mixes")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)


@torch.no_grad()
def save_mix_scatter(encoder, decoder, data: DataBundle, path: Path, device: torch.device, n: int = 1000) -> None:  # noqa: ANN001
    """Decoded random mixes (orange) over real samples (blue), as in the paper's Figure 12."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.stack([data.test[i][0] for i in range(min(n, len(data.test)))]).to(device)  # type: ignore[arg-type]  # splits are Sized
    perm, alpha = (t.to(device) for t in random_mix_weights(len(x)))
    h = encoder(x)
    mixes = decoder.to_data(decoder(alpha * h + (1 - alpha) * h[perm]))
    fig, ax = plt.subplots(figsize=(4, 4))
    draw_mix_scatter(ax, x, mixes)
    ax.set_xlabel("first coordinate", fontsize=8)
    ax.set_ylabel("second coordinate", fontsize=8)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    write_file(path, png_bytes(fig, dpi=120))


TRAIN_RECONSTRUCTION, VAL_RECONSTRUCTION = "epoch/ae/reconstruction", f"epoch/{VALIDATION_LOSS}"


def loss_panels(curves: dict[str, list[tuple[int, float]]],
                panels: dict[str, str] | None = None) -> list[tuple[str, dict[str, list[tuple[int, float]]]]]:
    """(title, series) of the non-empty loss panels: reconstruction (training and validation), the other
    autoencoder terms, the critic terms, the critics' probe, then one panel per title in ``panels`` (name without
    ``epoch/`` -> title, as callbacks asked with ``trainer.log(..., panel=TITLE)``). A ``NAME_chance`` curve is
    NAME's dashed level, not a series."""
    wanted = {f"epoch/{name}": title for name, title in (panels or {}).items()}
    series = {k: v for k, v in curves.items() if not k.endswith(LEVEL_SUFFIX)}
    own = {k: v for k, v in series.items() if k not in wanted}
    out = [("reconstruction (dashed: mean image)", {k: v for k, v in own.items() if k in (TRAIN_RECONSTRUCTION, VAL_RECONSTRUCTION)}),
           ("autoencoder terms", {k: v for k, v in own.items()
                                  if k.startswith("epoch/ae/") and k not in (TRAIN_RECONSTRUCTION, "epoch/ae/total")}),
           ("critic terms (dashed: blind guess)", {k: v for k, v in own.items()
                                                   if k.startswith("epoch/critic/") and not k.endswith("/probe_auc")}),
           ("critic probe: AUC real vs blends (dashed: blind)", {k: v for k, v in own.items() if k.endswith("/probe_auc")})]
    for title in dict.fromkeys(wanted.values()):
        out.append((title, {k: v for k, v in series.items() if wanted.get(k) == title}))
    return [p for p in out if p[1]]




SERIES_LABELS = {TRAIN_RECONSTRUCTION: "training (mean over the epoch)", VAL_RECONSTRUCTION: "validation (at the epoch's end)"}


def y_label(title: str) -> str:
    """What a loss panel's values are, for its y axis."""
    if "AUC" in title:
        return "AUC (0.5: cannot tell)"
    if title.startswith("reconstruction"):
        return "loss x reconstruction weight"
    if title.startswith("critic"):
        return "critic loss"
    if title == "autoencoder terms":
        return "loss term (weighted)"
    return ""  # a callback's own panel: its values are its own


MIN_RELATIVE_SPAN = 0.3
"""A loss panel's y axis spans at least this share of its largest value: a term wandering between 1.06 and 1.14 is drawn
as the near-flat line it is, not stretched over the whole panel."""


def y_limits(values: Sequence[float], auc: bool = False) -> tuple[float, float]:
    """The y range of a panel holding ``values`` (its curves and dashed levels), at least :data:`MIN_RELATIVE_SPAN` of the
    largest magnitude (an AUC panel: 0.4 to 1 at least); never below 0 for values that are not."""
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    if not finite:
        return (0.0, 1.0)
    low, high = min(finite), max(finite)
    if auc:
        return (min(0.4, low - 0.02), max(1.0, high + 0.02))
    floor = MIN_RELATIVE_SPAN * max(abs(low), abs(high))
    if high - low < floor:
        middle = (low + high) / 2
        low, high = middle - floor / 2, middle + floor / 2
        if low < 0 <= min(finite):
            low, high = 0.0, high - low
    margin = 0.05 * (high - low) or 0.05
    return (max(low - margin, 0.0) if min(finite) >= 0 else low - margin, high + margin)


def plot_loss_curves(curves: dict[str, list[tuple[int, float]]], out: Path, panels: dict[str, str] | None = None) -> None:
    """Reconstruction, the other autoencoder terms, and each critic's terms beside their blind-guess level,
    from per-epoch curves (``RunFolder.epoch_curves()``); then the panels callbacks asked for (:func:`loss_panels`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    drawn = loss_panels(curves, panels)
    columns = min(2, len(drawn))  # two panels a row: the text stays readable where the picture is shown 800 px wide
    rows = -(-len(drawn) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.8 * columns, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(drawn):]:
        ax.set_visible(False)
    for ax, (title, series) in zip(axes.flat, drawn):
        shown: list[float] = []
        for i, (name, points) in enumerate(sorted(series.items())):
            epochs, values = zip(*points)
            color = f"C{i % 10}"
            label = SERIES_LABELS.get(name, name.removeprefix("epoch/").split("/", 1)[-1])
            ax.plot(epochs, values, label=label, color=color, marker="." if len(points) < 20 else None)
            shown += values
            chance = curves.get(name + LEVEL_SUFFIX)
            if chance:
                ax.axhline(chance[-1][1], color=color, linestyle="--", linewidth=0.8)
                shown.append(chance[-1][1])
        ax.set_ylim(*y_limits(shown, auc="AUC" in title))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(y_label(title), fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    write_file(out, png_bytes(fig, dpi=110))  # atomic: a full disk leaves the previous picture or none, never half of one
