"""The value objects that plugins return from their hooks.

Besides :class:`Component` and :class:`Command`, a component may declare what it needs from the
other components of a recipe (:class:`Requires`) and what it offers them (:class:`Provides`), as
functions of its own config. ``mixframe recipe check`` (and every command that loads a recipe)
collects what the recipe's components provide and reports each unmet need as a problem at the
needing component's key path, before anything is built. The capabilities are short strings; the
documented ones are in :data:`CAPABILITIES`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class Capability:
    """A documented capability: the component ``kind`` that provides it and what it means.

    ``meaning`` is a noun phrase that completes "needs ...", for messages.
    """

    kind: str
    meaning: str


# Every documented capability, by name. A requirement of one of these is met (or not) by the
# recipe's components of its ``kind`` only. A plugin may use other names among its own components;
# such a name is looked for among all of the recipe's components.
CAPABILITIES: dict[str, Capability] = {
    # mixers
    "mix": Capability(kind="mixer", meaning="a mixer that mixes at least two codes"),
    "per_example_weight": Capability(kind="mixer", meaning="a mixer of two codes whose weight is one number per example"),
    "mixed_labels": Capability(kind="mixer", meaning="a mixer that also mixes the labels"),
    # datasets
    "attribute_labels": Capability(kind="dataset", meaning="a dataset labelled with binary attribute vectors"),
    "class_labels": Capability(kind="dataset", meaning="a dataset labelled with integer classes"),
    "known_factors": Capability(kind="dataset", meaning="a dataset with known generative factors that its generator renders"),
    "image_data": Capability(kind="dataset", meaning="a dataset of images"),
    "vector_data": Capability(kind="dataset", meaning="a dataset of flat vectors"),
    "unit_range": Capability(kind="dataset", meaning="data scaled to [0, 1]"),
    "line_angles": Capability(kind="dataset", meaning="a dataset whose generator finds the nearest true line to an image"),
    "known_manifold": Capability(kind="dataset", meaning="a dataset with a known manifold"),
    # decoders
    "logits_decoder": Capability(kind="decoder", meaning="a decoder that outputs logits"),
    "linear_decoder": Capability(kind="decoder", meaning="a decoder whose output is linear, in the data's range"),
    # discriminators
    "critic": Capability(kind="discriminator", meaning="a critic network"),
}


def always(config: Any) -> bool:
    """The default condition of :class:`Requires` and :class:`Provides`: whatever the config."""
    return True


@attrs.frozen
class Requires:
    """A need of a component, met by another component of the recipe.

    ``capability``: a name from :data:`CAPABILITIES` (or one a plugin shares with its own
    components). ``why``: completes "because ..." in the message (for example "it judges decoded
    mixes"). ``when``: a function of the component's config; the need applies only where it
    returns True (for example ``lambda c: "mix" in c.judge``).
    """

    capability: str
    why: str = ""
    when: Callable[[Any], bool] = attrs.field(default=always, kw_only=True)


@attrs.frozen
class Provides:
    """A capability a component offers the others of its recipe.

    ``when``: a function of the component's config; it provides the capability only where this
    returns True. ``setting``: the parameter setting that makes ``when`` true, as a recipe writes it
    (for example ``"per_channel: false"``), named in messages; empty when it always provides it.
    """

    capability: str
    when: Callable[[Any], bool] = attrs.field(default=always, kw_only=True)
    setting: str = attrs.field(default="", kw_only=True)


def _requirements(items: Iterable[Requires | str]) -> tuple[Requires, ...]:
    return tuple(Requires(i) if isinstance(i, str) else i for i in items)


def _provisions(items: Iterable[Provides | str] | None) -> tuple[Provides, ...] | None:
    return None if items is None else tuple(Provides(i) if isinstance(i, str) else i for i in items)


@attrs.frozen(kw_only=True)
class Component:
    """One named component a plugin provides.

    ``kind``: one of :data:`mixframe.kernel.hookspecs.KINDS`. ``name``: what a recipe writes after
    ``kind:``. ``implementation``: the class (or callable) built as ``implementation(config,
    context)``. ``config``: a frozen, keyword-only attrs class whose fields are the component's
    recipe parameters (validators and ``metadata={"help": ...}`` document them). ``summary``: one
    line for listings. ``default``: for callbacks, run it in every recipe that does not name it.

    ``requires``: what it needs from the recipe's other components (:class:`Requires`; a plain
    string is a need without a reason); list the most specific need of each kind first, since only
    the first unmet one per providing kind is reported. ``provides``: what it offers them
    (:class:`Provides` or plain strings). ``provides=None`` (the default) means "not declared": a
    need that this component's kind would meet is then taken as met, so components that declare
    nothing are never refused; ``provides=()`` declares that it provides nothing.
    """

    kind: str
    name: str
    implementation: Any
    config: type
    summary: str
    default: bool = False
    requires: tuple[Requires, ...] = attrs.field(default=(), converter=_requirements)
    provides: tuple[Provides, ...] | None = attrs.field(default=None, converter=_provisions)

    def __attrs_post_init__(self) -> None:
        if not attrs.has(self.config):
            raise TypeError(f"{self.kind} {self.name!r}: config must be an attrs class, got {self.config!r}")
        for field, cls, items in (("requires", Requires, self.requires), ("provides", Provides, self.provides or ())):
            for item in items:
                if not isinstance(item, cls) or not callable(item.when):
                    raise TypeError(f"{self.kind} {self.name!r}: {field} must hold {cls.__name__} objects or capability names, "
                                    f"got {item!r}")


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
