"""``mixframe evaluate RUN_DIR...``: compute metrics into each run's evaluation.json (``Run.evaluate``)."""

from __future__ import annotations

import argparse

from mixframe import Command, MixframeError, RunFolder
from mixframe.cli.arguments import add_device, add_run_dirs, check_device, check_writable_folder
from mixframe.runs.folder import NotSaved


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_dirs(parser)
    parser.add_argument("--metric", action="append", default=[], metavar="NAME",
                        help="a metric to compute (repeatable); default: the recipe's 'metrics' section")
    add_device(parser)


def run(args: argparse.Namespace) -> int:
    import mixframe
    from mixframe.runs.evaluation import evaluate

    check_device(args.device)
    for run_dir in args.run_dirs:  # every folder is a run that takes its evaluation.json, before any metric is computed
        folder = RunFolder.open(run_dir)
        check_writable_folder(folder.path, f"the metrics of {folder.path} (its {RunFolder.EVALUATION})")
    table, unsaved, metrics = {}, [], {}
    for run_dir in args.run_dirs:
        print(f"{run_dir}:")
        trained = mixframe.load_run(run_dir, device=args.device)
        metrics.update(dict.fromkeys(args.metric or [m.name for m in trained.recipe.metrics]))
        try:
            table[trained.name] = evaluate(trained, args.metric, echo=True)
        except NotSaved as err:  # the metrics were printed as they finished
            unsaved.append(str(err))
    print()
    print(values_table(table, list(metrics)))
    if unsaved:
        raise MixframeError("the metrics printed above were computed but not saved: " + "; ".join(unsaved))
    return 0


def values_table(table: dict[str, dict[str, float]], metrics: list[str]) -> str:
    """One line per value (a laptop's terminal fits many values and runs): its name, one column per run
    (#1, #2, ... named below), and what it means (the metric plugins' ``meanings``)."""
    from mixframe.tools.report import format_value, meaning_of, metric_meanings

    meanings = metric_meanings(metrics)
    runs = list(table)
    keys = list(dict.fromkeys(key for values in table.values() for key in values))
    cells = [[format_value(table[run].get(key)) for run in runs] for key in keys]
    heads = [f"#{i}" for i in range(1, len(runs) + 1)]
    name_width = max([len("value"), *(len(k) for k in keys)])
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(heads)]
    lines = ["  ".join(["value".ljust(name_width), *(h.rjust(w) for h, w in zip(heads, widths)), "what it means"])]
    for key, row in zip(keys, cells):
        meaning = next((m for name in metrics if (m := meaning_of(key, meanings.get(name, {})))), "(its plugin gives no meaning)")
        lines.append("  ".join([key.ljust(name_width), *(c.rjust(w) for c, w in zip(row, widths)), meaning]))
    lines += [f"{head}: {run}" for head, run in zip(heads, runs)]
    return "\n".join(lines)


def command() -> Command:
    return Command(name="evaluate", help="compute metrics of trained runs; writes evaluation.json into each run folder",
                   add_arguments=add_arguments, run=run)
