"""Reconstruction quality on the test split: MSE, PSNR and (for images) SSIM.

``rec_mse`` is the mean squared error per element in data space. ``rec_psnr`` is the mean over test
examples of each example's PSNR (kornia), with the peak value the width of the dataset's value
range; an exact reconstruction has an infinite PSNR, so each example's PSNR is capped at 100 dB to
keep the mean finite. ``rec_ssim`` is kornia's SSIM (Gaussian window) on images rescaled to
[0, 1], averaged over pixels and examples; it is left out for data that are not images.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import torch
from torch import Tensor

from mixframe import BuildContext, Component, Metric, Run, hookimpl, param, positive
from mixframe_plugins.metrics._nets import batches

PSNR_CAP_DB = 100.0


def _odd_window(window: int, height: int, width: int) -> int:
    """The largest odd window no bigger than ``window`` nor the image."""
    size = min(window, height, width)
    return max(1, size if size % 2 else size - 1)


def reconstruction_sums(x: Tensor, x_rec: Tensor, value_range: tuple[float, float], ssim_window: int = 11) -> dict[str, float]:
    """Per-batch sums: squared error, element count, PSNR sum, SSIM sum (images only), example count."""
    import kornia

    low, high = value_range
    x, x_rec = x.float(), x_rec.float()
    peak = float(high - low)
    psnr = torch.stack([kornia.metrics.psnr(r, t, peak) for r, t in zip(x_rec, x)]).clamp(max=PSNR_CAP_DB)
    sums = {"sq_err": float(((x_rec - x) ** 2).sum()), "elements": float(x.numel()), "psnr": float(psnr.sum()), "count": float(len(x))}
    if x.dim() == 4:
        unit, unit_rec = (x - low) / peak, ((x_rec - low) / peak).clamp(0.0, 1.0)
        window = _odd_window(ssim_window, x.shape[-2], x.shape[-1])
        sums["ssim"] = float(kornia.metrics.ssim(unit_rec, unit, window, max_val=1.0).mean(dim=(1, 2, 3)).sum())
    return sums


def reconstruction_scores(pairs: Iterable[tuple[Tensor, Tensor]], value_range: tuple[float, float], ssim_window: int = 11) -> dict[str, float]:
    """``rec_mse``, ``rec_psnr`` and, for images, ``rec_ssim`` over batches of (data, reconstruction).

    ``pairs`` may be a generator: only running sums are kept, so a large test split fits in memory.
    """
    total: dict[str, float] = {}
    for x, x_rec in pairs:
        for key, value in reconstruction_sums(x, x_rec, value_range, ssim_window).items():
            total[key] = total.get(key, 0.0) + value
    out = {"rec_mse": total["sq_err"] / total["elements"], "rec_psnr": total["psnr"] / total["count"]}
    if "ssim" in total:
        out["rec_ssim"] = total["ssim"] / total["count"]
    return out


@attrs.frozen(kw_only=True)
class ReconstructionConfig:
    batch_size: int = param(256, validator=positive, help="test examples encoded and decoded at a time")
    ssim_window: int = param(11, validator=positive, help="SSIM Gaussian window size (odd; shrunk to fit small images)")


class ReconstructionMetric(Metric):
    """Test-split (or validation-split) reconstruction error of g(f(x))."""
    directions = {"rec_mse": "min", "rec_psnr": "max", "rec_ssim": "max"}
    meanings = {
        "rec_mse": "mean squared error per value between test examples and their reconstructions, in data space; lower is better",
        "rec_psnr": "mean peak signal-to-noise ratio of the reconstructions in dB (capped at 100); higher is better",
        "rec_ssim": "mean structural similarity of reconstructed and real test images, 1 = identical; higher is better",
    }

    def __init__(self, config: ReconstructionConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: Run, split: str = "test") -> dict[str, float]:
        pairs = ((x, run.decode(run.encode(x)).cpu()) for x, _ in batches(getattr(run.data, split), self.config.batch_size))
        return reconstruction_scores(pairs, run.data.spec.value_range, self.config.ssim_window)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="metric", name="reconstruction", implementation=ReconstructionMetric, config=ReconstructionConfig,
                      provides=(),
                      summary="test-split reconstruction: rec_mse, rec_psnr (kornia), rec_ssim (kornia, images only)")]
