"""``mixframe train RECIPE``: train into a new run folder (``mixframe.train``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command
from mixframe.cli.arguments import add_overrides, add_progress, check_output_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", type=Path, metavar="RECIPE")
    add_overrides(parser)
    parser.add_argument("--out", type=Path, default=Path("runs"), help="folder that receives the new run folder (default: runs)")
    parser.add_argument("--name", default=None, help="run folder name before its time stamp (default: the recipe's file name)")
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    import mixframe

    check_output_path(args.out, folder=True)
    result = mixframe.train(args.recipe, args.overrides, out=args.out, name=args.name, progress=not args.no_progress)
    if result.folder.info().get("status") == "complete":
        print(f"run complete: {result.dir}")
    return 0


def command() -> Command:
    return Command(name="train", help="train a recipe into a new run folder", add_arguments=add_arguments, run=run)
