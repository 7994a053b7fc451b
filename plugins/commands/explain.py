"""``mixframe explain KIND NAME``: a component's parameters, with types, defaults and help."""

from __future__ import annotations

import argparse

from mixframe import Command
from mixframe.kernel.hookspecs import KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", help=f"the component's kind: {', '.join(KINDS)}")
    parser.add_argument("name", help="its registered name (see mixframe components KIND)")


def run(args: argparse.Namespace) -> int:
    from mixframe.kernel.config import describe_fields
    from mixframe.kernel.registry import get_registry

    reg = get_registry()
    comp = reg.get(args.kind, args.name)
    print(f"{args.kind} {comp.name}: {comp.summary}")
    use = (f"mixframe sweep --launcher {comp.name} --launcher-set KEY=VALUE" if args.kind == "launcher"
           else f"recipe: {{kind: {comp.name}, ...}}")
    if args.kind == "callback" and comp.default:
        use = f"runs in every recipe unless switched off: {{kind: {comp.name}, enabled: false}}; to change settings: {{kind: {comp.name}, ...}}"
    print(f"  provided by plugin {reg.provider(args.kind, comp.name)}; {use}")
    doc = (comp.implementation.__doc__ or "").strip()
    if doc:
        print("\n  " + doc.replace("\n", "\n  "))
    rows = describe_fields(comp.config)
    print("\nparameters:" if rows else "\nparameters: (none)")
    for row in rows:
        print(f"  {row['name']}: {row['type']} = {row['default']}")
        if row["help"]:
            print(f"      {row['help']}")
    return 0


def command() -> Command:
    return Command(name="explain", help="show a component's parameters: types, defaults and help", add_arguments=add_arguments, run=run)
