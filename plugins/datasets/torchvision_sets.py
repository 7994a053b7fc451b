"""MNIST, KMNIST, SVHN and CIFAR-10 read from the user's folder through ``torchvision.datasets``.

The files must already be where torchvision writes them (``download: true`` lets torchvision fetch
them; nothing downloads by default). Splits are fixed: ``train`` is the official training set minus
a validation subset of ``val_size`` examples drawn with ``seed``, ``test`` is the official test set.
Images stay uint8 inside the torchvision object (loaded once, shared by train and val) and are
resized and scaled lazily, one example at a time. Grayscale sets keep one channel; labels are int64
class indices 0..9 (SVHN's label 10 for the digit 0 becomes 0, as torchvision does).

SVHN and CIFAR-10 files are checked against their official md5 checksums
(``verify_checksums``); turn that off for your own files written in the same format.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import datasets
from torchvision.datasets.utils import check_md5

from mixframe import Component, DataBundle, DataSpec, MixframeError, hookimpl, in_range, param, positive
from mixframe_plugins.datasets.image_folder import pixel_transform, resolve_root, seeded_split, value_range


@attrs.frozen(kw_only=True)
class VisionSetConfig:
    root: str | None = param(None, help="folder holding the files as torchvision writes them; None = $MIXFRAME_DATA/<dataset name>")
    size: int = param(32, help="side of the square images fed to the model (pixels); 28 px digits are resized", validator=positive)
    scale: Literal["signed", "unit"] = param("signed", help="pixel range: 'signed' = [-1, 1], 'unit' = [0, 1]")
    val_size: int = param(5000, help="examples of the official training set held out for validation", validator=in_range(1))
    seed: int = param(0, help="seed of the validation subset")
    download: bool = param(False, help="let torchvision download missing files into root (off: nothing is ever downloaded)")


@attrs.frozen(kw_only=True)
class ChecksummedSetConfig(VisionSetConfig):
    verify_checksums: bool = param(True, help="check the files against the official md5 checksums; off for your own files in the same format")


class LazySplit(Dataset):
    """A subset of a torchvision dataset, transformed one example at a time (the pixels are stored once)."""

    def __init__(self, base: Dataset, indices: np.ndarray, transform: Callable[[Any], Tensor]) -> None:
        self.base = base
        self.indices = indices
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        img, label = self.base[int(self.indices[index])]
        return self.transform(img), torch.tensor(int(label), dtype=torch.int64)


class LocalSVHN(datasets.SVHN):
    """torchvision's SVHN whose own md5 check is replaced by ours (done before, and optional)."""

    def _check_integrity(self) -> bool:
        return os.path.isfile(os.path.join(self.root, self.filename))


class LocalCIFAR10(datasets.CIFAR10):
    """torchvision's CIFAR10 whose own md5 checks are replaced by ours (done before, and optional)."""

    def _check_integrity(self) -> bool:
        return all(os.path.isfile(os.path.join(self.root, self.base_folder, f)) for f, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def _missing_error(title: str, root: Path, expected: list[str], missing: list[str], writer: str) -> MixframeError:
    return MixframeError(
        f"{title} not found under {root}: expected {', '.join(expected)} as written by torchvision.datasets.{writer}"
        f" (missing: {', '.join(missing)}); put them there, set data.root, or set data.download: true"
    )


def _require(title: str, root: Path, files: list[tuple[str, str]], writer: str, verify: bool) -> None:
    """Every (relative path, md5) in ``files`` exists under ``root`` (and matches its md5 when ``verify``)."""
    missing = [rel for rel, _ in files if not (root / rel).is_file()]
    if missing:
        raise _missing_error(title, root, [rel for rel, _ in files], missing, writer)
    if verify:
        for rel, md5 in files:
            if not check_md5(str(root / rel), md5):
                raise MixframeError(
                    f"{title}: {root / rel} does not match the official md5 checksum {md5}: the file is truncated or corrupted; "
                    "replace it (data.download: true fetches a fresh copy), or set data.verify_checksums: false for your own files in this format"
                )


def _prepare_idx(root: Path, folder: str) -> None:
    """Check MNIST-style idx files under ``root/folder/raw``, unpacking ``.gz`` copies next to them when needed."""
    raw = root / folder / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    missing = [n for n in names if not (raw / n).is_file() and not (raw / f"{n}.gz").is_file()]
    if missing:
        raise MixframeError(
            f"{folder} not found under {root}: expected {', '.join(f'{folder}/raw/{n}' for n in names)} (or .gz) "
            f"as written by torchvision.datasets.{folder} (missing: {', '.join(missing)}); "
            "put them there, set data.root, or set data.download: true"
        )
    for n in names:
        if not (raw / n).is_file():
            try:  # torchvision reads the unpacked files only; it unpacks them itself after a download
                with gzip.open(raw / f"{n}.gz", "rb") as src, open(raw / n, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as err:
                (raw / n).unlink(missing_ok=True)
                raise MixframeError(f"{folder}: cannot unpack {raw / n}.gz ({err}); gunzip it yourself into {raw}") from None


def _open(title: str, root: Path, make: Callable[[bool], Dataset]) -> tuple[Dataset, Dataset]:
    """(official train, official test) from ``make(train)``; a read or download failure becomes a MixframeError."""
    try:
        return make(True), make(False)
    except (RuntimeError, OSError, ValueError, TypeError, KeyError, EOFError, AssertionError, pickle.UnpicklingError) as err:
        raise MixframeError(f"{title}: cannot read the files under {root} ({type(err).__name__}: {err}); "
                            "replace them with the official ones (data.download: true fetches them)") from None


def _bundle(title: str, config: VisionSetConfig, channels: int, train: Dataset, test: Dataset) -> DataBundle:
    n = len(train)
    if config.val_size >= n:
        raise MixframeError(f"{title}: val_size={config.val_size} leaves no training examples (the training set has {n}); lower data.val_size")
    train_idx, val_idx, _ = seeded_split(n, config.seed, config.val_size)
    transform = pixel_transform(config.size, config.scale)
    spec = DataSpec(shape=(channels, config.size, config.size), value_range=value_range(config.scale), num_classes=10)
    return DataBundle(spec=spec, train=LazySplit(train, train_idx, transform), val=LazySplit(train, val_idx, transform),
                      test=LazySplit(test, np.arange(len(test)), transform), label_kind="class")


def _idx_set(name: str, cls: type[datasets.MNIST], config: VisionSetConfig) -> DataBundle:
    root = resolve_root(config.root, name)
    if not config.download:
        _prepare_idx(root, cls.__name__)
    train, test = _open(cls.__name__, root, lambda train: cls(str(root), train=train, download=config.download))
    return _bundle(cls.__name__, config, 1, train, test)


def build_mnist(config: VisionSetConfig) -> DataBundle:
    """MNIST digits (1 channel) from <root>/MNIST/raw, official train/test split plus a seeded validation subset."""
    return _idx_set("mnist", datasets.MNIST, config)


def build_kmnist(config: VisionSetConfig) -> DataBundle:
    """Kuzushiji-MNIST (1 channel) from <root>/KMNIST/raw, official train/test split plus a seeded validation subset."""
    return _idx_set("kmnist", datasets.KMNIST, config)


def build_svhn(config: ChecksummedSetConfig) -> DataBundle:
    """SVHN cropped digits (train_32x32.mat, test_32x32.mat; the 'extra' set is not used)."""
    root = resolve_root(config.root, "svhn")
    if not config.download:
        files = [(v[1], v[2]) for k, v in datasets.SVHN.split_list.items() if k in ("train", "test")]
        _require("SVHN", root, files, "SVHN", config.verify_checksums)
    train, test = _open("SVHN", root, lambda train: LocalSVHN(str(root), split="train" if train else "test", download=config.download))
    return _bundle("SVHN", config, 3, train, test)


def build_cifar10(config: ChecksummedSetConfig) -> DataBundle:
    """CIFAR-10 from <root>/cifar-10-batches-py (the python pickle batches)."""
    root = resolve_root(config.root, "cifar10")
    if not config.download:
        folder = datasets.CIFAR10.base_folder
        meta = datasets.CIFAR10.meta
        files = [(f"{folder}/{f}", md5) for f, md5 in datasets.CIFAR10.train_list + datasets.CIFAR10.test_list]
        _require("CIFAR-10", root, [*files, (f"{folder}/{meta['filename']}", meta["md5"])], "CIFAR10", config.verify_checksums)
    train, test = _open("CIFAR-10", root, lambda train: LocalCIFAR10(str(root), train=train, download=config.download))
    return _bundle("CIFAR-10", config, 3, train, test)


@hookimpl
def mixframe_datasets() -> list[Component]:
    return [
        Component(kind="dataset", name="mnist", implementation=build_mnist, config=VisionSetConfig,
                  summary="MNIST from a local torchvision folder (28 px resized to size, 1 channel); 10 classes"),
        Component(kind="dataset", name="kmnist", implementation=build_kmnist, config=VisionSetConfig,
                  summary="Kuzushiji-MNIST from a local torchvision folder (1 channel); 10 classes"),
        Component(kind="dataset", name="svhn", implementation=build_svhn, config=ChecksummedSetConfig,
                  summary="SVHN cropped digits from local .mat files (RGB 32 px); 10 classes"),
        Component(kind="dataset", name="cifar10", implementation=build_cifar10, config=ChecksummedSetConfig,
                  summary="CIFAR-10 from the local python batches (RGB 32 px); 10 classes"),
    ]
