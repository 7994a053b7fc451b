"""The one hook a mixframe plugin implements for its components.

A plugin is a module (or object) with a function carrying the ``@mixframe.hookimpl`` marker and named
``mixframe_components``; it returns an iterable of :class:`mixframe.Component` value objects, each
stating its kind (one of :data:`KINDS`). The core gathers them from every plugin, so it sees all names
at once, reports a name two plugins provide (a recipe then chooses with ``kind: PLUGIN:NAME``), and
answers an unknown name with the choices.

Built-in plugins (``mixframe_plugins``) are registered through this same hook, from the same
``mixframe`` entry-point group that third-party packages use::

    [project.entry-points.mixframe]
    my_mixers = "my_package.mixers"

Commands are not a hook: they are entry points of the group ``mixframe.commands`` (see
:mod:`mixframe.kernel.registry`), so that the command line starts without importing components.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from mixframe.kernel.registry_types import KINDS, Component

PROJECT = "mixframe"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["KINDS", "PROJECT", "hookimpl", "hookspec", "mixframe_components"]


@hookspec
def mixframe_components() -> Iterable[Component]:
    """The plugin's components, each a :class:`mixframe.Component` whose ``kind`` is one of :data:`KINDS`:
    ``"mixer"``, ``"regularizer"``, ``"encoder"``, ``"decoder"``, ``"discriminator"``, ``"dataset"``,
    ``"metric"``, ``"callback"`` or ``"launcher"``. A callback registered with ``default=True`` runs in
    every recipe that does not list it (the training pictures and stall watches are such defaults).

    :return: components, of any kinds.
    """
    raise NotImplementedError  # a specification: plugins implement it
