"""``mixframe interpolate RUN_DIR...``: the same pairs interpolated by several runs, pixel space first."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command
from mixframe.cli.arguments import (
    MAX_PICTURE_PAIRS,
    MAX_PICTURE_STEPS,
    add_device,
    add_run_dirs,
    add_seed,
    at_most,
    check_device,
    check_output_path,
    check_suffix,
    write_output,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixframe.tools.interpolate import MODES, SPLITS

    add_run_dirs(parser)
    parser.add_argument("--pairs", type=int, default=4, help="number of pairs of examples (default 4)")
    parser.add_argument("--steps", type=int, default=8, help="decoded interpolants per row, ends included (default 8)")
    parser.add_argument("--out", type=Path, default=Path("interpolation.png"), help="PNG file to write (default interpolation.png)")
    parser.add_argument("--mode", choices=MODES, default="linear", help="linear mixing of codes, or a Bernoulli mask that swaps feature maps")
    parser.add_argument("--split", choices=SPLITS, default="test", help="split the pairs come from (default test)")
    parser.add_argument("--layout", choices=("rows", "paper"), default="rows",
                        help="rows: x1, interpolants, x2 on every row; paper: the seed's Figures 7-13 (real ends once per pair, "
                             "pixel row, one row per run, the mode in the title)")
    parser.add_argument("--label", action="append", default=None, metavar="TEXT",
                        help="a run's row label, once per run in order (default: the run folders' names)")
    add_seed(parser, "the pairs and the Bernoulli channel order")
    add_device(parser)


def run(args: argparse.Namespace) -> int:
    from mixframe.tools.interpolate import check_steps, interpolation_png, load_runs, paper_figure_png

    check_suffix(args.out, (".png",), "the picture is a PNG file")
    check_output_path(args.out)
    check_device(args.device)
    check_steps(args.steps)
    at_most(args.steps, MAX_PICTURE_STEPS, "--steps", "interpolants per row of the picture")
    at_most(args.pairs, MAX_PICTURE_PAIRS, "--pairs", "rows of the picture per run")
    runs = load_runs(args.run_dirs, device=args.device)
    if args.layout == "paper":
        png = paper_figure_png(runs, args.pairs, args.steps, args.mode, args.split, args.seed, labels=args.label)
    else:
        png = interpolation_png(runs, args.pairs, args.steps, args.mode, args.split, args.seed, labels=args.label)
    write_output(args.out, png)
    return 0


def command() -> Command:
    return Command(name="interpolate", help="interpolate the same test pairs with several runs (rows per run, plus pixel space)",
                   add_arguments=add_arguments, run=run)
