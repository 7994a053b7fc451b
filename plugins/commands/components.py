"""``mixframe components``: registered components of one kind, or of all kinds."""

from __future__ import annotations

import argparse
import json

from mixframe import Command, MixframeError
from mixframe.kernel.hookspecs import KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", help=f"one kind: {', '.join(KINDS)}")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from mixframe.errors import suggest
    from mixframe.kernel.registry import get_registry

    reg = get_registry()
    if args.kind and args.kind not in KINDS:
        raise MixframeError(f"unknown kind {args.kind!r}; choices: {', '.join(KINDS)}{suggest(args.kind, KINDS)}")
    kinds = [args.kind] if args.kind else list(KINDS)
    if args.json:
        print(json.dumps({k: [{"name": c.name, "summary": c.summary, "plugins": reg.providers(k, c.name)} for c in reg.components(k)]
                          for k in kinds}, indent=2))
        return 0
    width = max((len(c.name) for k in kinds for c in reg.components(k)), default=0)
    for kind in kinds:
        print(f"{kind}:")
        for comp in reg.components(kind):
            default = " (default)" if comp.default else ""
            print(f"  {comp.name:<{width}}  {comp.summary}{default}  [{', '.join(reg.providers(kind, comp.name))}]")
    return 0


def command() -> Command:
    return Command(name="components", help="list registered components, by kind", add_arguments=add_arguments, run=run)
