"""scikit-learn's handwritten digits (1797 8x8 images, ships with scikit-learn: no download).

A small real image dataset for quick runs and tests of the conv network and the probe/clustering
metrics. Images (values 0..16) are resized to ``size`` px with antialiased bilinear interpolation
and scaled to [-1, 1] ("signed") or [0, 1] ("unit"), one channel; ``y`` are int64 classes 0..9.
The split is stratified by class and fixed by ``seed``: 60% train, 20% validation, 20% test
(1078 / 359 / 360 images).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from mixframe import Component, DataBundle, DataContext, DataSpec, hookimpl, param


@attrs.frozen(kw_only=True)
class DigitsConfig:
    size: Literal[16, 32] = param(16, help="image side in pixels (the 8x8 originals are upsampled)")
    scale: Literal["signed", "unit"] = param("signed", help="pixel range: signed = [-1, 1], unit = [0, 1] (for a BCE reconstruction)")
    seed: int = param(0, help="fixes the stratified train/val/test split")


def build(config: DigitsConfig, context: DataContext) -> DataBundle:
    """The digits, resized and scaled, in a fixed stratified 60/20/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(config.size, config.size), mode="bilinear", antialias=True, align_corners=False).clamp(0.0, 1.0)
    low, high = (-1.0, 1.0) if config.scale == "signed" else (0.0, 1.0)
    images = low + (high - low) * images
    labels = torch.from_numpy(digits.target).long()
    index = list(range(len(labels)))
    train_idx, rest = train_test_split(index, test_size=0.4, stratify=digits.target, random_state=config.seed)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=digits.target[rest], random_state=config.seed)

    def part(idx: list[int]) -> TensorDataset:
        sel = torch.tensor(sorted(idx))
        return TensorDataset(images[sel], labels[sel])

    spec = DataSpec(shape=(1, config.size, config.size), value_range=(low, high), num_classes=10)
    return DataBundle(spec=spec, train=part(train_idx), val=part(val_idx), test=part(test_idx), label_kind="class")


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    unit = Provides("unit_range", when=lambda c: c.scale == "unit", setting="scale: unit")
    return [Component(kind="dataset", name="digits", implementation=build, config=DigitsConfig,
                      provides=("image_data", "class_labels", unit),
                      summary="scikit-learn's 8x8 digits (offline) resized to 16/32 px, 10 classes, stratified 60/20/20 split")]
