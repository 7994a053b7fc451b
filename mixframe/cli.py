"""The ``mixframe`` command line.

A user's mistake (a bad recipe, a missing dataset folder, an unknown component) is reported as a
message and exit status 2, never as a Python traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mixframe.errors import MixframeError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, parsed as YAML (repeatable), e.g. --set mixer.alpha=0.4")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixframe", description="Adversarial Mixup Resynthesis and its baselines, assembled from plugins.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("plugins", help="list loaded plugins, their versions, components and load failures")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("components", help="list registered components, by kind")
    p.add_argument("kind", nargs="?", help="one kind: mixer, regularizer, encoder, decoder, discriminator, dataset, metric")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("explain", help="show a component's parameters: types, defaults and help")
    p.add_argument("kind")
    p.add_argument("name")

    p = sub.add_parser("recipe", help="check or show a recipe")
    rsub = p.add_subparsers(dest="recipe_command", metavar="ACTION")
    rsub.required = True
    rc = rsub.add_parser("check", help="check a recipe; exit 0 when valid, 2 with every problem when not")
    rc.add_argument("file", type=Path)
    _add_set(rc)
    rs = rsub.add_parser("show", help="print a recipe (with --resolved: merged, overridden, every default filled in)")
    rs.add_argument("file", type=Path)
    rs.add_argument("--resolved", action="store_true", help="print the checked recipe with all defaults")
    _add_set(rs)

    for extend in _EXTENSIONS:
        extend(sub)
    return parser


# Modules that add sub-commands (training, evaluation, pictures) register here, keeping this core small.
_EXTENSIONS: list[Callable[[argparse._SubParsersAction], None]] = []


def extension(fn: Callable[[argparse._SubParsersAction], None]) -> Callable[[argparse._SubParsersAction], None]:
    _EXTENSIONS.append(fn)
    return fn


@command("plugins")
def cmd_plugins(args: argparse.Namespace) -> int:
    from mixframe.registry import get_registry

    reg = get_registry()
    plugins = reg.plugins()
    if args.json:
        print(json.dumps({
            "autoload": reg.autoload,
            "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
                         "components": [{"kind": k, "name": n} for k, n in p.components]} for p in plugins],
            "failures": [{"name": f.name, "distribution": f.distribution, "version": f.version, "error": f.error} for f in reg.failures],
        }, indent=2))
        return 0
    name_width = max((len(p.name) for p in plugins), default=0)
    dist_width = max((len(f"{p.distribution} {p.version}") for p in plugins), default=0)
    for p in plugins:
        comps = ", ".join(f"{k} {n}" for k, n in p.components) or "(no components)"
        print(f"{p.name:<{name_width}}  {p.distribution + ' ' + p.version:<{dist_width}}  {comps}")
    for f in reg.failures:
        print(f"FAILED {f.describe()}")
    if not reg.autoload:
        print("(third-party plugin autoload is off: MIXFRAME_DISABLE_PLUGIN_AUTOLOAD is set)")
    return 0


@command("components")
def cmd_components(args: argparse.Namespace) -> int:
    from mixframe.hookspecs import KINDS
    from mixframe.registry import get_registry, suggest

    reg = get_registry()
    if args.kind and args.kind not in KINDS:
        raise MixframeError(f"unknown kind {args.kind!r}; choices: {', '.join(KINDS)}{suggest(args.kind, KINDS)}")
    kinds = [args.kind] if args.kind else list(KINDS)
    if args.json:
        print(json.dumps({k: [{"name": c.name, "summary": c.summary, "plugin": reg.provider(k, c.name)} for c in reg.components(k)] for k in kinds}, indent=2))
        return 0
    for kind in kinds:
        print(f"{kind}:")
        for comp in reg.components(kind):
            print(f"  {comp.name:<16} {comp.summary}  [{reg.provider(kind, comp.name)}]")
    return 0


@command("explain")
def cmd_explain(args: argparse.Namespace) -> int:
    from mixframe.config import describe_fields
    from mixframe.registry import get_registry

    reg = get_registry()
    comp = reg.get(args.kind, args.name)
    print(f"{args.kind} {comp.name}: {comp.summary}")
    print(f"  provided by plugin {reg.provider(args.kind, comp.name)}; recipe: {{kind: {comp.name}, ...}}")
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


@command("recipe")
def cmd_recipe(args: argparse.Namespace) -> int:
    from mixframe.recipe import apply_overrides, dump_yaml, load_recipe, resolve_file
    from mixframe.registry import get_registry

    if args.recipe_command == "check":
        recipe = load_recipe(args.file, args.overrides)
        print(f"{args.file}: ok ({recipe.encoder.name} encoder, mixer {recipe.mixer.name if recipe.mixer else 'none'}, "
              f"{len(recipe.regularizers)} regularizer(s), data {recipe.data.name})")
        return 0
    if args.resolved:
        print(load_recipe(args.file, args.overrides).to_yaml(), end="")
    else:
        print(dump_yaml(apply_overrides(resolve_file(args.file), args.overrides, get_registry())), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    _load_extensions()
    parser = build_parser()
    args = parser.parse_args(argv)
    name = args.command
    try:
        return COMMANDS[name](args)
    except MixframeError as err:
        print(f"mixframe {name}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"mixframe {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _load_extensions() -> None:
    """Import the modules that add sub-commands; each registers itself with ``extension``."""
    import importlib

    for module in ("mixframe.commands", "mixframe.evaluation", "mixframe.interpolate", "mixframe.report", "mixframe.supervised"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise


if __name__ == "__main__":  # run through the package so that sub-commands register in one module
    from mixframe.cli import main as package_main

    sys.exit(package_main())
