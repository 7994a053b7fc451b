"""A folder of images on the user's disk, labelled by class sub-folders, by binary attributes from a CSV, or not at all.

Images (jpg, jpeg, png, bmp, webp; searched recursively) are read lazily with PIL, resized to a
square ``size`` and scaled to [-1, 1] (or [0, 1]). ``labels`` says what ``y`` is:

* ``folders``: the class index of the image's first folder below the root (torchvision's ImageFolder
  layout: ``root/cats/tom.jpg``), classes in sorted order, so the metrics that need classes (probe,
  clustering, realism) run on it;
* ``attributes``: a CSV with one row per image (a filename column plus one 0/1 or -1/1 column per
  attribute) gives each image a float {0, 1} vector;
* ``none``: a 0 tensor;
* ``auto`` (the default): ``attributes`` when a CSV is named, else ``folders`` when every image sits in
  one level of class sub-folders (two classes at least), else ``none``.

The split into train/val/test is drawn with ``seed``.

Images and the CSV are user files, read through :mod:`mixframe.kernel.files`: an image's pixel size is
checked from its header (at most :data:`MAX_PIXELS`) before it is decoded, a file that is not an
image or is truncated is an error naming it, and the CSV is size-limited UTF-8 (or UTF-16 with a
byte-order mark) text.

The small helpers here (finding the data folder, the pixel transform, the seeded split, the lazy
image-file dataset) are shared by the other folder-based dataset plugins (celeba, torchvision_sets).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import attrs
import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from mixframe import Component, DataBundle, DataContext, DataSpec, MixframeError, hookimpl, in_range, param, positive
from mixframe.errors import close_names
from mixframe.kernel.files import convert_image, open_user_image, read_user_text
from mixframe.kernel.interfaces import ImagePreprocess

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DATA_ENV = "MIXFRAME_DATA"
MAX_PIXELS = 40_000_000
"""Largest image read (width x height, checked from the header before decoding): an 8000x5000 photo; the model sees ``size`` px."""
ATTRIBUTE_CSV_MAX_BYTES = 256 * 1024 * 1024


# ---------------------------------------------------------------- helpers shared by folder datasets


def resolve_root(root: str | None, name: str) -> Path:
    """The dataset's folder: ``root`` if given, else ``$MIXFRAME_DATA/<name>``."""
    if root is not None:
        return Path(root).expanduser()
    base = os.environ.get(DATA_ENV)
    if not base:
        raise MixframeError(
            f"{name}: data.root is not set and the environment variable {DATA_ENV} is not set; "
            f"set data.root to the folder holding the {name} files, or set {DATA_ENV} to a folder that contains '{name}/'"
        )
    return Path(base).expanduser() / name


def value_range(scale: str) -> tuple[float, float]:
    """The range pixels are scaled to: 'signed' = [-1, 1] (tanh-like decoders), 'unit' = [0, 1]."""
    return (-1.0, 1.0) if scale == "signed" else (0.0, 1.0)


def pixel_transform(size: int, scale: str, *, crop: int | None = None, keep_aspect: bool = False,
                    channels: int | None = None) -> ImagePreprocess:
    """PIL image -> float (C, size, size) tensor in the scale's range; put it in the DataSpec (``preprocess``) so
    that the run records it and ``Run.to_input`` prepares a user's pictures the same way.

    ``crop`` center-crops first (CelebA's customary 140 px face crop). ``keep_aspect`` resizes the
    shorter side then center-crops the longer one; otherwise the image is stretched to a square.
    """
    return ImagePreprocess(size=size, value_range=value_range(scale), keep_aspect=keep_aspect, crop=crop, channels=channels)


def seeded_split(n: int, seed: int, val: int, test: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint sorted index arrays (train, val, test) of ``range(n)``, drawn with ``seed``."""
    order = np.random.default_rng(seed).permutation(n)
    val_idx, test_idx, train_idx = order[:val], order[val:val + test], order[val + test:]
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)


def split_sizes(n: int, val_fraction: float, test_fraction: float, what: str) -> tuple[int, int]:
    """How many of ``n`` examples go to val and test (at least one each when the fraction is > 0)."""
    val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    if n - val - test < 1:
        raise MixframeError(
            f"{what} has only {n} images: too few for val_fraction={val_fraction} and test_fraction={test_fraction} "
            "to leave any for training; add images or lower the fractions"
        )
    return val, test


def suggestion(name: str, choices: Sequence[str]) -> str:
    """A ' (did you mean ...?)' phrase for a misspelt name, or an empty string."""
    close = close_names(name, choices)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def check_attribute_names(wanted: Sequence[str], available: Sequence[str], source: str) -> list[int]:
    """Column positions of ``wanted`` among ``available``; an unknown name is a MixframeError listing the choices."""
    unknown = [a for a in wanted if a not in available]
    if unknown:
        hints = "; ".join(f"{a!r}{suggestion(a, available)}" for a in unknown)
        raise MixframeError(f"unknown attribute name(s) {hints} in {source}; available: {', '.join(available)}")
    return [list(available).index(a) for a in wanted]


class ImageFiles(Dataset):
    """Images read lazily from disk, with one label row each (or a 0 label when there are none).

    Each image is opened through :func:`mixframe.kernel.files.open_user_image`: its pixel size is checked
    against ``max_pixels`` from the header before it is decoded (a decompression bomb is refused),
    and a file that is not an image, or is truncated, is a MixframeError naming it.
    """

    def __init__(self, paths: Sequence[Path], labels: Tensor | None, transform: Callable[[Image.Image], Tensor], mode: str,
                 max_pixels: int = MAX_PIXELS) -> None:
        self.paths = list(paths)
        self.labels = labels
        self.transform = transform
        self.mode = mode
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        path = self.paths[index]
        try:
            check = (lambda size: self.transform.check_size(size, self.max_pixels)) if isinstance(self.transform, ImagePreprocess) else None
            img = open_user_image(path, what="image", max_pixels=self.max_pixels, check_size=check)
            x = self.transform(convert_image(img, self.mode, path))
        except MixframeError as err:  # plain: a DataLoader worker re-raises an error by building its type from the message
            raise MixframeError(str(err)) from None
        except (OSError, ValueError) as err:
            raise MixframeError(f"cannot read image {path}: {err}; replace or remove the file") from None
        if self.labels is None:
            return x, torch.zeros(())
        y = self.labels[index]
        return x, (y if y.dtype == torch.long else y.float())  # class indices stay int64, attribute vectors are floats


# ---------------------------------------------------------------- the image_folder plugin


@attrs.frozen(kw_only=True)
class ImageFolderConfig:
    root: str | None = param(None, help="the image folder (searched recursively; a relative path is read from the recipe's folder); "
                             "None = $MIXFRAME_DATA/image_folder", path="folder")
    size: int = param(64, help="side of the square images fed to the model (pixels)", validator=positive)
    channels: Literal[1, 3] = param(3, help="3 = RGB, 1 = grayscale")
    keep_aspect: bool = param(False, help="resize the shorter side and center-crop the longer one instead of stretching to a square")
    scale: Literal["signed", "unit"] = param("signed", help="pixel range: 'signed' = [-1, 1], 'unit' = [0, 1]")
    labels: Literal["auto", "folders", "attributes", "none"] = param(
        "auto", help="folders: each image's class is its first folder below root (root/cats/tom.jpg); attributes: from the CSV "
        "(data.attributes); none: unlabelled; auto: attributes when a CSV is named, else folders when every image sits in one "
        "level of class sub-folders, else none")
    attributes: str | None = param(
        None, help="CSV of binary attributes (a filename column, then one 0/1 or -1/1 column per attribute); "
        "a relative path is read from the image folder; None = unlabelled (y = 0)", path="file", relative_to="root")
    filename_column: str = param("filename", help="the CSV column holding each image's path relative to the image folder")
    attribute_names: tuple[str, ...] = param((), help="the CSV attribute columns to use, in this order; empty = all of them")
    val_fraction: float = param(0.05, help="fraction of the images held out for validation", validator=in_range(0, 0.9))
    test_fraction: float = param(0.05, help="fraction of the images held out for testing", validator=in_range(0, 0.9))
    seed: int = param(0, help="seed of the train/val/test split")


def find_images(folder: Path) -> list[Path]:
    """Every image file under ``folder``, sorted so the split does not depend on the file system.

    Hidden files and folders (such as macOS's ``._name.jpg`` companions) are skipped: they are not images.
    """
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _read_attribute_csv(path: Path, config: ImageFolderConfig) -> tuple[list[str], list[str], np.ndarray]:
    """(filenames, attribute names, {0,1} uint8 matrix) from the attribute CSV."""
    if not path.exists():
        raise MixframeError(f"attribute CSV {path} not found; set data.attributes to the CSV's path (or null for no labels)")
    reader = csv.reader(io.StringIO(read_user_text(path, what="attribute CSV", max_bytes=ATTRIBUTE_CSV_MAX_BYTES), newline=""))
    try:
        rows = list(reader)
    except csv.Error as err:
        raise MixframeError(f"attribute CSV {path} line {reader.line_num}: {err}; "
                            "fix the row (a CSV of file names and 0/1 values)") from None
    if not rows:
        raise MixframeError(f"attribute CSV {path} is empty; its first line must name the columns ({config.filename_column}, then attributes)")
    header = [h.strip() for h in rows[0]]
    if config.filename_column not in header:
        raise MixframeError(
            f"attribute CSV {path} has no filename column {config.filename_column!r}{suggestion(config.filename_column, header)}; "
            f"its columns are: {', '.join(header)}; set data.filename_column to the column holding the image paths"
        )
    name_col = header.index(config.filename_column)
    available = [h for i, h in enumerate(header) if i != name_col]
    wanted = list(config.attribute_names) or available
    if not wanted:
        raise MixframeError(f"attribute CSV {path} has no attribute columns besides {config.filename_column!r}")
    positions = check_attribute_names(wanted, available, f"data.attribute_names (columns of {path.name})")
    attribute_cols = [i for i in range(len(header)) if i != name_col]
    cols = [attribute_cols[k] for k in positions]
    names, values = [], np.zeros((len(rows) - 1, len(wanted)), dtype=np.uint8)
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise MixframeError(f"{path} line {line}: {len(row)} fields, the header has {len(header)}; fix the row")
        names.append(row[name_col].strip())
        for j, col in enumerate(cols):
            cell = row[col].strip()
            if cell in ("1", "1.0"):
                values[line - 2, j] = 1
            elif cell not in ("0", "-1", "0.0", "-1.0"):
                raise MixframeError(f"{path} line {line}, column {header[col]!r}: {cell!r} is not a binary value; use 0/1 or -1/1")
    return names, wanted, values


def _match_rows(folder: Path, images: list[Path], names: list[str], csv_path: Path) -> list[Path]:
    """The image path of each CSV row (by path relative to the folder, else by unique file name)."""
    by_rel = {p.relative_to(folder).as_posix(): p for p in images}
    by_base: dict[str, Path | None] = {}
    for p in images:
        by_base[p.name] = None if p.name in by_base else p  # None marks an ambiguous name
    matched, missing = [], []
    line_of: dict[Path, int] = {}
    for line, name in enumerate(names, start=2):
        key = name.replace("\\", "/")
        key = key[2:] if key.startswith("./") else key
        p = by_rel.get(key) or by_base.get(Path(key).name)
        if p is None:
            missing.append(name)
        elif p in line_of:  # one picture twice: it could land in train and test, with conflicting labels
            raise MixframeError(f"attribute CSV {csv_path} line {line}: {name} names the image {p.relative_to(folder).as_posix()} "
                                f"again (first on line {line_of[p]}); keep one row per image")
        else:
            line_of[p] = line
        matched.append(p)
    if missing:
        raise MixframeError(
            f"{len(missing)} file(s) named in {csv_path} are not images under {folder} (first: {', '.join(missing[:5])}); "
            "put the images there, fix the names (paths relative to the image folder), or remove those rows"
        )
    unlisted = sorted(set(images) - set(matched))
    if unlisted:
        shown = ", ".join(p.relative_to(folder).as_posix() for p in unlisted[:5])
        raise MixframeError(
            f"{len(unlisted)} image(s) under {folder} have no row in {csv_path} (first: {shown}); "
            "add their rows to the CSV or move the images out of the folder"
        )
    return matched  # type: ignore[return-value]


def label_source(config: ImageFolderConfig, folder: Path, images: list[Path]) -> str:
    """What the labels are read from: 'attributes', 'folders' or 'none' (``auto`` decided from the CSV setting and the layout)."""
    if config.labels == "attributes" and config.attributes is None:
        raise MixframeError("data.labels is attributes but data.attributes names no CSV; set data.attributes to the CSV of 0/1 "
                            "attributes (a filename column, then one column per attribute)")
    if config.labels in ("folders", "none") and config.attributes is not None:
        raise MixframeError(f"data.labels is {config.labels} but data.attributes names a CSV ({config.attributes}); "
                            "set data.attributes: null, or data.labels: attributes")
    if config.labels != "auto":
        return config.labels
    if config.attributes is not None:
        return "attributes"
    depths = {len(p.relative_to(folder).parts) for p in images}
    return "folders" if depths == {2} and len(class_folders(folder, images)) >= 2 else "none"


def class_folders(folder: Path, images: list[Path]) -> list[str]:
    """The class names: the first folder below ``folder`` of each image, sorted."""
    return sorted({p.relative_to(folder).parts[0] for p in images if len(p.relative_to(folder).parts) > 1})


def folder_labels(folder: Path, images: list[Path]) -> tuple[Tensor, tuple[str, ...]]:
    """Each image's class index (int64) from its first folder below ``folder``, and the class names in index order."""
    loose = [p for p in images if len(p.relative_to(folder).parts) < 2]
    if loose:
        shown = ", ".join(p.name for p in loose[:5])
        raise MixframeError(f"data.labels is folders, but {len(loose)} image(s) sit directly in {folder}, in no class folder "
                            f"(first: {shown}); move each into a folder named after its class (root/cats/tom.jpg), or set data.labels: none")
    classes = class_folders(folder, images)
    if len(classes) < 2:
        raise MixframeError(f"data.labels is folders, but {folder} has {len(classes)} class folder ({', '.join(classes)}); "
                            "class labels need at least two classes: one folder per class, or set data.labels: none")
    index = {name: i for i, name in enumerate(classes)}
    return torch.tensor([index[p.relative_to(folder).parts[0]] for p in images], dtype=torch.long), tuple(classes)


def build(config: ImageFolderConfig, context: DataContext) -> DataBundle:
    """Images from a local folder, labelled by class folders, by binary attributes from a CSV, or unlabelled."""
    folder = resolve_root(config.root, "image_folder")
    if folder.is_file():
        raise MixframeError(f"data.root {folder} is a file, not a folder; set data.root to the folder that holds the images "
                            f"(perhaps {folder.parent})")
    if not folder.is_dir():
        raise MixframeError(f"image folder {folder} not found; put your images (jpg/png, subfolders allowed) there or set data.root")
    images = find_images(folder)
    if not images:
        raise MixframeError(
            f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}, searched recursively); "
            "put the images there or point data.root at the folder that holds them"
        )
    labels: Tensor | None = None
    attribute_names: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    source = label_source(config, folder, images)
    if source == "folders":
        labels, classes = folder_labels(folder, images)
    elif source == "attributes":
        csv_path = Path(config.attributes).expanduser()
        csv_path = csv_path if csv_path.is_absolute() else folder / csv_path
        names, wanted, values = _read_attribute_csv(csv_path, config)
        images = _match_rows(folder, images, names, csv_path)
        labels = torch.from_numpy(values)
        attribute_names = tuple(wanted)
    val, test = split_sizes(len(images), config.val_fraction, config.test_fraction, f"image folder {folder}")
    transform = pixel_transform(config.size, config.scale, keep_aspect=config.keep_aspect, channels=config.channels)
    mode = "RGB" if config.channels == 3 else "L"

    def part(idx: np.ndarray) -> ImageFiles:
        return ImageFiles([images[i] for i in idx], labels[torch.from_numpy(idx)] if labels is not None else None, transform, mode)

    train_idx, val_idx, test_idx = seeded_split(len(images), config.seed, val, test)
    spec = DataSpec(shape=(config.channels, config.size, config.size), value_range=value_range(config.scale),
                    attribute_names=attribute_names, num_classes=len(classes) or None, preprocess=transform)
    return DataBundle(spec=spec, train=part(train_idx), val=part(val_idx), test=part(test_idx),
                      label_kind={"folders": "class", "attributes": "attributes"}.get(source, "none"))


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    unit = Provides("unit_range", when=lambda c: c.scale == "unit", setting="scale: unit")
    attributes = Provides("attribute_labels", when=lambda c: c.attributes is not None and c.labels in ("auto", "attributes"),
                          setting="attributes: a CSV file")
    classes = Provides("class_labels", when=lambda c: c.labels == "folders", setting="labels: folders (images in class sub-folders)")
    # with auto, class labels depend on the folder's layout, known only when the data are read: the metric says so then
    maybe_classes = Provides("class_labels", when=lambda c: c.labels == "auto" and c.attributes is None, checked=False,
                             setting="labels: auto and images in class sub-folders")
    return [Component(kind="dataset", name="image_folder", implementation=build, config=ImageFolderConfig,
                      provides=("image_data", attributes, classes, maybe_classes, unit),
                      summary="a local folder of images: class sub-folders, a 0/1 attribute CSV, or no labels; seeded train/val/test split")]
