"""``mixframe sweep RECIPE --grid KEY=V1,V2``: a grid of recipe values, several seeds each (``mixframe.sweep.sweep``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command, hookimpl
from mixframe.arguments import add_overrides, add_progress, check_output_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", type=Path, metavar="RECIPE")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...", help="values to sweep (repeatable: the product is trained)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per grid point (seed, seed+1, ...)")
    parser.add_argument("--metric", action="append", default=[], metavar="NAME", help="metrics to compute; default: the recipe's")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="folder that receives the sweep folder")
    add_overrides(parser)
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    from mixframe.sweep import sweep

    check_output_path(args.out, folder=True)
    folder = sweep(args.recipe, args.grid, seeds=args.seeds, metrics=args.metric, overrides=args.overrides, out=args.out,
                   progress=not args.no_progress)
    print(f"\nsweep folder: {folder} (summary.md, sweep.json)")
    return 0


@hookimpl
def mixframe_commands() -> list[Command]:
    return [Command(name="sweep", help="train a grid of recipe values, several seeds each, and tabulate the metrics",
                    add_arguments=add_arguments, run=run)]
