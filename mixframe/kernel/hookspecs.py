"""Every hook a mixframe plugin can implement, in one place.

A plugin is a module (or object) whose functions carry the ``@mixframe.hookimpl`` marker and are
named after a spec below. Each component hook returns an iterable of :class:`mixframe.Component`
value objects; the core gathers them from every plugin, so it sees all names at once, reports a
name two plugins provide (a recipe then chooses with ``kind: PLUGIN:NAME``), and answers an unknown
name with the choices.

Built-in plugins (``mixframe_plugins``) are registered through these same hooks, from the same
``mixframe`` entry-point group that third-party packages use::

    [project.entry-points.mixframe]
    my_mixers = "my_package.mixers"
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from mixframe.kernel.registry_types import Command, Component

PROJECT = "mixframe"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# Component kinds, each answered by the hook ``mixframe_<kind>s``.
KINDS = ("mixer", "regularizer", "encoder", "decoder", "discriminator", "dataset", "metric", "callback", "launcher")


@hookspec
def mixframe_mixers() -> Iterable[Component]:
    """Mixers: combine k batches of codes (:class:`mixframe.Mixer`).

    :return: components of kind ``"mixer"``.
    """


@hookspec
def mixframe_regularizers() -> Iterable[Component]:
    """Regularizers: weighted terms on the autoencoder's loss, optionally with a critic
    (:class:`mixframe.Regularizer`).

    :return: components of kind ``"regularizer"``.
    """


@hookspec
def mixframe_encoders() -> Iterable[Component]:
    """Encoders f: data to codes (:class:`mixframe.Encoder`).

    :return: components of kind ``"encoder"``.
    """


@hookspec
def mixframe_decoders() -> Iterable[Component]:
    """Decoders g: codes to data (:class:`mixframe.Decoder`).

    :return: components of kind ``"decoder"``.
    """


@hookspec
def mixframe_discriminators() -> Iterable[Component]:
    """Critic bodies: data to features (:class:`mixframe.Discriminator`).

    :return: components of kind ``"discriminator"``.
    """


@hookspec
def mixframe_datasets() -> Iterable[Component]:
    """Datasets: a callable ``build(config) -> DataBundle`` (the folder, if any, is a config field).

    :return: components of kind ``"dataset"``.
    """


@hookspec
def mixframe_metrics() -> Iterable[Component]:
    """Metrics: turn a trained run into numbers (:class:`mixframe.Metric`).

    :return: components of kind ``"metric"``.
    """


@hookspec
def mixframe_callbacks() -> Iterable[Component]:
    """Training callbacks: react to the engine's events (:class:`mixframe.Callback`).

    A recipe names them under ``callbacks:``; a component registered with ``default=True`` runs in
    every recipe that does not list it (the training pictures and stall watches are such defaults).

    :return: components of kind ``"callback"``.
    """


@hookspec
def mixframe_launchers() -> Iterable[Component]:
    """Launchers: run a sweep's runs, each in a process of its own (:class:`mixframe.Launcher`), on this
    machine, a Ray cluster, Slurm... ``mixframe sweep --launcher NAME`` chooses one; its config class holds
    its options (``--launcher-set KEY=VALUE``).

    :return: components of kind ``"launcher"``.
    """


@hookspec
def mixframe_commands() -> Iterable[Command]:
    """Sub-commands of the ``mixframe`` command line (:class:`mixframe.Command`).

    :return: commands; each adds its arguments to its own sub-parser and runs with the parsed namespace.
    """
