"""``mixframe evaluate RUN_DIR...``: compute metrics into each run's evaluation.json (``Run.evaluate``)."""

from __future__ import annotations

import argparse

from mixframe import Command, MixframeError, RunFolder, hookimpl
from mixframe.arguments import add_device, add_run_dirs, check_device, check_writable_folder
from mixframe.runs import NotSaved


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(parser)
    parser.add_argument("--metric", action="append", default=[], metavar="NAME",
                        help="a metric to compute (repeatable); default: the recipe's 'metrics' section")
    add_device(parser)


def run(args: argparse.Namespace) -> int:
    import mixframe
    from mixframe.evaluation import evaluate, format_table

    check_device(args.device)
    for run_dir in args.run_dirs:  # every folder is a run that takes its evaluation.json, before any metric is computed
        folder = RunFolder.open(run_dir)
        check_writable_folder(folder.path, f"the metrics of {folder.path} (its {RunFolder.EVALUATION})")
    table, unsaved = {}, []
    for run_dir in args.run_dirs:
        print(f"{run_dir}:")
        trained = mixframe.load_run(run_dir, device=args.device)
        try:
            table[trained.name] = evaluate(trained, args.metric, echo=True)
        except NotSaved as err:  # the metrics were printed as they finished
            unsaved.append(str(err))
    print()
    print(format_table(table))
    if unsaved:
        raise MixframeError("the metrics printed above were computed but not saved: " + "; ".join(unsaved))
    return 0


@hookimpl
def mixframe_commands() -> list[Command]:
    return [Command(name="evaluate", help="compute metrics of trained runs; writes evaluation.json into each run folder",
                    add_arguments=add_arguments, run=run)]
