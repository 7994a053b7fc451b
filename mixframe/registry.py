"""The plugin manager: loads plugins from the ``mixframe`` entry-point group and gathers components.

Entry points are loaded one by one, each guarded: a plugin that fails to import (or whose hook
raises) is recorded with its distribution, version and error, and the others still load. A
misspelt hook implementation is an error (``check_pending``). Two providers of one component name
is an error that names both.

Autoload of third-party plugins is switched off by ``MIXFRAME_DISABLE_PLUGIN_AUTOLOAD=1``; the
built-ins (entry points of the ``mixframe`` distribution itself) always load. ``MIXFRAME_PLUGINS``
names extra plugin modules to import (comma separated), with or without autoload.
"""

from __future__ import annotations

import difflib
import importlib
import os
import traceback
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Any

import attrs
import pluggy

from mixframe import hookspecs
from mixframe.errors import MixframeError
from mixframe.registry_types import Component

ENTRY_POINT_GROUP = "mixframe"
BUILTIN_DISTRIBUTION = "mixframe"


class PluginError(MixframeError):
    """A plugin is broken in a way that makes the registry unusable (duplicate, misspelt hook)."""


class UnknownComponentError(MixframeError):
    """A component name that no plugin provides."""


@attrs.frozen(kw_only=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    components: tuple[tuple[str, str], ...] = ()


@attrs.frozen(kw_only=True)
class LoadFailure:
    name: str
    distribution: str
    version: str
    error: str

    def describe(self) -> str:
        return f"plugin {self.name!r} from {self.distribution} {self.version} failed to load: {self.error}"


def _hook_name(kind: str) -> str:
    return f"mixframe_{kind}s"


def suggest(name: str, choices: Iterable[str]) -> str:
    """A 'did you mean' phrase for ``name`` among ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry:
    """All components of all loaded plugins, by kind and name."""

    def __init__(self, *, autoload: bool | None = None, plugins: Sequence[tuple[str, Any]] = ()) -> None:
        if autoload is None:
            autoload = os.environ.get("MIXFRAME_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
        self.autoload = autoload
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.failures: list[LoadFailure] = []
        self._origin: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self._load_entry_points()
        for module_name in filter(None, os.environ.get("MIXFRAME_PLUGINS", "").split(",")):
            self._load(module_name.strip(), "MIXFRAME_PLUGINS", "", lambda m=module_name.strip(): importlib.import_module(m))
        for name, plugin in plugins:
            self._register(name, plugin, "(in process)", "")
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as err:
            name = self.manager.get_name(err.plugin) or repr(err.plugin)
            dist = self._origin.get(name, ("(unknown)",))[0]
            raise PluginError(f"plugin {name!r} from {dist} is invalid: {err}; hooks are named "
                              f"{', '.join('mixframe_' + k + 's' for k in hookspecs.KINDS)}") from None
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in hookspecs.KINDS}
        self._providers: dict[tuple[str, str], str] = {}
        self._gather()

    # -- loading ---------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        seen: set[tuple[str, str]] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.dist is None, e.name)):
            dist = ep.dist.name if ep.dist else "(unknown)"
            version = ep.dist.version if ep.dist else ""
            if (dist, ep.name) in seen:
                continue  # the same distribution seen twice on sys.path
            seen.add((dist, ep.name))
            if not self.autoload and dist != BUILTIN_DISTRIBUTION:
                continue
            self._load(ep.name, dist, version, ep.load)

    def _load(self, name: str, dist: str, version: str, loader: Any) -> None:
        try:
            plugin = loader()
        except Exception as err:  # noqa: BLE001 - any import error must be reported, not raised
            self.failures.append(LoadFailure(name=name, distribution=dist, version=version, error=_one_line(err)))
            return
        self._register(name, plugin, dist, version)

    def _register(self, name: str, plugin: Any, dist: str, version: str) -> None:
        if self.manager.is_registered(plugin):
            return
        try:
            self.manager.register(plugin, name=name)
        except ValueError as err:  # the same plugin name registered twice
            raise PluginError(f"two plugins are named {name!r} ({dist} and {self._origin.get(name, ('?',))[0]}): {err}") from None
        except pluggy.PluginValidationError as err:
            raise PluginError(f"plugin {name!r} from {dist} is invalid: {err}") from None
        self._origin[name] = (dist, version)

    def _gather(self) -> None:
        for kind in hookspecs.KINDS:
            for impl in getattr(self.manager.hook, _hook_name(kind)).get_hookimpls():
                provider = impl.plugin_name
                try:
                    provided = list(impl.function() or ())
                    for comp in provided:
                        if not isinstance(comp, Component) or comp.kind != kind:
                            raise TypeError(f"{_hook_name(kind)} must return mixframe.Component objects of kind {kind!r}, got {comp!r}")
                except Exception as err:  # noqa: BLE001 - a broken plugin must not stop the others
                    dist, version = self._origin.get(provider, ("(unknown)", ""))
                    self.failures.append(LoadFailure(name=provider, distribution=dist, version=version, error=_one_line(err)))
                    continue
                for comp in provided:
                    other = self._providers.get((kind, comp.name))
                    if other is not None:
                        raise PluginError(
                            f"{kind} {comp.name!r} is provided twice: by plugin {other!r} and by plugin {provider!r}; "
                            "uninstall one of them or rename the component"
                        )
                    self._providers[(kind, comp.name)] = provider
                    self._components[kind][comp.name] = comp

    # -- queries ---------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self._components[kind])

    def components(self, kind: str) -> list[Component]:
        return [self._components[kind][n] for n in self.names(kind)]

    def provider(self, kind: str, name: str) -> str:
        return self._providers[(kind, name)]

    def get(self, kind: str, name: str) -> Component:
        if kind not in self._components:
            raise UnknownComponentError(f"unknown component kind {kind!r}; choices: {', '.join(hookspecs.KINDS)}{suggest(kind, hookspecs.KINDS)}")
        try:
            return self._components[kind][name]
        except (KeyError, TypeError):
            raise UnknownComponentError(self.unknown_message(kind, name)) from None

    def unknown_message(self, kind: str, name: Any) -> str:
        msg = f"unknown {kind} {name!r}; choices: {', '.join(self.names(kind)) or '(none)'}{suggest(name, self.names(kind))}"
        if self.failures:
            msg += " (plugins that failed to load: " + "; ".join(f.describe() for f in self.failures) + ")"
        return msg

    def plugins(self) -> list[PluginInfo]:
        by_plugin: dict[str, list[tuple[str, str]]] = {}
        for (kind, name), provider in sorted(self._providers.items()):
            by_plugin.setdefault(provider, []).append((kind, name))
        infos = []
        for name, plugin in self.manager.list_name_plugin():
            dist, version = self._origin.get(name, ("(unknown)", ""))
            infos.append(PluginInfo(name=name, distribution=dist, version=version, module=getattr(plugin, "__name__", repr(plugin)),
                                    components=tuple(by_plugin.get(name, ()))))
        return sorted(infos, key=lambda p: p.name)


def _one_line(err: BaseException) -> str:
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(err).__name__}: {err}{where}"


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default

