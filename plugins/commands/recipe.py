"""``mixframe recipe check RECIPE...|show RECIPE``: check recipes (every problem at once) or print it resolved; ``mixframe recipe
copy NAME DEST``: start your own recipe from a shipped one. RECIPE is a file or a shipped recipe's name (``mixframe recipes``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixframe import Command, MixframeError
from mixframe.cli.arguments import add_overrides
from mixframe.errors import RecipeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="recipe_command", metavar="ACTION")
    actions.required = True
    check = actions.add_parser("check", help="check recipes; exit 0 when all are valid, 2 with every problem of each when not")
    check.add_argument("files", type=Path, nargs="+", metavar="RECIPE")
    add_overrides(check)
    show = actions.add_parser("show", help="print a recipe (with --resolved: merged, overridden, every default filled in)")
    show.add_argument("file", type=Path, metavar="RECIPE")
    show.add_argument("--resolved", action="store_true", help="print the checked recipe with all defaults")
    add_overrides(show)
    copy = actions.add_parser("copy", help="start your own recipe from a shipped one (its bases merged in); never overwrites a file")
    copy.add_argument("name", metavar="NAME", help="a shipped recipe (mixframe recipes lists them), e.g. digits_amr_mixup")
    copy.add_argument("dest", type=Path, metavar="DEST", help="the new .yaml file, or an existing folder (receives NAME.yaml)")


def run(args: argparse.Namespace) -> int:
    from mixframe.kernel.recipe import apply_overrides, copy_shipped, dump_yaml, load_recipe, path_problems, resolve_file
    from mixframe.kernel.registry import get_registry

    if args.recipe_command == "copy":
        written = copy_shipped(args.name, args.dest)
        print(f"wrote {written}; check it with: mixframe recipe check {written}; train it with: mixframe train {written}")
    elif args.recipe_command == "check":
        failed = 0
        for file in args.files:  # every recipe is checked, so one bad file does not hide the next one's problems
            try:
                recipe = load_recipe(file, args.overrides)
                missing = path_problems(recipe)  # the data's folders and files: a recipe is checked against this machine
                if missing:
                    raise RecipeError(str(file), missing)
            except MixframeError as err:
                print(f"mixframe recipe: error: {err}", file=sys.stderr)
                failed += 1
                continue
            print(f"{file}: ok ({recipe.encoder.name} encoder, mixer {recipe.mixer.name if recipe.mixer else 'none'}, "
                  f"{len(recipe.regularizers)} regularizer(s), data {recipe.data.name})")
        if failed:
            print(f"{failed} of {len(args.files)} recipe(s) have problems", file=sys.stderr)
            return 2
    elif args.resolved:
        print(load_recipe(args.file, args.overrides).to_yaml(), end="")
    else:
        print(dump_yaml(apply_overrides(resolve_file(args.file), args.overrides, get_registry())), end="")
    return 0


def command() -> Command:
    return Command(name="recipe", help="check, show or copy a recipe (a file, or a shipped recipe by name)", add_arguments=add_arguments,
                   run=run)
