"""Argument helpers shared by command plugins, so that every command names the same thing the same way."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe.errors import MixframeError


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, parsed as YAML (repeatable), e.g. --set train.epochs=5")


def add_run_dirs(parser: argparse.ArgumentParser, many: bool = True) -> None:
    if many:
        parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders made by 'mixframe train'")
    else:
        parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder made by 'mixframe train'")


def add_device(parser: argparse.ArgumentParser) -> None:
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
