"""The recipes shipped with mixframe: found by name, listed, copied to start your own.

They are installed as the package ``mixframe_recipes`` (the folder ``recipes/`` of a checkout), so a
pip-installed mixframe has them too. A recipe is named by its path under that folder without
``.yaml``: ``digits_amr_mixup``, ``full/mnist_amr_mixup``, ``base/digits``. Anywhere a recipe file
is read, ``shipped:NAME`` names a shipped one (``extends: shipped:digits_amr_mixup``), and a path
that does not exist is looked up as a shipped name (``mixframe train digits_amr_mixup``).

A shipped recipe that is meant to be trained has a ``description`` ending in its scale, in
parentheses, one comma-separated part naming the device: ``(CPU, a few minutes)``, ``(full size,
GPU, your data)``. One without such a description is a base, written to be extended
(``base/digits``, ``full/base_32px``).
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from mixframe.errors import MixframeError, RecipeError

PACKAGE = "mixframe_recipes"
PREFIX = "shipped:"
SUFFIX = ".yaml"


@attrs.frozen(kw_only=True)
class ShippedRecipe:
    """One shipped recipe: ``name`` (what ``shipped:NAME`` and ``mixframe train NAME`` take), its
    file, its description without the scale, ``scale`` (the part of the closing parenthesis that names
    the device: "CPU", "GPU", "CPU or GPU"; "" for a base) and ``notes`` (the rest of the parenthesis:
    "a few minutes", "your data")."""

    name: str
    path: Path
    description: str
    scale: str
    notes: str

    @property
    def is_base(self) -> bool:
        return not self.scale


def root() -> Path:
    """The folder that holds the shipped recipes (installed, or the checkout's recipes/)."""
    try:
        folder = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise MixframeError(f"the shipped recipes (package {PACKAGE}) are not installed; reinstall mixframe (pip install mixframe)") from None
    if not isinstance(folder, Path) or not folder.is_dir():
        raise MixframeError(f"the shipped recipes are inside an archive ({folder}); install mixframe as files (pip install, not a zip)")
    return folder


def names() -> list[str]:
    """Every shipped recipe's name, sorted (top-level ones first, then by folder)."""
    base = root()
    found = [p.relative_to(base).with_suffix("").as_posix() for p in base.rglob(f"*{SUFFIX}") if p.is_file()]
    return sorted(found, key=lambda n: (n.count("/"), n))


def path_of(name: str) -> Path:
    """The file of the shipped recipe ``name`` (``.yaml`` and a leading ``shipped:`` optional); an
    unknown name is a MixframeError listing the choices."""
    bare = name.removeprefix(PREFIX).removesuffix(SUFFIX).strip("/")
    choices = names()
    if bare not in choices:
        from mixframe.errors import suggest

        raise MixframeError(f"no shipped recipe is named {bare!r}; choices: {', '.join(choices)}{suggest(bare, choices)} "
                            "(mixframe recipes lists them with what each does)")
    return root() / f"{bare}{SUFFIX}"


def is_shipped_name(text: str) -> bool:
    """Whether ``text`` has the form of a shipped recipe's name (``shipped:NAME``, or a relative path of at
    most one folder without a suffix other than .yaml); it need not exist."""
    if text.startswith(PREFIX):
        return True
    path = Path(text)
    return not path.is_absolute() and len(path.parts) <= 2 and path.suffix in ("", SUFFIX) and ".." not in path.parts


def recipe_path(recipe: str | Path) -> Path:
    """The file a recipe argument means: ``shipped:NAME``, a path that exists, or else a shipped recipe's name.

    A path that neither exists nor names a shipped recipe is returned as it is (reading it then says it
    is not found), unless it has the form of a shipped name: that is a RecipeError listing the choices.
    """
    text = str(recipe)
    if text.startswith(PREFIX):
        return path_of(text)
    path = Path(recipe)
    if path.exists() or not is_shipped_name(text):
        return path
    bare = text.removesuffix(SUFFIX)
    if bare in names():
        return path_of(bare)
    from mixframe.errors import suggest

    raise RecipeError(text, [("(file)", f"not found, and no shipped recipe has that name; shipped recipes: {', '.join(names())}"
                                        f"{suggest(bare, names())} (mixframe recipes lists them with what each does)")])


_SCALE = re.compile(r"^(?P<what>.*?)\s*\((?P<scale>[^()]*)\)\s*$", re.S)


def describe(name: str) -> ShippedRecipe:
    """The shipped recipe ``name`` with its description split into what it is and its scale."""
    from mixframe.kernel.files import load_user_yaml

    path = path_of(name)
    raw: Any = load_user_yaml(path, what="shipped recipe")
    text = str(raw.get("description") or "") if isinstance(raw, dict) else ""
    match = _SCALE.match(text)
    what, scale, notes = text, "", ""
    if match:
        words = [w.strip() for w in match["scale"].split(",")]
        device = next((w for w in words if "CPU" in w or "GPU" in w), "")
        if device:
            what, scale = match["what"], device
            notes = ", ".join(w for w in words if w != device)
    return ShippedRecipe(name=name.removeprefix(PREFIX).removesuffix(SUFFIX), path=path, description=what, scale=scale, notes=notes)


def catalogue() -> list[ShippedRecipe]:
    """Every shipped recipe, described (bases included: ``is_base``)."""
    return [describe(name) for name in names()]


def format_catalogue(recipes: Sequence[ShippedRecipe]) -> str:
    """The listing ``mixframe recipes`` prints."""
    runnable = [r for r in recipes if not r.is_base]
    width = max((len(r.name) for r in runnable), default=0)
    scale = max((len(r.scale) for r in runnable), default=0)
    lines = ["Shipped recipes (train one: mixframe train NAME; start your own: mixframe recipe copy NAME my.yaml):", ""]
    lines += [f"  {r.name:<{width}}  {r.scale:<{scale}}  {r.description}{f' ({r.notes})' if r.notes else ''}" for r in runnable]
    bases = [r.name for r in recipes if r.is_base]
    if bases:
        lines += ["", f"Bases, to extend (extends: shipped:NAME): {', '.join(bases)}"]
    lines += ["", f"Folder: {root()}"]
    return "\n".join(lines)
