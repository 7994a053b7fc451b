"""``mixframe plugins``: loaded plugins, their versions, what each provides, and what went wrong."""

from __future__ import annotations

import argparse
import json

from mixframe import Command, hookimpl


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from mixframe.kernel.registry import get_registry

    reg = get_registry()
    plugins = reg.plugins()
    if args.json:
        print(json.dumps({
            "autoload": reg.autoload,
            "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
                         "components": [{"kind": k, "name": n} for k, n in p.components], "commands": list(p.commands)} for p in plugins],
            "failures": [{"name": f.name, "distribution": f.distribution, "version": f.version, "error": f.error} for f in reg.failures],
            "conflicts": [c.describe() for c in reg.conflicts],
        }, indent=2))
        return 0
    name_width = max((len(p.name) for p in plugins), default=0)
    dist_width = max((len(f"{p.distribution} {p.version}") for p in plugins), default=0)
    for p in plugins:
        provided = [f"{k} {n}" for k, n in p.components] + [f"command {c}" for c in p.commands]
        print(f"{p.name:<{name_width}}  {p.distribution + ' ' + p.version:<{dist_width}}  {', '.join(provided) or '(nothing)'}")
    for f in reg.failures:
        print(f"FAILED {f.describe()}")
    for c in reg.conflicts:
        print(f"CONFLICT {c.describe()}")
    if not reg.autoload:
        print("(third-party plugin autoload is off: MIXFRAME_DISABLE_PLUGIN_AUTOLOAD is set)")
    return 0


@hookimpl
def mixframe_commands() -> list[Command]:
    return [Command(name="plugins", help="list loaded plugins, their versions, what they provide, load failures and name conflicts",
                    add_arguments=add_arguments, run=run)]
