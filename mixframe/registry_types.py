"""The value object that plugins return from their hooks."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class Component:
    """One named component a plugin provides.

    ``kind``: one of :data:`mixframe.hookspecs.KINDS`. ``name``: what a recipe writes after
    ``kind:``. ``implementation``: the class (or callable) built as ``implementation(config,
    context)``. ``config``: a frozen, keyword-only attrs class whose fields are the component's
    recipe parameters (validators and ``metadata={"help": ...}`` document them). ``summary``: one
    line for listings.
    """

    kind: str
    name: str
    implementation: Any
    config: type
    summary: str

    def __attrs_post_init__(self) -> None:
        if not attrs.has(self.config):
            raise TypeError(f"{self.kind} {self.name!r}: config must be an attrs class, got {self.config!r}")
