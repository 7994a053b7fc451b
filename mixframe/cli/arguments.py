"""Argument helpers shared by command plugins, so that every command names the same thing the same way."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe.errors import MixframeError

# re-exported: the commands check their output paths through the same helpers the API uses
from mixframe.kernel.files import check_output_path as check_output_path
from mixframe.kernel.files import check_writable_folder as check_writable_folder


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, parsed as YAML (repeatable), e.g. --set train.epochs=5")


def add_run_dirs(parser: argparse.ArgumentParser, many: bool = True) -> None:
    if many:
        parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders made by 'mixframe train'")
    else:
        parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder made by 'mixframe train'")


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``; a command checks it with :func:`check_device` before loading anything."""
    parser.add_argument("--device", default="cpu", help="torch device to load the runs on (default cpu)")


def add_seed(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--seed", type=int, default=0, help=f"seed of {what} (default 0)")


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch instead)")


def at_least_one(value: int, option: str) -> None:
    if value < 1:
        raise MixframeError(f"{option} must be at least 1, got {value}")


def check_suffix(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    if path.suffix.lower() not in suffixes:
        raise MixframeError(f"--out {path} must end in {' or '.join(suffixes)} ({what})")


# -- checks made before any work starts: one message naming the problem ------------------------------------
MAX_PICTURE_STEPS = 32  # interpolants per row of a picture (the paper's figures use 8 to 10)
MAX_PICTURE_PAIRS = 32  # rows (pairs) of a picture
MAX_PICTURE_SAMPLES = 32  # sampled masks per combination in a picture
MAX_MEASURED_PAIRS = 10_000  # pairs decoded at once by a measurement (each pair holds four images in memory)


def at_most(value: int, cap: int, option: str, why: str) -> None:
    """``value`` within [1, cap]: a picture or measurement whose memory grows with it stays bounded."""
    at_least_one(value, option)
    if value > cap:
        raise MixframeError(f"{option} is at most {cap:,} ({why}), got {value:,}")


def check_device(name: str, option: str = "--device") -> str:
    """``name`` is a device torch knows and this machine has (a CUDA device when ``cuda``); returns it."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise MixframeError(f"{option} {name!r} is not a torch device; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "" if torch.version.cuda else f" (this torch {torch.__version__} is built without CUDA)"
            raise MixframeError(f"{option} {name}: no CUDA device is available on this machine{built}; use {option} cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise MixframeError(f"{option} {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise MixframeError(f"{option} {name}: no MPS (Apple GPU) device is available on this machine; use {option} cpu")
    elif device.type != "cpu":
        try:
            torch.empty(1, device=device)
        except Exception as err:  # noqa: BLE001 - each backend fails its own way
            raise MixframeError(f"{option} {name}: the device cannot be used here ({type(err).__name__}); use {option} cpu") from None
    return name


def write_output(path: Path, data: bytes | str) -> None:
    """Write a command's output file (atomically, its folder made when missing) and print its path."""
    from mixframe.runs.folder import atomic_write_bytes

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as err:
        raise MixframeError(f"--out {path} cannot be written: {err.strerror or err}") from None
    print(path)
