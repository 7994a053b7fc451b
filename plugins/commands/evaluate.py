"""``mixframe evaluate RUN_DIR...``: compute metrics into each run's evaluation.json (``Run.evaluate``)."""

from __future__ import annotations

import argparse

from mixframe import Command, hookimpl
from mixframe.arguments import add_device, add_run_dirs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(parser)
    parser.add_argument("--metric", action="append", default=[], metavar="NAME",
                        help="a metric to compute (repeatable); default: the recipe's 'metrics' section")
    add_device(parser)


def run(args: argparse.Namespace) -> int:
    import mixframe
    from mixframe.evaluation import evaluate, format_table

    table = {}
    for run_dir in args.run_dirs:
        print(f"{run_dir}:")
        trained = mixframe.load_run(run_dir, device=args.device)
        table[trained.name] = evaluate(trained, args.metric, echo=True)
    print()
    print(format_table(table))
    return 0


@hookimpl
def mixframe_commands() -> list[Command]:
    return [Command(name="evaluate", help="compute metrics of trained runs; writes evaluation.json into each run folder",
                    add_arguments=add_arguments, run=run)]
