"""Pictures: interpolation grids, 2-D mix scatter plots, loss curves."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from mixframe.kernel.interfaces import DataBundle, DataSpec, to_unit


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


def save_rows(rows: list[Tensor], spec: DataSpec, path: Path, real_columns: tuple[int, ...] = ()) -> None:
    """Save rows of images (each ``(n, C, H, W)``) as one grid picture (PNG, RGB).

    The columns in ``real_columns`` (indices, negative from the end) hold real images: each is set
    apart by a wider gap and framed in orange, so that a reader tells them from decoded ones.
    """
    from PIL import Image

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
    canvas = torch.ones(3, pad + len(rows) * (height + pad), x)
    colour = torch.tensor(REAL_FRAME)[:, None, None]
    for i, tile in enumerate(images):
        r, c = divmod(i, ncol)
        top, left = pad + r * (height + pad), lefts[c]
        if c in real:
            canvas[:, top - frame:top + height + frame, left - frame:left + width + frame] = colour
        canvas[:, top:top + height, left:left + width] = tile[:3]
    pixels = (canvas.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    Image.fromarray(pixels).save(path)


@torch.no_grad()
def save_training_grid(model, data: DataBundle, path: Path, device: torch.device, pairs: int = 8, steps: int = 8) -> None:  # noqa: ANN001
    """The picture saved during training: image interpolations, or mixes over real points for 2-D data.

    Each image row is x1 (real, framed), the decoded interpolation from f(x1) to f(x2) (its ends are the
    reconstructions), then x2 (real, framed)."""
    model.eval()
    x1, x2 = (t.to(device) for t in first_pairs(data, pairs))
    if data.spec.is_image:
        inner = latent_interpolations(model.encoder, model.decoder, x1, x2, steps)
        rows = [torch.cat([a[None], row, b[None]]) for a, row, b in zip(x1, inner, x2)]
        save_rows(rows, data.spec, path, real_columns=(0, -1))
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
    fig.savefig(path, dpi=120)
    plt.close(fig)


def loss_panels(curves: dict[str, list[tuple[int, float]]]) -> list[tuple[str, dict[str, list[tuple[int, float]]]]]:
    """(title, series) of the non-empty loss panels; a ``NAME_chance`` curve is drawn as NAME's dashed level, not as a series."""
    series = {k: v for k, v in curves.items() if not k.endswith("_chance")}
    panels = [("reconstruction (dashed: mean image)", {k: v for k, v in series.items() if k in ("ae/reconstruction", "val/reconstruction")}),
              ("autoencoder terms", {k: v for k, v in series.items()
                                     if k.startswith("ae/") and k not in ("ae/reconstruction", "ae/total")}),
              ("critic terms (dashed: blind guess)", {k: v for k, v in series.items()
                                                      if k.startswith("critic/") and not k.endswith("/probe_auc")}),
              ("critic probe: AUC real vs blends (dashed: blind)", {k: v for k, v in series.items() if k.endswith("/probe_auc")})]
    return [p for p in panels if p[1]]


SERIES_LABELS = {"ae/reconstruction": "training (mean over the epoch)", "val/reconstruction": "validation (at the epoch's end)"}


def y_label(title: str) -> str:
    """What a loss panel's values are, for its y axis."""
    if "AUC" in title:
        return "AUC (0.5: cannot tell)"
    if title.startswith("reconstruction"):
        return "loss x reconstruction weight"
    if title.startswith("critic"):
        return "critic loss"
    return "loss term (weighted)"


def plot_loss_curves(curves: dict[str, list[tuple[int, float]]], out: Path) -> None:
    """Reconstruction, the other autoencoder terms, and each critic's terms beside their blind-guess level,
    from per-epoch curves (``RunFolder.epoch_curves()``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = loss_panels(curves)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        for i, (name, points) in enumerate(sorted(series.items())):
            epochs, values = zip(*points)
            color = f"C{i % 10}"
            ax.plot(epochs, values, label=SERIES_LABELS.get(name, name.split("/", 1)[1]), color=color, marker="." if len(points) < 20 else None)
            chance = curves.get(f"{name}_chance")
            if chance:
                ax.axhline(chance[-1][1], color=color, linestyle="--", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(y_label(title), fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
