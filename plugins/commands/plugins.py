"""``mixframe plugins``: loaded plugins, their versions, what each provides, and what went wrong."""

from __future__ import annotations

import argparse
import json

from mixframe import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from mixframe.kernel.registry import get_commands, get_registry

    reg, table = get_registry(), get_commands()
    plugins = reg.plugins()
    commands = {name: table.entry(name) for name in table.names()}
    failures = [*reg.failures, *table.failures]
    conflicts = [*reg.conflicts, *table.conflicts]
    if args.json:
        print(json.dumps({
            "autoload": reg.autoload,
            "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
                         "components": [{"kind": k, "name": n} for k, n in p.components]} for p in plugins],
            "commands": [{"name": name, "entry_point": e.value, "distribution": e.provider.distribution, "version": e.provider.version}
                         for name, e in commands.items()],
            "failures": [{"name": f.name, "distribution": f.distribution, "version": f.version, "error": f.error} for f in failures],
            "conflicts": [c.describe() for c in conflicts],
        }, indent=2))
        return 0
    name_width = max((len(p.name) for p in plugins), default=0)
    dist_width = max((len(f"{p.distribution} {p.version}") for p in plugins), default=0)
    for p in plugins:
        provided = [f"{k} {n}" for k, n in p.components]
        print(f"{p.name:<{name_width}}  {p.distribution + ' ' + p.version:<{dist_width}}  {', '.join(provided) or '(nothing)'}")
    for name, entry in commands.items():
        print(f"command {name:<{name_width - 8}}  {entry.provider.distribution + ' ' + entry.provider.version:<{dist_width}}  {entry.value}")
    for f in failures:
        print(f"FAILED {f.describe()}")
    for c in conflicts:
        print(f"CONFLICT {c.describe()}")
    if not reg.autoload:
        print("(third-party plugin autoload is off: MIXFRAME_DISABLE_PLUGIN_AUTOLOAD is set)")
    return 0


def command() -> Command:
    return Command(name="plugins", help="list loaded plugins and commands, their versions, what they provide, load failures and name conflicts",
                   add_arguments=add_arguments, run=run)
