"""``mixframe results PATH``: a study's or sweep's comparison table (``mixframe.tools.results.compare``), or its runs
(``--runs``: ``mixframe.tools.results.results``, with ``--metric`` ``metric_column``), as markdown, CSV or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH", help="a study folder, a sweep folder, or a folder holding them")
    parser.add_argument("--format", choices=("md", "csv", "json"), default="md", help="output format (default md)")
    parser.add_argument("--metric", help="the metric compared (default: the study's headline)")
    parser.add_argument("--baseline", help="the method compared with (default: the study's baseline)")
    parser.add_argument("--runs", action="store_true", help="print every run (one row each) instead of the comparison; "
                        "with --metric, only that metric's column (a study's progress, trial by trial)")


def run(args: argparse.Namespace) -> int:
    from mixframe.tools.results import compare, markdown, metric_column, results

    frame = results(args.path)
    table = metric_column(frame, args.metric) if args.runs else compare(frame, args.metric, args.baseline)
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
    elif args.format == "json":
        print(table.to_json(orient="records", indent=2))
    elif args.runs:  # for reading: settings in short, no folders (csv and json keep them)
        shown = table.drop(columns=["eval_seeds", "source", "run"], errors="ignore")
        shown["settings"] = [" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()) for s in shown["settings"]]
        print(shown.to_string(index=False))
    else:
        print(markdown(table))
    return 0


def command() -> Command:
    return Command(name="results", help="a study's or sweep's runs as a table with paired statistics (md, csv, json)",
                   add_arguments=add_arguments, run=run)
