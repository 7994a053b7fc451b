"""``mixframe results PATH``: a study's or sweep's comparison table (``mixframe.tools.results.compare``), or its runs
(``--runs``: ``mixframe.tools.results.results``), as markdown, CSV or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH", help="a study folder, a sweep folder, or a folder holding them")
    parser.add_argument("--format", choices=("md", "csv", "json"), default="md", help="output format (default md)")
    parser.add_argument("--metric", help="the metric compared (default: the study's headline)")
    parser.add_argument("--baseline", help="the method compared with (default: the study's baseline)")
    parser.add_argument("--runs", action="store_true", help="print every run (one row each) instead of the comparison")


def run(args: argparse.Namespace) -> int:
    from mixframe.tools.results import compare, markdown, results

    frame = results(args.path)
    table = frame if args.runs else compare(frame, args.metric, args.baseline)
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
    elif args.format == "json":
        print(table.to_json(orient="records", indent=2))
    elif args.runs:
        print(table.drop(columns=["eval_seeds", "source"]).to_string(index=False))
    else:
        print(markdown(table))
    return 0


def command() -> Command:
    return Command(name="results", help="a study's or sweep's runs as a table with paired statistics (md, csv, json)",
                   add_arguments=add_arguments, run=run)
