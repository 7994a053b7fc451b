"""UT Zappos50K shoe photographs from the user's own copy, read from its folder tree (nothing downloads).

Expected under ``root`` (as ``ut-zap50k-images-square.zip`` from the UT Zappos50K page unpacks)::

    ut-zap50k-images-square/<category>/<subcategory>/<brand>/<id>.jpg
        e.g. ut-zap50k-images-square/Shoes/Sneakers and Athletic Shoes/Nike/7716135.3.jpg

with the four categories Boots, Sandals, Shoes and Slippers (50,025 photographs of 136x136 px on a
white background). ``images`` names the folder inside ``root`` (``.`` when ``root`` is that folder
itself), so another copy in the same tree, such as larger photographs for the 128 px Zappos-HQ
figure, is read the same way. Every image under it is used (searched recursively, hidden files
skipped); the split is drawn with ``seed``. ``y`` is the class of the folder an image sits in:
its category (4 classes) or category and subcategory (as the AMR authors' loader labels them),
so the probe and realism metrics apply; ``labels: none`` gives ``y`` = 0.

This is ``image_folder`` with the Zappos layout checked: a missing or misplaced copy is a message
naming the folders expected, and the class labels come from the tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import numpy as np
import torch

from mixframe import Component, DataBundle, DataContext, DataSpec, MixframeError, hookimpl, in_range, param, positive
from mixframe_plugins.datasets.image_folder import (
    IMAGE_SUFFIXES,
    ImageFiles,
    find_images,
    pixel_transform,
    resolve_root,
    seeded_split,
    split_sizes,
    value_range,
)

IMAGES = "ut-zap50k-images-square"
CATEGORIES = ("Boots", "Sandals", "Shoes", "Slippers")
LAYOUT = (f"expected <root>/{IMAGES}/<category>/<subcategory>/<brand>/<id>.jpg with the categories "
          f"{', '.join(CATEGORIES)}, as {IMAGES}.zip from the UT Zappos50K page unpacks")
MAX_PIXELS = 40_000_000


@attrs.frozen(kw_only=True)
class ZapposConfig:
    root: str | None = param(None, help=f"folder holding {IMAGES}/; None = $MIXFRAME_DATA/zappos", path="folder")
    images: str = param(IMAGES, help="the folder inside root holding the category folders ('.' = root itself)")
    size: int = param(64, help="side of the square images fed to the model (pixels)", validator=positive)
    labels: Literal["category", "subcategory", "none"] = param(
        "category", help="y: the category folder (Boots, Sandals, Shoes, Slippers), category and subcategory folders, or none (y = 0)")
    scale: Literal["signed", "unit"] = param("signed", help="pixel range: 'signed' = [-1, 1], 'unit' = [0, 1]")
    val_fraction: float = param(0.02, help="fraction of the images held out for validation", validator=in_range(0, 0.9))
    test_fraction: float = param(0.04, help="fraction of the images held out for testing (2,000 of 50,025 by default)",
                                 validator=in_range(0, 0.9))
    seed: int = param(0, help="seed of the train/val/test split")


def image_root(config: ZapposConfig) -> Path:
    """The folder holding the category folders, checked to exist and to hold images."""
    root = resolve_root(config.root, "zappos")
    folder = root if config.images in ("", ".") else root / config.images
    if not folder.is_dir():
        if not root.is_dir():
            seen = f" ({root} does not exist)"
        else:
            found = sorted(p.name for p in root.iterdir() if p.is_dir())[:8]
            seen = f" ({root} holds the folders: {', '.join(found)})" if found else f" ({root} holds no folders)"
        raise MixframeError(f"Zappos images not found: {folder} is not a folder{seen}; {LAYOUT}; "
                            "unpack it there, or set data.root (and data.images for a folder of another name)")
    return folder


def class_names(paths: list[Path], folder: Path, depth: int) -> list[str]:
    """Each image's class: its first ``depth`` folder names below ``folder`` joined by '/'; an image too shallow is an error."""
    names = []
    for p in paths:
        parts = p.relative_to(folder).parts[:-1]
        if len(parts) < depth:
            raise MixframeError(f"{p} is not inside {'a category folder' if depth == 1 else 'a category/subcategory folder'} of {folder}; "
                                f"{LAYOUT}; move it, or set data.labels: none to read the images without labels")
        names.append("/".join(parts[:depth]))
    return names


class ShoeFiles(ImageFiles):
    """Image files whose labels are class indices (int64), which ImageFiles would hand out as floats."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().__getitem__(index)
        return x, y.long()


def build(config: ZapposConfig, context: DataContext) -> DataBundle:
    """Zappos shoes, resized and scaled, labelled by their folders, in a seeded train/val/test split."""
    folder = image_root(config)
    images = find_images(folder)
    if not images:
        raise MixframeError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}, searched recursively); {LAYOUT}")
    labels: torch.Tensor | None = None
    classes: list[str] = []
    if config.labels != "none":
        names = class_names(images, folder, 1 if config.labels == "category" else 2)
        classes = sorted(set(names))
        index = {name: i for i, name in enumerate(classes)}
        labels = torch.tensor([index[n] for n in names], dtype=torch.long)
    val, test = split_sizes(len(images), config.val_fraction, config.test_fraction, f"Zappos folder {folder}")
    train_idx, val_idx, test_idx = seeded_split(len(images), config.seed, val, test)
    transform = pixel_transform(config.size, config.scale)

    def part(idx: np.ndarray) -> ShoeFiles:
        return ShoeFiles([images[i] for i in idx], labels[torch.from_numpy(idx)] if labels is not None else None, transform, "RGB",
                          max_pixels=MAX_PIXELS)

    spec = DataSpec(shape=(3, config.size, config.size), value_range=value_range(config.scale),
                    num_classes=len(classes) if labels is not None else None, preprocess=transform)
    return DataBundle(spec=spec, train=part(train_idx), val=part(val_idx), test=part(test_idx),
                      label_kind="class" if labels is not None else "none")


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    unit = Provides("unit_range", when=lambda c: c.scale == "unit", setting="scale: unit")
    labels = Provides("class_labels", when=lambda c: c.labels != "none", setting="labels: category or subcategory")
    return [Component(kind="dataset", name="zappos", implementation=build, config=ZapposConfig, provides=("image_data", labels, unit),
                      summary="the user's local UT Zappos50K folder tree (category/subcategory/brand/*.jpg); "
                              "classes from the folders; seeded split")]
