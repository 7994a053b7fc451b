"""``mixframe report PATH...``: one self-contained HTML page comparing runs: run folders, or the runs of one study or
sweep folder (``mixframe.tools.report.write_report``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command
from mixframe.cli.arguments import MAX_PICTURE_PAIRS, MAX_PICTURE_STEPS, at_most, check_output_path, check_suffix


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                        help="run folders made by 'mixframe train', or one study folder (mixframe study) or sweep folder (mixframe sweep)")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write (default report.html)")
    parser.add_argument("--metric", help="a study's or sweep's comparison: the metric compared (default: the study's headline)")
    parser.add_argument("--baseline", help="a study's or sweep's comparison: the method compared with (default: the study's baseline)")
    parser.add_argument("--pairs", type=int, default=4, help="pairs in the interpolation picture (default 4)")
    parser.add_argument("--steps", type=int, default=8, help="interpolants per row in the interpolation picture (default 8)")
    parser.add_argument("--no-interpolation", action="store_true", help="skip the interpolation picture (it loads every model)")


def run(args: argparse.Namespace) -> int:
    from mixframe.tools.report import write_report

    check_suffix(args.out, (".html", ".htm"), "the report is one HTML page")
    check_output_path(args.out)
    at_most(args.pairs, MAX_PICTURE_PAIRS, "--pairs", "rows of the interpolation picture")
    at_most(args.steps, MAX_PICTURE_STEPS, "--steps", "interpolants per row of the interpolation picture")
    print(write_report(args.paths, args.out, pairs=args.pairs, steps=args.steps, interpolation=not args.no_interpolation,
                       metric=args.metric, baseline=args.baseline))
    return 0


def command() -> Command:
    return Command(name="report", help="write one self-contained HTML page comparing runs, or a study's or sweep's runs "
                                       "(tables, best values marked, recipes, warnings, pictures)",
                   add_arguments=add_arguments, run=run)
