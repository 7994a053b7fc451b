"""The plugin manager: loads plugins from the ``mixframe`` entry-point group and gathers components.

Entry points are loaded one by one, each guarded: a plugin that fails to import (or whose hook
raises) is recorded with its distribution, version and error, and the others still load. A
misspelt hook implementation is an error (``check_pending``).

Two plugins that provide one component name (or one command name) do not stop anything: the
clash is recorded in :attr:`Registry.conflicts` and reported by :meth:`Registry.warnings`, and
only asking for that name fails, with a message that names both providers. A recipe chooses one
by writing ``kind: PLUGIN:NAME`` (PLUGIN as ``mixframe plugins`` lists it); :meth:`Registry.get`
accepts that form for any component. Of two commands with one name, the first provider in a
stable order (built-ins first, then by plugin name) is the one the command line runs.

Autoload of third-party plugins is switched off by ``MIXFRAME_DISABLE_PLUGIN_AUTOLOAD=1``; the
built-ins (entry points of the ``mixframe`` distribution itself) always load. ``MIXFRAME_PLUGINS``
names extra plugin modules to import (comma separated), with or without autoload.
"""

from __future__ import annotations

import difflib
import importlib
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from typing import Any

import attrs
import pluggy

from mixframe import hookspecs
from mixframe.errors import MixframeError
from mixframe.registry_types import Command, Component

ENTRY_POINT_GROUP = "mixframe"
BUILTIN_DISTRIBUTION = "mixframe"


class PluginError(MixframeError):
    """A plugin is broken in a way that makes the registry unusable (a misspelt or invalid hook)."""


class UnknownComponentError(MixframeError):
    """A component name that no plugin provides."""


class AmbiguousComponentError(MixframeError):
    """A component name that two or more plugins provide, asked for without saying which."""


@attrs.frozen(kw_only=True)
class PluginInfo:
    """One loaded plugin: ``components`` lists ``(kind, name)`` pairs (names it shares with another
    plugin included), ``commands`` its command names."""

    name: str
    distribution: str
    version: str
    module: str
    components: tuple[tuple[str, str], ...] = ()
    commands: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class LoadFailure:
    """A plugin that failed to import, or whose hook ``hook`` raised or returned something wrong."""

    name: str
    distribution: str
    version: str
    error: str
    hook: str = ""

    def describe(self) -> str:
        origin = f"{self.distribution} {self.version}".strip()
        if self.hook:
            return f"plugin {self.name!r} from {origin}: its hook {self.hook} failed: {self.error}"
        return f"plugin {self.name!r} from {origin} failed to load: {self.error}"

    def advice(self) -> str:
        """What the user can do about it."""
        lost = f"what its {self.hook} hook provides is" if self.hook else "its components and commands are"
        if self.distribution == "MIXFRAME_PLUGINS":
            fix = f"fix the module or remove {self.name!r} from MIXFRAME_PLUGINS"
        elif self.distribution == "(in process)":
            fix = "fix the plugin object given to Registry(plugins=...)"
        else:
            fix = f"upgrade or reinstall {self.distribution}, or uninstall it"
        return f"{lost} not available; {fix}"


@attrs.frozen(kw_only=True)
class Provider:
    """A plugin that provides a name, with its distribution."""

    plugin: str
    distribution: str
    version: str

    def describe(self) -> str:
        return f"plugin {self.plugin!r} ({f'{self.distribution} {self.version}'.strip()})"


@attrs.frozen(kw_only=True)
class Conflict:
    """One name that several plugins provide: ``kind`` is a component kind or ``"command"``;
    ``providers`` are in the stable order (built-ins first, then by plugin name)."""

    kind: str
    name: str
    providers: tuple[Provider, ...]

    def situation(self) -> str:
        return f"{self.kind} {self.name!r} is provided by {len(self.providers)} plugins: {_and(p.describe() for p in self.providers)}"

    def choices(self) -> str:
        return " or ".join(f"kind: {p.plugin}:{self.name}" for p in self.providers)

    def describe(self) -> str:
        """The warning: what happened and what to do."""
        if self.kind == "command":
            first = self.providers[0]
            return (f"{self.situation()}; 'mixframe {self.name}' runs the one from plugin {first.plugin!r} and the others are hidden; "
                    "uninstall the plugins you do not want, or ask their authors to rename the command")
        return (f"{self.situation()}; a recipe that uses it must say which, with {self.choices()}, "
                "or uninstall one of them (everything else works as usual)")


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
        self.conflicts: list[Conflict] = []
        """Names that several plugins provide (components and commands), in a stable order."""
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
                              f"{', '.join(_hook_name(k) for k in (*hookspecs.KINDS, 'command'))}") from None
        # kind -> name -> plugin -> component, plugins in the stable order (built-ins first, then by name)
        self._offers: dict[str, dict[str, dict[str, Component]]] = {kind: {} for kind in hookspecs.KINDS}
        self._commands: dict[str, dict[str, Command]] = {}  # name -> plugin -> command, same order
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
        if self.manager.has_plugin(name):  # the same plugin name twice: keep the first, report the second
            taken = self._origin.get(name, ("(unknown)", ""))[0]
            self.failures.append(LoadFailure(name=name, distribution=dist, version=version,
                                             error=f"the plugin name {name!r} is already taken by the plugin from {taken}; "
                                                   "one of the two must rename its entry point"))
            return
        try:
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as err:
            raise PluginError(f"plugin {name!r} from {dist} is invalid: {err}") from None
        self._origin[name] = (dist, version)

    def _order(self, plugin: str) -> tuple[bool, str]:
        """The stable order of providers: built-ins first, then by plugin name."""
        return (self._origin.get(plugin, ("",))[0] != BUILTIN_DISTRIBUTION, plugin)

    def _call(self, hook: str, accept: Callable[[Any], bool], what: str) -> list[tuple[str, list[Any]]]:
        """Each plugin's checked answers to ``hook``, in the stable order; a broken answer is a failure."""
        out = []
        impls = getattr(self.manager.hook, hook).get_hookimpls()
        for impl in sorted(impls, key=lambda i: self._order(i.plugin_name)):
            provider = impl.plugin_name
            try:
                provided = list(impl.function() or ())
                for item in provided:
                    if not accept(item):
                        raise TypeError(f"{hook} must return {what}, got {item!r}")
            except Exception as err:  # noqa: BLE001 - a broken plugin must not stop the others
                dist, version = self._origin.get(provider, ("(unknown)", ""))
                self.failures.append(LoadFailure(name=provider, distribution=dist, version=version, error=_one_line(err), hook=hook))
                continue
            out.append((provider, provided))
        return out

    def _gather(self) -> None:
        for kind in hookspecs.KINDS:
            def accept(item: Any, kind: str = kind) -> bool:
                return isinstance(item, Component) and item.kind == kind

            for provider, provided in self._call(_hook_name(kind), accept, f"mixframe.Component objects of kind {kind!r}"):
                for comp in provided:
                    self._offers[kind].setdefault(comp.name, {}).setdefault(provider, comp)
        for provider, commands in self._call("mixframe_commands", lambda item: isinstance(item, Command), "mixframe.Command objects"):
            for cmd in commands:
                self._commands.setdefault(cmd.name, {}).setdefault(provider, cmd)
        clashes = [(kind, name, list(by)) for kind in hookspecs.KINDS for name, by in sorted(self._offers[kind].items()) if len(by) > 1]
        clashes += [("command", name, list(by)) for name, by in sorted(self._commands.items()) if len(by) > 1]
        for kind, name, plugins in clashes:
            self.conflicts.append(Conflict(kind=kind, name=name, providers=tuple(self._provider_info(p) for p in plugins)))

    def _provider_info(self, plugin: str) -> Provider:
        dist, version = self._origin.get(plugin, ("(unknown)", ""))
        return Provider(plugin=plugin, distribution=dist, version=version)

    # -- queries ---------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        """The component names of ``kind`` (a name that several plugins provide appears once)."""
        return sorted(self._offers[kind])

    def components(self, kind: str) -> list[Component]:
        """One component per name; of a name that several plugins provide, the first provider's
        (see :attr:`conflicts`)."""
        return [next(iter(self._offers[kind][n].values())) for n in self.names(kind)]

    def providers(self, kind: str, name: str) -> list[str]:
        """The plugins that provide ``kind`` ``name``, in the stable order (empty if none)."""
        return list(self._offers.get(kind, {}).get(name, {}))

    def provider(self, kind: str, name: str) -> str:
        """The plugin that provides ``name`` (``PLUGIN:NAME`` gives PLUGIN; a name that several
        plugins provide gives the first of them)."""
        if isinstance(name, str) and name not in self._offers[kind] and ":" in name:
            plugin, _, bare = name.partition(":")
            if plugin in self._offers[kind].get(bare, {}):
                return plugin
        providers = self.providers(kind, name)
        if not providers:
            raise KeyError((kind, name))
        return providers[0]

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``; ``PLUGIN:NAME`` picks the one plugin PLUGIN provides.

        Raises :class:`UnknownComponentError` for a name no plugin provides (with the choices) and
        :class:`AmbiguousComponentError` for a name several plugins provide, asked for without
        ``PLUGIN:``.
        """
        if kind not in self._offers:
            raise UnknownComponentError(f"unknown component kind {kind!r}; choices: {', '.join(hookspecs.KINDS)}{suggest(kind, hookspecs.KINDS)}")
        offers = self._offers[kind]
        if isinstance(name, str) and name in offers:
            by = offers[name]
            if len(by) > 1:
                conflict = Conflict(kind=kind, name=name, providers=tuple(self._provider_info(p) for p in by))
                raise AmbiguousComponentError(f"{conflict.situation()}; say which one with {conflict.choices()} "
                                              "(or uninstall one of them)")
            return next(iter(by.values()))
        if isinstance(name, str) and ":" in name:
            plugin, _, bare = name.partition(":")
            by = offers.get(bare, {})
            if plugin in by:
                return by[plugin]
            if by:
                raise UnknownComponentError(f"plugin {plugin!r} provides no {kind} {bare!r}; {kind} {bare!r} is provided by "
                                            f"{_and(repr(p) for p in by)}, so write {' or '.join(f'{p}:{bare}' for p in by)}"
                                            f"{suggest(plugin, by)}")
            if not self.manager.has_plugin(plugin):
                names = [n for n, _ in self.manager.list_name_plugin()]
                raise UnknownComponentError(f"unknown {kind} {name!r}: no plugin is named {plugin!r} (see mixframe plugins)"
                                            f"{suggest(plugin, names)}; {kind} choices: {', '.join(self.names(kind)) or '(none)'}")
        raise UnknownComponentError(self.unknown_message(kind, name))

    def unknown_message(self, kind: str, name: Any) -> str:
        msg = f"unknown {kind} {name!r}; choices: {', '.join(self.names(kind)) or '(none)'}{suggest(name, self.names(kind))}"
        if self.failures:
            msg += " (plugins that failed to load: " + "; ".join(f.describe() for f in self.failures) + ")"
        return msg

    def commands(self) -> dict[str, Command]:
        """The command-line sub-commands by name, sorted; of a name several plugins provide, the
        first provider's (built-ins first, then by plugin name; :meth:`warnings` says which)."""
        return {name: next(iter(by.values())) for name, by in sorted(self._commands.items())}

    def command_provider(self, name: str) -> str:
        """The plugin whose command ``name`` the command line runs."""
        return next(iter(self._commands[name]))

    def warnings(self) -> list[str]:
        """One line per plugin that failed to load (or whose hook failed) and per name that several
        plugins provide, each saying what happened and what to do; empty when all is well."""
        return [f"{f.describe()}; {f.advice()}" for f in self.failures] + [c.describe() for c in self.conflicts]

    def plugins(self) -> list[PluginInfo]:
        by_plugin: dict[str, list[tuple[str, str]]] = {}
        for kind in hookspecs.KINDS:
            for name, by in sorted(self._offers[kind].items()):
                for provider in by:
                    by_plugin.setdefault(provider, []).append((kind, name))
        commands: dict[str, list[str]] = {}
        for name, by in sorted(self._commands.items()):
            for provider in by:
                commands.setdefault(provider, []).append(name)
        infos = []
        for name, plugin in self.manager.list_name_plugin():
            dist, version = self._origin.get(name, ("(unknown)", ""))
            infos.append(PluginInfo(name=name, distribution=dist, version=version, module=getattr(plugin, "__name__", repr(plugin)),
                                    components=tuple(sorted(by_plugin.get(name, ()))), commands=tuple(commands.get(name, ()))))
        return sorted(infos, key=lambda p: p.name)


def _and(items: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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

