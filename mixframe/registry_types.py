"""The value objects that plugins return from their hooks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class Component:
    """One named component a plugin provides.

    ``kind``: one of :data:`mixframe.hookspecs.KINDS`. ``name``: what a recipe writes after
    ``kind:``. ``implementation``: the class (or callable) built as ``implementation(config,
    context)``. ``config``: a frozen, keyword-only attrs class whose fields are the component's
    recipe parameters (validators and ``metadata={"help": ...}`` document them). ``summary``: one
    line for listings. ``default``: for callbacks, run it in every recipe that does not name it.
    """

    kind: str
    name: str
    implementation: Any
    config: type
    summary: str
    default: bool = False

    def __attrs_post_init__(self) -> None:
        if not attrs.has(self.config):
            raise TypeError(f"{self.kind} {self.name!r}: config must be an attrs class, got {self.config!r}")


@attrs.frozen(kw_only=True)
class Command:
    """One ``mixframe`` sub-command a plugin provides.

    ``add_arguments(parser)`` declares its options on its own sub-parser; ``run(args)`` does the work
    (a thin layer over a documented Python function) and returns the exit status. A
    :class:`mixframe.MixframeError` it raises is printed as a message, never as a traceback.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
