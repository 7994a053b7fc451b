"""``mixframe sweep RECIPE --grid KEY=V1,V2``: a grid of recipe values, several seeds each (``mixframe.tools.sweep.sweep``);
``mixframe sweep --resume SWEEP_DIR`` runs the runs that did not finish (``mixframe.tools.sweep.resume_sweep``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command
from mixframe.cli.arguments import add_overrides, add_progress, check_output_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", type=Path, metavar="RECIPE", nargs="?", help="the recipe to sweep (not with --resume)")
    parser.add_argument("--resume", type=Path, metavar="SWEEP_DIR", help="run again the runs of this sweep that did not finish")
    parser.add_argument("--launcher", metavar="NAME",
                        help="how runs are started: local (default), ray, slurm (mixframe components launcher)")
    parser.add_argument("--launcher-set", dest="launcher_options", action="append", default=[], metavar="KEY=VALUE",
                        help="a launcher option, parsed as YAML (repeatable; mixframe explain launcher NAME lists them)")
    parser.add_argument("--jobs", type=int, metavar="N", help="runs at once (the same as --launcher-set jobs=N)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...", help="values to sweep (repeatable: the product is trained)")
    parser.add_argument("--seeds", type=int, help="seeds per grid point (seed, seed+1, ...; default 1)")
    parser.add_argument("--max-runs", type=int, default=None, metavar="N",
                        help="refuse a plan of more than N runs (grid points x seeds; default 1000): a typo such as --seeds 1000000 "
                             "is a message, not hours of planning")
    parser.add_argument("--metric", action="append", default=[], metavar="NAME", help="metrics to compute; default: the recipe's")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="folder that receives the sweep folder")
    add_overrides(parser)
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    from mixframe import MixframeError
    from mixframe.tools.sweep import MAX_RUNS, read_sweep, resume_sweep, sweep

    options = [*args.launcher_options, *([f"jobs={args.jobs}"] if args.jobs is not None else [])]
    if args.resume is not None:
        planned = (("RECIPE", args.recipe), ("--grid", args.grid), ("--seeds", args.seeds), ("--set", args.overrides),
                   ("--metric", args.metric), ("--max-runs", args.max_runs))
        given = [name for name, value in planned if value]
        if given:
            raise MixframeError(f"--resume continues the sweep as it was planned; drop {', '.join(given)}")
        folder = resume_sweep(args.resume, launcher=args.launcher, launcher_options=options, progress=not args.no_progress)
    else:
        if args.recipe is None:
            raise MixframeError("name the recipe to sweep (mixframe sweep RECIPE --grid KEY=V1,V2), or --resume SWEEP_DIR")
        check_output_path(args.out, folder=True)
        folder = sweep(args.recipe, args.grid, seeds=1 if args.seeds is None else args.seeds, metrics=args.metric, overrides=args.overrides,
                       out=args.out, progress=not args.no_progress, launcher=args.launcher, launcher_options=options,
                       max_runs=MAX_RUNS if args.max_runs is None else args.max_runs)
    runs = read_sweep(folder)["runs"]
    failed = [r for r in runs if r["status"] != "complete"]
    print(f"\nsweep folder: {folder} (summary.md, sweep.json)")
    if failed:
        print(f"{len(failed)} of {len(runs)} runs failed; mixframe sweep --resume {folder} runs them again")
        return 1
    return 0


def command() -> Command:
    return Command(name="sweep", help="train a grid of recipe values, several seeds each, and tabulate the metrics",
                   add_arguments=add_arguments, run=run)
