"""The plugin manager: components from the ``mixframe`` entry-point group, commands from ``mixframe.commands``.

**Components.** :class:`Registry` loads every plugin in its constructor, in one phase: the entry
points of the group ``mixframe`` (each a module whose ``mixframe_components`` hook returns
:class:`~mixframe.Component` objects), the modules named in ``MIXFRAME_PLUGINS`` (comma separated)
and plugins given in process. Each is guarded: a plugin that fails to import (or whose hook raises)
is recorded with its distribution, version and error, and the others still load. A misspelt hook
implementation is an error. :meth:`Registry.build` is the one way to build a component:
``build(kind, name, params, context)``. The process-wide registry (:func:`get_registry`) is built on
first use, so that a command that needs no component never imports one.

**Commands.** A command is an entry point of the group ``mixframe.commands``: ``NAME =
"module:factory"``, the factory returning a :class:`~mixframe.Command`. :class:`Commands` reads the
names from the installed metadata without importing anything and imports a command's module only
when that command is asked for (``mixframe --help`` asks for every command's help line, so command
modules import nothing heavy at their top).

Two plugins that provide one component name (or two distributions one command name) do not stop
anything: the clash is recorded and reported as a warning, and only asking for that component fails,
with a message that names both providers. A recipe chooses one by writing ``kind: PLUGIN:NAME``
(PLUGIN as ``mixframe plugins`` lists it). Of two commands with one name, the first provider in a
stable order (built-ins first, then by distribution name) is the one the command line runs.

Autoload of third-party plugins and commands is switched off by
``MIXFRAME_DISABLE_PLUGIN_AUTOLOAD=1``; the built-ins (entry points of the ``mixframe`` distribution
itself) always load. Warnings reach the functions given to :func:`watch_warnings` as soon as they are
found (the command line prints them).
"""

from __future__ import annotations

import functools
import importlib
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from typing import Any

import attrs
import pluggy

from mixframe.errors import MixframeError, RecipeError, suggest
from mixframe.kernel import hookspecs
from mixframe.kernel.config import Problems, structure
from mixframe.kernel.registry_types import CAPABILITIES, KINDS, Command, Component

ENTRY_POINT_GROUP = "mixframe"
COMMAND_GROUP = "mixframe.commands"
BUILTIN_DISTRIBUTION = "mixframe"
HOOK = "mixframe_components"


class PluginError(MixframeError):
    """A plugin is broken in a way that makes the registry unusable (a misspelt or invalid hook)."""


class UnknownComponentError(MixframeError):
    """A component name that no plugin provides."""


class AmbiguousComponentError(MixframeError):
    """A component name that two or more plugins provide, asked for without saying which."""


@attrs.frozen(kw_only=True)
class PluginInfo:
    """One loaded plugin: ``components`` lists ``(kind, name)`` pairs (names it shares with another
    plugin included)."""

    name: str
    distribution: str
    version: str
    module: str
    components: tuple[tuple[str, str], ...] = ()


@attrs.frozen(kw_only=True)
class LoadFailure:
    """A plugin that failed to import, or whose hook ``hook`` raised or returned something wrong; or (``what``
    "command") a command whose module or factory failed."""

    name: str
    distribution: str
    version: str
    error: str
    hook: str = ""
    what: str = "plugin"

    def describe(self) -> str:
        origin = f"{self.distribution} {self.version}".strip()
        if self.hook:
            return f"{self.what} {self.name!r} from {origin}: its hook {self.hook} failed: {self.error}"
        return f"{self.what} {self.name!r} from {origin} failed to load: {self.error}"

    def advice(self) -> str:
        """What the user can do about it."""
        if self.what == "command":
            lost = f"'mixframe {self.name}' is"
        else:
            lost = f"what its {self.hook} hook provides is" if self.hook else "its components are"
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
            return (f"{self.situation()}; 'mixframe {self.name}' runs the one from {first.distribution} and the others are hidden; "
                    "uninstall the distributions you do not want, or ask their authors to rename the command")
        return (f"{self.situation()}; a recipe that uses it must say which, with {self.choices()}, "
                "or uninstall one of them (everything else works as usual)")


def autoload_default() -> bool:
    """Whether third-party plugins load: yes unless ``MIXFRAME_DISABLE_PLUGIN_AUTOLOAD`` is set (to anything but 0)."""
    return os.environ.get("MIXFRAME_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")


def _entry_points(group: str, autoload: bool) -> list[tuple[metadata.EntryPoint, str, str]]:
    """The entry points of ``group`` with their distribution and version, built-ins first, then by distribution
    and name; a distribution seen twice on sys.path counts once; third-party ones only with ``autoload``."""
    seen: set[tuple[str, str]] = set()
    out = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist.name if ep.dist else "(unknown)"
        version = ep.dist.version if ep.dist else ""
        if (dist, ep.name) in seen or (not autoload and dist != BUILTIN_DISTRIBUTION):
            continue
        seen.add((dist, ep.name))
        out.append((ep, dist, version))
    return sorted(out, key=lambda e: (e[1] != BUILTIN_DISTRIBUTION, e[1], e[0].name))


_watchers: list[Callable[[str], None]] = []


def watch_warnings(report: Callable[[str], None]) -> Callable[[], None]:
    """Call ``report(line)`` for every plugin warning from now on (load failures, name clashes), as soon as the
    registry or the command table finds it; returns the function that stops the watch."""
    _watchers.append(report)
    return lambda: _watchers.remove(report)


def _announce(lines: Iterable[str]) -> None:
    for line in lines:
        for report in list(_watchers):
            report(line)


class Registry:
    """All components of all loaded plugins, by kind and name; loaded in the constructor."""

    def __init__(self, *, autoload: bool | None = None, plugins: Sequence[tuple[str, Any]] = ()) -> None:
        self.autoload = autoload_default() if autoload is None else autoload
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.failures: list[LoadFailure] = []
        """Plugins that failed to load, or whose hook failed."""
        self.conflicts: list[Conflict] = []
        """Component names that several plugins provide, in a stable order."""
        self._origin: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        # kind -> name -> plugin -> component, plugins in the stable order (built-ins first, then by name)
        self._offers: dict[str, dict[str, dict[str, Component]]] = {kind: {} for kind in KINDS}
        for ep, dist, version in _entry_points(ENTRY_POINT_GROUP, self.autoload):
            self._load(ep.name, dist, version, ep.load)
        for module_name in filter(None, (m.strip() for m in os.environ.get("MIXFRAME_PLUGINS", "").split(","))):
            self._load(module_name, "MIXFRAME_PLUGINS", "", functools.partial(importlib.import_module, module_name))
        for name, plugin in plugins:
            self._register(name, plugin, "(in process)", "")
        self._check_pending()
        self._gather_components()
        _announce(self.warnings())

    # -- loading ---------------------------------------------------------------------------------
    def _load(self, name: str, dist: str, version: str, loader: Callable[[], Any]) -> None:
        try:
            plugin = loader()
        except Exception as err:  # noqa: BLE001 - any import error must be reported, not raised
            self.failures.append(LoadFailure(name=name, distribution=dist, version=version, error=_one_line(err)))
            return
        self._register(name, plugin, dist, version)

    def _register(self, name: str, plugin: Any, dist: str, version: str) -> None:
        if self.manager.is_registered(plugin):
            return
        if self.manager.has_plugin(name):
            # the same plugin name twice: keep the first (a built-in first), report the second
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

    def _check_pending(self) -> None:
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as err:
            name = self.manager.get_name(err.plugin) or repr(err.plugin)
            dist = self._origin.get(name, ("(unknown)",))[0]
            raise PluginError(f"plugin {name!r} from {dist} is invalid: {err}; the one hook is named {HOOK} "
                              "(commands are entry points of the group mixframe.commands)") from None

    def _order(self, plugin: str) -> tuple[bool, str]:
        """The stable order of providers: built-ins first, then by plugin name."""
        return (self._origin.get(plugin, ("",))[0] != BUILTIN_DISTRIBUTION, plugin)

    def _gather_components(self) -> None:
        """Each plugin's checked answer to the hook, in the stable order; a broken answer is a failure."""
        impls = self.manager.hook.mixframe_components.get_hookimpls()
        for impl in sorted(impls, key=lambda i: self._order(i.plugin_name)):
            provider = impl.plugin_name
            try:
                answer: Any = impl.function()
                provided = list(answer or ())
                for item in provided:
                    if not isinstance(item, Component):
                        raise TypeError(f"{HOOK} must return mixframe.Component objects, got {item!r}")
            except Exception as err:  # noqa: BLE001 - a broken plugin must not stop the others
                dist, version = self._origin.get(provider, ("(unknown)", ""))
                self.failures.append(LoadFailure(name=provider, distribution=dist, version=version, error=_one_line(err), hook=HOOK))
                continue
            for comp in provided:
                self._offers[comp.kind].setdefault(comp.name, {}).setdefault(provider, comp)
        for kind in KINDS:
            for name, by in sorted(self._offers[kind].items()):
                if len(by) > 1:
                    self.conflicts.append(Conflict(kind=kind, name=name, providers=tuple(self._provider_info(p) for p in by)))

    def _provider_info(self, plugin: str) -> Provider:
        dist, version = self._origin.get(plugin, ("(unknown)", ""))
        return Provider(plugin=plugin, distribution=dist, version=version)

    # -- building --------------------------------------------------------------------------------
    def build(self, kind: str, name: str, params: Any, context: Any) -> Any:
        """The component ``name`` of ``kind`` built as ``implementation(config, context)``: the one way to build one.

        ``params``: the recipe's parameters (a mapping, checked by the component's config class; every problem is
        reported at once as a RecipeError) or an instance of that config class (already checked, as a Recipe
        holds them). The built object is checked against its kind's interface and against the capabilities its
        component declares providing with this config: a plugin whose declaration is false fails here, by name.
        """
        comp = self.get(kind, name)
        if isinstance(params, comp.config):
            config = params
        else:
            problems = Problems()
            config = structure(comp.config, dict(params or {}), f"{kind} {name}", problems)
            if problems:
                raise RecipeError(f"{kind} {name}", problems.items)
        built = comp.implementation(config, context)
        from mixframe.kernel.interfaces import INTERFACES  # after a component is built torch is loaded; the registry stays light

        interface = INTERFACES[kind]
        if not isinstance(built, interface):
            raise MixframeError(f"{kind} {name!r} built a {type(built).__name__}, not a mixframe.{interface.__name__}; "
                                f"its implementation must {'return' if kind == 'dataset' else 'subclass'} one")
        for item in comp.provides or ():
            cap = CAPABILITIES.get(item.capability)
            if cap is not None and cap.kind == kind and item.checked and item.when(config) and cap.holds(built) is False:
                setting = f" with {item.setting}" if item.setting else ""
                raise MixframeError(f"{kind} {name!r} declares that it provides {item.capability} ({cap.meaning}){setting}, "
                                    f"but the {type(built).__name__} it built does not; a bug in its plugin ({self.provider(kind, name)})")
        return built

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
            raise UnknownComponentError(f"unknown component kind {kind!r}; choices: {', '.join(KINDS)}{suggest(kind, KINDS)}")
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

    def warnings(self) -> list[str]:
        """One line per plugin that failed to load (or whose hook failed) and per name that several
        plugins provide, each saying what happened and what to do; empty when all is well."""
        return [f"{f.describe()}; {f.advice()}" for f in self.failures] + [c.describe() for c in self.conflicts]

    def plugins(self) -> list[PluginInfo]:
        by_plugin: dict[str, list[tuple[str, str]]] = {}
        for kind in KINDS:
            for name, by in sorted(self._offers[kind].items()):
                for provider in by:
                    by_plugin.setdefault(provider, []).append((kind, name))
        infos = []
        for name, plugin in self.manager.list_name_plugin():
            dist, version = self._origin.get(name, ("(unknown)", ""))
            infos.append(PluginInfo(name=name, distribution=dist, version=version, module=getattr(plugin, "__name__", repr(plugin)),
                                    components=tuple(sorted(by_plugin.get(name, ())))))
        return sorted(infos, key=lambda p: p.name)


@attrs.frozen(kw_only=True)
class CommandEntry:
    """A command as its entry point declares it: where its factory is (``module:factory``) and who provides it."""

    name: str
    value: str
    provider: Provider
    load: Callable[[], Any]


class Commands:
    """The command line's sub-commands, from the ``mixframe.commands`` entry points; each command's module is
    imported only when that command is asked for (:meth:`get`), so listing names imports nothing."""

    def __init__(self, *, autoload: bool | None = None) -> None:
        self.autoload = autoload_default() if autoload is None else autoload
        self.failures: list[LoadFailure] = []
        self.conflicts: list[Conflict] = []
        self._entries: dict[str, list[CommandEntry]] = {}  # name -> providers in the stable order
        self._loaded: dict[str, Command] = {}
        for ep, dist, version in _entry_points(COMMAND_GROUP, self.autoload):
            provider = Provider(plugin=dist, distribution=dist, version=version)
            self._entries.setdefault(ep.name, []).append(CommandEntry(name=ep.name, value=ep.value, provider=provider, load=ep.load))
        for name, entries in sorted(self._entries.items()):
            if len(entries) > 1:
                self.conflicts.append(Conflict(kind="command", name=name, providers=tuple(e.provider for e in entries)))
        _announce(c.describe() for c in self.conflicts)

    def names(self) -> list[str]:
        """Every command's name, sorted (nothing is imported)."""
        return sorted(self._entries)

    def entry(self, name: str) -> CommandEntry:
        """The entry point the command line runs for ``name`` (of several, the first provider's)."""
        return self._entries[name][0]

    def get(self, name: str) -> Command | None:
        """The command ``name``, its module imported now; None when it failed to load (a warning says why)."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        try:
            factory = entry.load()
            command = factory()
            if not isinstance(command, Command) or command.name != name:
                raise TypeError(f"{entry.value} must return a mixframe.Command named {name!r}, got {command!r}")
        except Exception as err:  # noqa: BLE001 - a broken command must not stop the others
            failure = LoadFailure(name=name, distribution=entry.provider.distribution, version=entry.provider.version,
                                  error=_one_line(err), what="command")
            self.failures.append(failure)
            _announce([f"{failure.describe()}; {failure.advice()}"])
            return None
        self._loaded[name] = command
        return command

    def warnings(self) -> list[str]:
        """One line per command that failed to load and per name that several distributions provide."""
        return [f"{f.describe()}; {f.advice()}" for f in self.failures] + [c.describe() for c in self.conflicts]


def _and(items: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _one_line(err: BaseException) -> str:
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(err).__name__}: {err}{where}"


_default: Registry | None = None
_commands: Commands | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def get_commands() -> Commands:
    """The process-wide command table, read on first use."""
    global _commands
    if _commands is None:
        _commands = Commands()
    return _commands

