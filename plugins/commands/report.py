"""``mixframe report RUN_DIR...``: one self-contained HTML page comparing runs (``mixframe.tools.report.build_report``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command
from mixframe.cli.arguments import (
    MAX_PICTURE_PAIRS,
    MAX_PICTURE_STEPS,
    add_run_dirs,
    at_most,
    check_output_path,
    check_suffix,
    write_output,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(parser)
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write (default report.html)")
    parser.add_argument("--pairs", type=int, default=4, help="pairs in the interpolation picture (default 4)")
    parser.add_argument("--steps", type=int, default=8, help="interpolants per row in the interpolation picture (default 8)")
    parser.add_argument("--no-interpolation", action="store_true", help="skip the interpolation picture (it loads every model)")


def run(args: argparse.Namespace) -> int:
    from mixframe.tools.report import build_report

    check_suffix(args.out, (".html", ".htm"), "the report is one HTML page")
    check_output_path(args.out)
    at_most(args.pairs, MAX_PICTURE_PAIRS, "--pairs", "rows of the interpolation picture")
    at_most(args.steps, MAX_PICTURE_STEPS, "--steps", "interpolants per row of the interpolation picture")
    page = build_report(args.run_dirs, pairs=args.pairs, steps=args.steps, interpolation=not args.no_interpolation)
    write_output(args.out, page)
    return 0


def command() -> Command:
    return Command(name="report", help="write one self-contained HTML page comparing runs (table, recipes, warnings, pictures)",
                   add_arguments=add_arguments, run=run)
