"""``mixframe resume RUN_DIR``: continue a stopped (even killed) run from its last checkpoint (``mixframe.resume``)."""

from __future__ import annotations

import argparse

from mixframe import Command
from mixframe.cli.arguments import add_overrides, add_progress, add_run_dirs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(parser, many=False)
    add_overrides(parser)
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    import mixframe

    mixframe.resume(args.run_dir, args.overrides, progress=not args.no_progress)
    return 0


def command() -> Command:
    return Command(name="resume", help="continue a stopped run from its last checkpoint (--set train.* to change, e.g., train.lr or train.epochs)",
                   add_arguments=add_arguments, run=run)
