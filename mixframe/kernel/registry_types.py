"""The value objects that plugins declare: :class:`Component` (returned by the ``mixframe_components``
hook) and :class:`Command` (made by a ``mixframe.commands`` entry point's factory).

A component may declare what it needs from the other components of a recipe (:class:`Requires`)
and what it offers them (:class:`Provides`), as functions of its own config. These declarations are
the one place capabilities are stated: ``mixframe recipe check`` (and every command that loads a
recipe) reports each unmet need before anything is built, and the registry and the model check the
same declarations against the built objects (:attr:`Capability.holds`). The capabilities are short
strings; the documented ones are in :data:`CAPABILITIES`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

import attrs


def _cannot_tell(built: Any) -> bool | None:
    return None


KINDS: dict[str, str] = {
    "mixer": "combines k batches of codes (mixframe.Mixer; context: BuildContext)",
    "regularizer": "weighted terms on the autoencoder's loss, optionally with a critic (mixframe.Regularizer; context: BuildContext)",
    "encoder": "data to codes (mixframe.Encoder; context: BuildContext)",
    "decoder": "codes to data (mixframe.Decoder; context: BuildContext)",
    "discriminator": "a critic's body, data to features (mixframe.Discriminator; context: BuildContext)",
    "dataset": "builds a mixframe.DataBundle (context: DataContext)",
    "metric": "turns a trained run into numbers (mixframe.Metric; context: BuildContext)",
    "callback": "reacts to the engine's events (mixframe.Callback; context: BuildContext)",
    "launcher": "runs a sweep's runs, each in a process of its own (mixframe.Launcher; context: LaunchContext)",
}
"""The component kinds and what each builds; every kind is built as ``implementation(config, context)``."""


@attrs.frozen(kw_only=True)
class Capability:
    """A documented capability: the component ``kind`` that provides it and what it means.

    ``meaning`` is a noun phrase that completes "needs ...", for messages. ``holds(built)`` says whether
    a built component of ``kind`` has the capability (None: it cannot tell from that object), so that a
    declaration that the object contradicts is found when it is built, and a need that the built
    components do not meet is found before training (:func:`mixframe.kernel.model.check_built_needs`).
    For a dataset ``built`` is its :class:`~mixframe.kernel.interfaces.DataBundle` or only its
    :class:`~mixframe.kernel.interfaces.DataSpec` (a run rebuilt without its data).
    """

    kind: str
    meaning: str
    holds: Callable[[Any], bool | None] = _cannot_tell


def _spec(data: Any) -> Any:
    return getattr(data, "spec", data)


def _generator_is(protocol: str) -> Callable[[Any], bool | None]:
    """A dataset capability that its generator implements ``protocol`` (a name in mixframe.kernel.interfaces)."""
    def holds(data: Any) -> bool | None:
        if not hasattr(data, "generator"):
            return None  # only a DataSpec: the generator is not known
        from mixframe.kernel import interfaces  # built components exist, so torch is loaded; this module stays light

        return isinstance(data.generator, getattr(interfaces, protocol))
    return holds


# Every documented capability, by name. A requirement of one of these is met (or not) by the
# recipe's components of its ``kind`` only. A plugin may use other names among its own components;
# such a name is looked for among all of the recipe's components.
CAPABILITIES: dict[str, Capability] = {
    # mixers
    "mix": Capability(kind="mixer", meaning="a mixer that mixes at least two codes", holds=lambda m: m.num_sources >= 2),
    "per_example_weight": Capability(kind="mixer", meaning="a mixer of two codes whose weight is one number per example"),
    "mixed_labels": Capability(kind="mixer", meaning="a mixer that also mixes the labels", holds=lambda m: bool(m.uses_labels)),
    # datasets
    "attribute_labels": Capability(kind="dataset", meaning="a dataset labelled with binary attribute vectors",
                                   holds=lambda d: bool(_spec(d).attribute_names)),
    "class_labels": Capability(kind="dataset", meaning="a dataset labelled with integer classes",
                               holds=lambda d: _spec(d).num_classes is not None),
    "known_factors": Capability(kind="dataset", meaning="a dataset with known generative factors that its generator renders",
                                holds=_generator_is("RendersFactors")),
    "image_data": Capability(kind="dataset", meaning="a dataset of images", holds=lambda d: len(_spec(d).shape) == 3),
    "vector_data": Capability(kind="dataset", meaning="a dataset of flat vectors", holds=lambda d: len(_spec(d).shape) == 1),
    "unit_range": Capability(kind="dataset", meaning="data scaled to [0, 1]", holds=lambda d: tuple(_spec(d).value_range) == (0.0, 1.0)),
    "line_angles": Capability(kind="dataset", meaning="a dataset whose generator finds the nearest true line to an image",
                              holds=_generator_is("KnowsLineAngles")),
    "known_manifold": Capability(kind="dataset", meaning="a dataset with a known manifold", holds=_generator_is("KnowsManifold")),
    # decoders
    "logits_decoder": Capability(kind="decoder", meaning="a decoder that outputs logits", holds=lambda d: bool(d.outputs_logits)),
    "linear_decoder": Capability(kind="decoder", meaning="a decoder whose output is linear, in the data's range",
                                 holds=lambda d: not d.outputs_logits),
    # discriminators
    "critic": Capability(kind="discriminator", meaning="a critic network", holds=lambda d: isinstance(getattr(d, "out_features", None), int)),
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
    ``checked``: False where only the data can tell (image_folder's ``labels: auto``): the recipe check
    takes the declaration, a build is not held to it, and what needs the capability says so when it runs.
    """

    capability: str
    when: Callable[[Any], bool] = attrs.field(default=always, kw_only=True)
    setting: str = attrs.field(default="", kw_only=True)
    checked: bool = attrs.field(default=True, kw_only=True)


def _requirements(items: Iterable[Requires | str]) -> tuple[Requires, ...]:
    return tuple(Requires(i) if isinstance(i, str) else i for i in items)


def _provisions(items: Iterable[Provides | str] | None) -> tuple[Provides, ...] | None:
    return None if items is None else tuple(Provides(i) if isinstance(i, str) else i for i in items)


@attrs.frozen(kw_only=True)
class Component:
    """One named component a plugin provides.

    ``kind``: one of :data:`KINDS` (the one place a component's kind is stated). ``name``: what a
    recipe writes after ``kind:``. ``implementation``: the class (or callable) built as
    ``implementation(config, context)`` by :meth:`mixframe.kernel.registry.Registry.build`, the context
    being the kind's (:data:`KINDS`). ``config``: a frozen, keyword-only attrs class whose fields are the component's
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
        if self.kind not in KINDS:
            raise TypeError(f"component {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
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
