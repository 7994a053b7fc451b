"""``mixframe recipes``: the recipes shipped with mixframe, what each does and the machine it needs (:mod:`mixframe.kernel.shipped`)."""

from __future__ import annotations

import argparse
import json

from mixframe import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (name, description, scale, notes, base, file)")


def run(args: argparse.Namespace) -> int:
    from mixframe.kernel import shipped

    recipes = shipped.catalogue()
    if args.json:
        print(json.dumps([{"name": r.name, "description": r.description, "scale": r.scale, "notes": r.notes, "base": r.is_base,
                           "file": str(r.path)} for r in recipes], indent=2))
        return 0
    print(shipped.format_catalogue(recipes))
    return 0


def command() -> Command:
    return Command(name="recipes", help="list the shipped recipes (train one by name: mixframe train NAME)", add_arguments=add_arguments,
                   run=run)
