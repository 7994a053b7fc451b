"""``mixframe interpolate RUN_DIR...``: the same pairs interpolated by several runs, pixel space first; with
``--between A.png B.png`` two of your own pictures, as ``Run.interpolate`` does; ``--out x.gif``: an animated GIF."""

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
    parser.add_argument("--out", type=Path, default=Path("interpolation.png"),
                        help="PNG file to write (default interpolation.png), or a .gif: one run's path as an animation")
    parser.add_argument("--between", type=Path, nargs=2, metavar=("A", "B"), default=None,
                        help="interpolate between these two picture files (prepared as the run's training pictures were) "
                             "instead of --pairs pairs from --split")
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
    from mixframe import MixframeError
    from mixframe.tools.interpolate import between, check_steps, interpolation_gif, interpolation_png, load_runs, paper_figure_png

    check_suffix(args.out, (".png", ".gif"), "a PNG picture, or an animated GIF of one run")
    gif = args.out.suffix.lower() == ".gif"
    if gif and len(args.run_dirs) > 1:
        raise MixframeError(f"--out {args.out}: an animated GIF shows one run's path; pass one run folder, or write a .png to compare runs")
    check_output_path(args.out)
    check_device(args.device)
    check_steps(args.steps)
    at_most(args.steps, MAX_PICTURE_STEPS, "--steps", "interpolants per row of the picture")
    at_most(args.pairs, MAX_PICTURE_PAIRS, "--pairs", "rows of the picture per run")
    runs = load_runs(args.run_dirs, device=args.device)
    x1 = x2 = None
    if args.between:
        x1, x2 = between(runs[0], *args.between)
    elif gif:
        from mixframe.tools.interpolate import pick_pairs

        x1, x2 = pick_pairs(runs[0], 1, args.split, args.seed)
    if gif:
        data = interpolation_gif(runs[0], x1, x2, args.steps, args.mode, args.seed)
    elif args.layout == "paper":
        data = paper_figure_png(runs, args.pairs, args.steps, args.mode, args.split, args.seed, x1=x1, x2=x2, labels=args.label)
    else:
        data = interpolation_png(runs, args.pairs, args.steps, args.mode, args.split, args.seed, x1=x1, x2=x2, labels=args.label)
    write_output(args.out, data)
    return 0


def command() -> Command:
    return Command(name="interpolate", help="interpolate the same test pairs, or two of your pictures (--between A B), "
                                            "with several runs (rows per run, plus pixel space); a .gif animates one run",
                   add_arguments=add_arguments, run=run)
