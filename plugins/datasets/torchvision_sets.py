"""MNIST, KMNIST, SVHN and CIFAR-10 read from the user's folder through ``torchvision.datasets``.

The files must already be where torchvision writes them (``download: true`` lets torchvision fetch
them; nothing downloads by default). Splits are fixed: ``train`` is the official training set minus
a validation subset of ``val_size`` examples drawn with ``seed``, ``test`` is the official test set.
Images stay uint8 inside the torchvision object (loaded once, shared by train and val) and are
resized and scaled lazily, one example at a time. Grayscale sets keep one channel; labels are int64
class indices 0..9 (SVHN's label 10 for the digit 0 becomes 0, as torchvision does).

SVHN and CIFAR-10 files are checked against their official md5 checksums
(``verify_checksums``); turn that off for your own files written in the same format.

Nothing here unpickles a file. CIFAR-10 is read from its official *binary* version
(``<root>/cifar-10-batches-bin/data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``:
records of 1 label byte and 3072 pixel bytes, red then green then blue planes), never from the
python version (``cifar-10-batches-py``, pickles that can run code when loaded), which is refused
with instructions. MNIST/KMNIST are read from their idx files only (torchvision's legacy
``processed/*.pt`` files are ignored); ``.gz`` copies are unpacked with a size limit. Files are
read through :mod:`mixframe.kernel.files` (regular files of bounded size), and labels are checked to be
class indices 0..9.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from mixframe import Component, DataBundle, DataContext, DataSpec, MixframeError, hookimpl, in_range, param, positive
from mixframe.kernel.files import open_user_file, read_user_bytes, read_user_text
from mixframe_plugins.datasets.image_folder import pixel_transform, resolve_root, seeded_split, value_range

if TYPE_CHECKING:  # torchvision is imported when a dataset is built, not when the plugin registers (it is slow to import)
    from torchvision import datasets


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


def _local_svhn() -> type[datasets.SVHN]:
    """torchvision's SVHN whose own md5 check is replaced by ours (done before, and optional)."""
    from torchvision import datasets

    return type("LocalSVHN", (datasets.SVHN,), {"_check_integrity": lambda self: os.path.isfile(os.path.join(self.root, self.filename)),
                                                "__module__": __name__})


def _no_legacy(cls: type[datasets.MNIST]) -> type[datasets.MNIST]:
    """``cls`` (same name: torchvision derives the folder from it) that never torch.loads ``processed/*.pt`` files."""
    return type(cls.__name__, (cls,), {"_check_legacy_exist": lambda self: False, "__module__": __name__})


def _missing_error(title: str, root: Path, expected: list[str], missing: list[str], source: str) -> MixframeError:
    return MixframeError(
        f"{title} not found under {root}: expected {', '.join(expected)} {source}"
        f" (missing: {', '.join(missing)}); put them there, set data.root, or set data.download: true"
    )


def _require(title: str, root: Path, files: list[tuple[str, str]], writer: str, verify: bool, source: str | None = None) -> None:
    """Every (relative path, md5) in ``files`` exists under ``root`` (and matches its md5 when ``verify``)."""
    missing = [rel for rel, _ in files if not (root / rel).is_file()]
    if missing:
        raise _missing_error(title, root, [rel for rel, _ in files], missing, source or f"as written by torchvision.datasets.{writer}")
    if verify:
        for rel, md5 in files:
            from torchvision.datasets.utils import check_md5

            if not check_md5(str(root / rel), md5):
                raise MixframeError(
                    f"{title}: {root / rel} does not match the official md5 checksum {md5}: the file is truncated or corrupted; "
                    "replace it (data.download: true fetches a fresh copy), or set data.verify_checksums: false for your own files in this format"
                )


IDX_MAX_BYTES = 256 * 1024 * 1024  # per idx file, packed or unpacked; MNIST's largest is 47,040,016 bytes


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
            _gunzip(raw / f"{n}.gz", raw / n, folder)
        size = (raw / n).stat().st_size
        if size > IDX_MAX_BYTES:
            raise MixframeError(f"{folder}: {raw / n} is {size:,} bytes, over the limit of {IDX_MAX_BYTES:,} for an idx file "
                                f"(the official training images are 47,040,016 bytes); replace it with the official file")


def _gunzip(src: Path, dst: Path, folder: str) -> None:
    """Unpack ``src`` (a user's .gz) into ``dst``, refusing more than IDX_MAX_BYTES of output (a gzip bomb)."""
    # torchvision reads the unpacked files only; it unpacks them itself after a download
    part = dst.with_name(f"{dst.name}.part")  # renamed when whole: a failure never leaves a truncated idx file
    try:
        with open_user_file(src, what=f"{folder} archive", max_bytes=IDX_MAX_BYTES) as f, \
                gzip.GzipFile(fileobj=f, mode="rb") as packed, open(part, "wb") as out:
            written = 0
            while chunk := packed.read(1 << 20):
                written += len(chunk)
                if written > IDX_MAX_BYTES:
                    raise MixframeError(f"{folder}: {src} unpacks to more than {IDX_MAX_BYTES:,} bytes (the official files are at most "
                                        "47,040,016 bytes): it is not an MNIST-style idx file; replace it with the official file")
                out.write(chunk)
        os.replace(part, dst)
    except (OSError, EOFError, zlib.error, MixframeError) as err:
        part.unlink(missing_ok=True)
        if isinstance(err, MixframeError):
            raise
        raise MixframeError(f"{folder}: cannot unpack {src} ({err}); gunzip it yourself into {src.parent}") from None


def _open(title: str, root: Path, make: Callable[[bool], Dataset]) -> tuple[Dataset, Dataset]:
    """(official train, official test) from ``make(train)``; a read or download failure becomes a MixframeError."""
    try:
        return make(True), make(False)
    except (RuntimeError, OSError, ValueError, TypeError, KeyError, EOFError, AssertionError, IndexError, MemoryError) as err:
        raise MixframeError(f"{title}: cannot read the files under {root} ({type(err).__name__}: {err}); "
                            "replace them with the official ones (data.download: true fetches them)") from None


def _check_labels(title: str, root: Path, split: str, images: Any, labels: Any) -> None:
    """One label per image, each a class index 0..9 (a damaged file would fail much later, in training)."""
    labels = np.asarray(labels).reshape(-1)
    if len(images) != len(labels):
        raise MixframeError(f"{title}: the {split} files under {root} hold {len(images)} images but {len(labels)} labels; "
                            "the files are damaged or from different sets: replace them with the official ones")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) > 9):
        bad = int(np.argmax((labels < 0) | (labels > 9)))
        raise MixframeError(f"{title}: the {split} label of example {bad} under {root} is {int(labels[bad])}, not a class 0..9; "
                            "the files are damaged: replace them with the official ones")


def _bundle(title: str, config: VisionSetConfig, channels: int, train: Dataset, test: Dataset) -> DataBundle:
    n = len(train)
    if config.val_size >= n:
        raise MixframeError(f"{title}: val_size={config.val_size} leaves no training examples (the training set has {n}); lower data.val_size")
    train_idx, val_idx, _ = seeded_split(n, config.seed, config.val_size)
    transform = pixel_transform(config.size, config.scale)
    spec = DataSpec(shape=(channels, config.size, config.size), value_range=value_range(config.scale), num_classes=10,
                    preprocess=transform)
    return DataBundle(spec=spec, train=LazySplit(train, train_idx, transform), val=LazySplit(train, val_idx, transform),
                      test=LazySplit(test, np.arange(len(test)), transform), label_kind="class")


def _idx_set(name: str, cls: type[datasets.MNIST], config: VisionSetConfig) -> DataBundle:
    root = resolve_root(config.root, name)
    if not config.download:
        _prepare_idx(root, cls.__name__)
    reader = _no_legacy(cls)
    train, test = _open(cls.__name__, root, lambda train: reader(str(root), train=train, download=config.download))
    for split, ds in (("training", train), ("test", test)):
        _check_labels(cls.__name__, root, split, ds.data, ds.targets)
    return _bundle(cls.__name__, config, 1, train, test)


def build_mnist(config: VisionSetConfig, context: DataContext) -> DataBundle:
    """MNIST digits (1 channel) from <root>/MNIST/raw, official train/test split plus a seeded validation subset."""
    from torchvision import datasets

    return _idx_set("mnist", datasets.MNIST, config)


def build_kmnist(config: VisionSetConfig, context: DataContext) -> DataBundle:
    """Kuzushiji-MNIST (1 channel) from <root>/KMNIST/raw, official train/test split plus a seeded validation subset."""
    from torchvision import datasets

    return _idx_set("kmnist", datasets.KMNIST, config)


def build_svhn(config: ChecksummedSetConfig, context: DataContext) -> DataBundle:
    """SVHN cropped digits (train_32x32.mat, test_32x32.mat; the 'extra' set is not used)."""
    from torchvision import datasets

    root = resolve_root(config.root, "svhn")
    if not config.download:
        files = [(v[1], v[2]) for k, v in datasets.SVHN.split_list.items() if k in ("train", "test")]
        _require("SVHN", root, files, "SVHN", config.verify_checksums)
        if not config.verify_checksums:
            for rel, _ in files:
                _check_svhn_variables(root / rel)
    train, test = _open("SVHN", root, lambda train: _local_svhn()(str(root), split="train" if train else "test", download=config.download))
    for split, ds in (("training", train), ("test", test)):
        _check_labels("SVHN", root, split, ds.data, ds.labels)
    return _bundle("SVHN", config, 3, train, test)


SVHN_MAX_EXAMPLES = 1_000_000  # the official sets hold 73,257 (train), 26,032 (test) and 531,131 (extra) digits


def _check_svhn_variables(path: Path) -> None:
    """A .mat file not checked by md5 holds only X (32, 32, 3, N) and y (N, 1) of sane size (read from its headers, cheaply)."""
    import scipy.io

    try:
        found = {name: tuple(shape) for name, shape, _ in scipy.io.whosmat(str(path))}
    except Exception as err:  # noqa: BLE001 - scipy raises many types for a file that is not a .mat file
        raise MixframeError(f"SVHN: cannot read {path} as a MATLAB .mat file ({type(err).__name__}: {err}); "
                            "replace it with the official file") from None
    x, y = found.get("X"), found.get("y")
    n = x[3] if x is not None and len(x) == 4 else -1
    shapes_ok = x is not None and x[:3] == (32, 32, 3) and y in ((n, 1), (n,)) and 0 < n <= SVHN_MAX_EXAMPLES
    if set(found) != {"X", "y"} or not shapes_ok:
        shown = ", ".join(f"{k} {v}" for k, v in found.items()) or "nothing"
        raise MixframeError(f"SVHN: {path} holds {shown}; expected exactly X (32, 32, 3, N) and y (N, 1) with N at most "
                            f"{SVHN_MAX_EXAMPLES:,}, as in the official files; replace it")


# ---------------------------------------------------------------- CIFAR-10, binary version (no pickles)

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_ARCHIVE, CIFAR_ARCHIVE_MD5 = "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR_FOLDER = "cifar-10-batches-bin"
CIFAR_PYTHON_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = [("data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"), ("data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"),
               ("data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"), ("data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"),
               ("data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d")]
CIFAR_TEST = [("test_batch.bin", "803d5f7f4d78ea53de84dbe85f74fb6d")]
CIFAR_META = "batches.meta.txt"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_RECORD = 1 + 3 * 32 * 32  # a label byte, then the red, green and blue 32x32 planes
CIFAR_MAX_RECORDS = 60_000  # per file; the official files hold 10,000
CIFAR_GET = (f"the binary version of CIFAR-10 ({CIFAR_ARCHIVE} from https://www.cs.toronto.edu/~kriz/cifar.html, "
             "\"CIFAR-10 binary version (suitable for C programs)\")")


class CIFAR10Binary(Dataset):
    """CIFAR-10 images (N, 32, 32, 3) uint8 and labels, served as (PIL image, class index) like torchvision's."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
        self.data = images
        self.targets = labels
        self.classes = classes
        self.class_to_idx = {c: i for i, c in enumerate(classes)}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.data[index]), int(self.targets[index])


def read_cifar_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64) from CIFAR-10 binary batch files; plain bytes, nothing unpickled."""
    images, labels = [], []
    for path in paths:
        raw = read_user_bytes(path, what="CIFAR-10 batch", max_bytes=CIFAR_MAX_RECORDS * CIFAR_RECORD)
        if not raw or len(raw) % CIFAR_RECORD:
            raise MixframeError(f"CIFAR-10: {path} is {len(raw):,} bytes, not a whole number of {CIFAR_RECORD}-byte records "
                                f"(1 label byte + 3072 pixel bytes; the official files hold 10,000): it is truncated or not from "
                                f"{CIFAR_GET}; replace it")
        records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
        if int(records[:, 0].max()) > 9:
            bad = int(np.argmax(records[:, 0] > 9))
            raise MixframeError(f"CIFAR-10: record {bad} of {path} has the label byte {int(records[bad, 0])}, not a class 0..9: "
                                f"the file is damaged or not from {CIFAR_GET} (CIFAR-100's records have two label bytes); replace it")
        labels.append(records[:, 0].astype(np.int64))
        images.append(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _cifar_classes(folder: Path) -> list[str]:
    """The class names from batches.meta.txt (one a line) when present, else the official ten."""
    path = folder / CIFAR_META
    if not path.exists():
        return list(CIFAR_CLASSES)
    names = [line.strip() for line in read_user_text(path, what="CIFAR-10 class list", max_bytes=4096).splitlines() if line.strip()]
    if len(names) != 10:
        raise MixframeError(f"CIFAR-10: {path} lists {len(names)} class names, not 10 (one a line); replace it with the official file "
                            "or delete it (the official names are then used)")
    return names


def _download_cifar(root: Path) -> None:
    """Fetch the official binary archive (md5-checked) and extract only the batch files and the class list."""
    wanted = {f"{CIFAR_FOLDER}/{name}" for name, _ in CIFAR_TRAIN + CIFAR_TEST} | {f"{CIFAR_FOLDER}/{CIFAR_META}"}
    try:
        from torchvision.datasets.utils import download_url

        download_url(CIFAR_URL, str(root), filename=CIFAR_ARCHIVE, md5=CIFAR_ARCHIVE_MD5)
        (root / CIFAR_FOLDER).mkdir(parents=True, exist_ok=True)
        with tarfile.open(root / CIFAR_ARCHIVE, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    src = tar.extractfile(member)
                    assert src is not None
                    (root / member.name).write_bytes(src.read())
    except (OSError, RuntimeError, tarfile.TarError, AssertionError) as err:
        raise MixframeError(f"CIFAR-10: downloading {CIFAR_URL} into {root} failed ({type(err).__name__}: {err}); download and "
                            f"extract {CIFAR_ARCHIVE} yourself so that {root / CIFAR_FOLDER / CIFAR_TRAIN[0][0]} exists") from None


def build_cifar10(config: ChecksummedSetConfig, context: DataContext) -> DataBundle:
    """CIFAR-10 from <root>/cifar-10-batches-bin (the official binary version; the pickled python version is refused)."""
    root = resolve_root(config.root, "cifar10")
    folder = root / CIFAR_FOLDER
    files = [(f"{CIFAR_FOLDER}/{name}", md5) for name, md5 in CIFAR_TRAIN + CIFAR_TEST]
    if config.download and not all((root / rel).is_file() for rel, _ in files):
        _download_cifar(root)
    if not folder.is_dir() and (root / CIFAR_PYTHON_FOLDER).is_dir():
        raise MixframeError(
            f"CIFAR-10 under {root} is the python version ({CIFAR_PYTHON_FOLDER}/, pickled batches), which mixframe does not read: "
            f"unpickling a file can run any code. Download {CIFAR_GET} and extract it under {root}, so that "
            f"{folder / CIFAR_TRAIN[0][0]} exists (or set data.download: true to fetch it)"
        )
    _require("CIFAR-10", root, files, "", config.verify_checksums,
             source=f"from {CIFAR_GET}, extracted under {root}")
    classes = _cifar_classes(folder)
    train = CIFAR10Binary(*read_cifar_batches([root / rel for rel, _ in files[:5]]), classes)
    test = CIFAR10Binary(*read_cifar_batches([root / rel for rel, _ in files[5:]]), classes)
    return _bundle("CIFAR-10", config, 3, train, test)


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Provides

    unit = Provides("unit_range", when=lambda c: c.scale == "unit", setting="scale: unit")
    provides = ("image_data", "class_labels", unit)
    return [
        Component(kind="dataset", name="mnist", implementation=build_mnist, config=VisionSetConfig, provides=provides,
                  summary="MNIST from a local torchvision folder (28 px resized to size, 1 channel); 10 classes"),
        Component(kind="dataset", name="kmnist", implementation=build_kmnist, config=VisionSetConfig, provides=provides,
                  summary="Kuzushiji-MNIST from a local torchvision folder (1 channel); 10 classes"),
        Component(kind="dataset", name="svhn", implementation=build_svhn, config=ChecksummedSetConfig, provides=provides,
                  summary="SVHN cropped digits from local .mat files (RGB 32 px); 10 classes"),
        Component(kind="dataset", name="cifar10", implementation=build_cifar10, config=ChecksummedSetConfig, provides=provides,
                  summary="CIFAR-10 from the local binary batches, cifar-10-batches-bin (RGB 32 px); 10 classes"),
    ]
