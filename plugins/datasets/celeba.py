"""CelebA from the user's own copy, read from its official text files (nothing downloads).

Expected under ``root`` (as the CelebA Google-Drive release unpacks)::

    img_align_celeba/000001.jpg ...   the aligned and cropped 178x218 faces
    list_attr_celeba.txt             line 1: count; line 2: the 40 attribute names; then "name v1 .. v40" (-1/1)
    list_eval_partition.txt          "name 0|1|2" = train / val / test

The splits are the official ones from the partition file (so there is no seed). Each face is
center-cropped (140 px, as is customary for 64 px CelebA) then resized to ``size``. ``y`` is a float {0, 1} vector of the chosen ``attributes``. The default, Male / Smiling / Eyeglasses,
gives three clearly visible binary factors (eight combinations) for the supervised class mixer.
The text files are parsed here rather than through ``torchvision.datasets.CelebA``, whose checks
insist on files (identity and landmark lists, checksums) that an images-and-attributes copy lacks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import attrs
import numpy as np
import torch

from mixframe import Component, DataBundle, DataContext, DataSpec, MixframeError, hookimpl, param, positive
from mixframe.kernel.files import read_user_text
from mixframe_plugins.datasets.image_folder import ImageFiles, check_attribute_names, pixel_transform, resolve_root, value_range

IMAGES = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
LAYOUT = (f"expected {IMAGES}/ (the aligned jpg faces), {ATTR_FILE} and {PARTITION_FILE} "
          "from the official CelebA release")
TEXT_MAX_BYTES = 128 * 1024 * 1024  # the official list_attr_celeba.txt is about 26 MB
MAX_PIXELS = 4_000_000  # the aligned faces are 178x218; checked from each header before decoding


@attrs.frozen(kw_only=True)
class CelebAConfig:
    root: str | None = param(None, help=f"folder holding {IMAGES}/, {ATTR_FILE} and {PARTITION_FILE}; None = $MIXFRAME_DATA/celeba",
                             path="folder")
    size: int = param(64, help="side of the square images fed to the model (pixels)", validator=positive)
    crop: int | None = param(140, help="center-crop side (pixels) applied before resizing; None = no crop (the 178x218 face is squashed)",
                             validator=positive)
    attributes: tuple[str, ...] = param(("Male", "Smiling", "Eyeglasses"),
                                        help="the attributes in y, in this order (names as in list_attr_celeba.txt); empty = all 40")
    scale: Literal["signed", "unit"] = param("signed", help="pixel range: 'signed' = [-1, 1], 'unit' = [0, 1]")


def _lines(path: Path) -> list[str]:
    """The non-blank lines of one of CelebA's text files, read through the guarded path (size limit, UTF-8)."""
    if not path.exists():
        raise MixframeError(f"CelebA file {path} not found; {LAYOUT}; put them under {path.parent} or set data.root")
    return [line for line in read_user_text(path, what="CelebA file", max_bytes=TEXT_MAX_BYTES).splitlines() if line.strip()]


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(image names, the 40 attribute names, {0,1} uint8 matrix) from ``list_attr_celeba.txt``."""
    lines = _lines(path)
    if len(lines) < 2 or not re.fullmatch(r"[0-9]{1,12}", lines[0].strip()):
        raise MixframeError(f"{path} is not in CelebA's format: line 1 must be the image count and line 2 the attribute names")
    count, names = int(lines[0]), lines[1].split()
    rows = lines[2:]
    if len(rows) != count:
        raise MixframeError(f"{path} announces {count} images but lists {len(rows)}; the file is truncated or edited: get a fresh copy")
    parsed = [row.split() for row in rows]
    bad = next((i for i, parts in enumerate(parsed) if len(parts) != len(names) + 1), None)
    cells = np.array([parts[1:] for parts in parsed]) if bad is None else None
    if cells is not None and count:
        valid = np.isin(cells, ("1", "-1", "0")).all(axis=1)
        bad = None if valid.all() else int(np.argmin(valid))
    if bad is not None:
        raise MixframeError(f"{path} line {bad + 3}: expected an image name and {len(names)} values of -1/1, got {rows[bad].strip()!r}")
    values = (cells == "1").astype(np.uint8) if count else np.zeros((0, len(names)), dtype=np.uint8)
    files = [parts[0] for parts in parsed]
    first: dict[str, int] = {}
    for i, name in enumerate(files):  # one image listed twice would be trained and tested on, perhaps with two labels
        if name in first:
            raise MixframeError(f"{path} line {i + 3}: {name} is listed again (first on line {first[name] + 3}); keep one row per image")
        first[name] = i
    return files, names, values


def read_partition(path: Path) -> dict[str, int]:
    """Image name -> 0 (train), 1 (val) or 2 (test) from ``list_eval_partition.txt``."""
    out = {}
    for i, row in enumerate(_lines(path)):
        parts = row.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise MixframeError(f"{path} line {i + 1}: expected 'image_name 0|1|2', got {row.strip()!r}")
        out[parts[0]] = int(parts[1])
    return out


def build(config: CelebAConfig, context: DataContext) -> DataBundle:
    """CelebA faces with binary attributes, split by the official partition file."""
    root = resolve_root(config.root, "celeba")
    if not root.is_dir():
        raise MixframeError(f"CelebA not found: {root} does not exist; {LAYOUT}; put them there or set data.root")
    image_dir = root / IMAGES
    if not image_dir.is_dir():
        raise MixframeError(f"CelebA images not found: {image_dir} does not exist; {LAYOUT}; unpack img_align_celeba.zip there")
    files, all_names, values = read_attributes(root / ATTR_FILE)
    columns = check_attribute_names(config.attributes or all_names, all_names, f"data.attributes (CelebA's {ATTR_FILE})")
    partition = read_partition(root / PARTITION_FILE)
    unsplit = [f for f in files if f not in partition]
    if unsplit:
        raise MixframeError(f"{len(unsplit)} image(s) of {ATTR_FILE} have no line in {PARTITION_FILE} (first: {', '.join(unsplit[:5])}); "
                            "the two files come from different releases: use the matching pair")
    present = set(os.listdir(image_dir))
    missing = [f for f in files if f not in present]
    if missing:
        raise MixframeError(f"{len(missing)} image(s) listed in {ATTR_FILE} are missing from {image_dir} (first: {', '.join(missing[:5])}); "
                            "the image archive is incomplete: unpack all of img_align_celeba.zip there")
    labels = torch.from_numpy(np.ascontiguousarray(values[:, columns]))
    transform = pixel_transform(config.size, config.scale, crop=config.crop)
    which = np.array([partition[f] for f in files])

    def part(code: int) -> ImageFiles:
        idx = np.flatnonzero(which == code)
        return ImageFiles([image_dir / files[i] for i in idx], labels[torch.from_numpy(idx)], transform, "RGB",
                          max_pixels=MAX_PIXELS)

    names = tuple(all_names[c] for c in columns)
    spec = DataSpec(shape=(3, config.size, config.size), value_range=value_range(config.scale), attribute_names=names,
                    preprocess=transform)
    return DataBundle(spec=spec, train=part(0), val=part(1), test=part(2), label_kind="attributes")


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    unit = Provides("unit_range", when=lambda c: c.scale == "unit", setting="scale: unit")
    return [Component(kind="dataset", name="celeba", implementation=build, config=CelebAConfig,
                      provides=("image_data", "attribute_labels", unit),
                      summary="the user's local CelebA (aligned faces + attribute/partition text files); official splits; 0/1 attribute labels")]
