"""Writers of tiny datasets in the real on-disk formats, for testing the loaders end to end.

Every image is a constant gray level, unique within its file, so a test can read an example's
value back from ``x`` and check that it arrives with its own label.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def gray_levels(n: int, offset: int = 0) -> np.ndarray:
    """``n`` distinct uint8 gray levels (steps of 3 so they survive resizing and rounding)."""
    return (offset + 3 * np.arange(n)).astype(np.uint8)


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> None:
    """An idx file (the MNIST format): magic 0x0000 08 <ndim>, big-endian int32 dims, uint8 bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 12, n_test: int = 4, *, gz: bool = False) -> dict[str, np.ndarray]:
    """<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte; image i is constant level 3 i, label i % 10."""
    out = {}
    for prefix, split, n, offset in (("train", "train", n_train, 0), ("t10k", "test", n_test, 150)):
        levels = gray_levels(n, offset)
        images = np.broadcast_to(levels[:, None, None], (n, 28, 28))
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", images, gz=gz)
        write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels, gz=gz)
        out[f"{split}_levels"], out[f"{split}_labels"] = levels, labels.astype(np.int64)
    return out


def write_svhn(root: Path, n_train: int = 12, n_test: int = 4) -> dict[str, np.ndarray]:
    """train_32x32.mat / test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 meaning the digit 0."""
    out = {}
    root.mkdir(parents=True, exist_ok=True)
    for split, n, offset in (("train", n_train, 0), ("test", n_test, 150)):
        levels = gray_levels(n, offset)
        x = np.ascontiguousarray(np.broadcast_to(levels[None, None, None, :], (32, 32, 3, n)))
        digits = np.arange(n) % 10
        y = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
        scipy.io.savemat(str(root / f"{split}_32x32.mat"), {"X": x, "y": y})
        out[f"{split}_levels"], out[f"{split}_labels"] = levels, digits.astype(np.int64)
    return out


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10_records(levels: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: a label byte, then the red, green and blue 32x32 planes (levels - 1, levels, levels + 1)."""
    planes = np.repeat(np.stack([levels - 1, levels, levels + 1], axis=1).astype(np.uint8), 1024, axis=1)
    return np.concatenate([labels.astype(np.uint8)[:, None], planes], axis=1).tobytes()


def write_cifar10(root: Path, per_batch: int = 3, n_test: int = 4, *, meta: bool = True) -> dict[str, np.ndarray]:
    """cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin, batches.meta.txt}: the official binary version.

    Image i has the constant planes R = level - 1, G = level, B = level + 1 (the mean is its level).
    """
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    n_train = 5 * per_batch
    train_levels, test_levels = gray_levels(n_train, 3), gray_levels(n_test, 150)
    train_labels, test_labels = np.arange(n_train) % 10, (np.arange(n_test) + 3) % 10
    for b in range(5):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        (folder / f"data_batch_{b + 1}.bin").write_bytes(cifar10_records(train_levels[sl], train_labels[sl]))
    (folder / "test_batch.bin").write_bytes(cifar10_records(test_levels, test_labels))
    if meta:
        (folder / "batches.meta.txt").write_text("\n".join(CIFAR_CLASSES) + "\n\n")
    return {"train_levels": train_levels, "train_labels": train_labels.astype(np.int64),
            "test_levels": test_levels, "test_labels": test_labels.astype(np.int64)}


def write_cifar10_python(root: Path, meta_payload: object | None = None) -> Path:
    """cifar-10-batches-py/ as the python version lays it out (pickles); ``meta_payload`` replaces batches.meta's content."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    data = {"batch_label": "x", "labels": [0, 1], "data": np.zeros((2, 3072), np.uint8), "filenames": ["a.png", "b.png"]}
    for name in [*(f"data_batch_{b}" for b in range(1, 6)), "test_batch"]:
        (folder / name).write_bytes(pickle.dumps(data))
    meta = meta_payload if meta_payload is not None else {"label_names": CIFAR_CLASSES, "num_cases_per_batch": 2, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def write_bomb_png(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` gray pixels, with 1-bit rows that are all zero (a decompression bomb).

    The pixel data is compressed as it is produced, so a 15000x15000 image is about 27 KB and
    costs a few MB of memory to write.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the bits of one row
    idat = b"".join(packer.compress(row * 500) for _ in range(height // 500)) + packer.compress(row * (height % 500)) + packer.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def write_image(path: Path, level: int, size: tuple[int, int] = (12, 10), mode: str = "RGB") -> None:
    """A constant image (width, height) at gray ``level``; the suffix picks the format (png is lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, (level,) * len(mode)).save(path)


def write_celeba(root: Path, attributes: dict[str, list[int]], partition: list[int], size: tuple[int, int] = (20, 24)) -> list[str]:
    """img_align_celeba/00000k.jpg (constant, level 40 k), list_attr_celeba.txt and list_eval_partition.txt."""
    names = list(attributes)
    n = len(partition)
    files = [f"{k + 1:06d}.jpg" for k in range(n)]
    for k, f in enumerate(files):
        write_image(root / "img_align_celeba" / f, 40 * k + 20, size)
    lines = [str(n), " ".join(names) + " "]
    for k, f in enumerate(files):
        lines.append(f + "".join(f" {attributes[a][k]:2d}" for a in names))  # CelebA pads "-1" and " 1" to one width
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{f} {p}\n" for f, p in zip(files, partition)))
    return files
