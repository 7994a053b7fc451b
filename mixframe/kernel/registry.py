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

Loading happens in two phases, so that a command that needs no component (``mixframe --help``,
``mixframe plugins`` before it lists them) does not wait for torch: the constructor loads the
built-in command modules (entry points named ``commands-*``, which import nothing heavy at their
top level), every third-party plugin (in full: it may provide commands; keep your commands in a
light module with its own entry point) and the in-process and ``MIXFRAME_PLUGINS`` ones, and
gathers their commands. The other built-ins (mixers, networks, datasets, ...) load on the first
question about components, plugins, failures or conflicts; warnings found then reach the callback
given to :meth:`Registry.watch_warnings` at once. For a caller the registry behaves as if it had
loaded everything in its constructor.
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

from mixframe.errors import MixframeError
from mixframe.kernel import hookspecs
from mixframe.kernel.registry_types import Command, Component

ENTRY_POINT_GROUP = "mixframe"
BUILTIN_DISTRIBUTION = "mixframe"
COMMAND_ENTRY_POINTS = "commands-"
"""Built-in entry points with this prefix provide commands and import nothing heavy: they load first."""


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
        self._failures: list[LoadFailure] = []
        self._conflicts: list[Conflict] = []
        self._origin: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        # kind -> name -> plugin -> component, plugins in the stable order (built-ins first, then by name)
        self._offers: dict[str, dict[str, dict[str, Component]]] = {kind: {} for kind in hookspecs.KINDS}
        self._commands: dict[str, dict[str, Command]] = {}  # name -> plugin -> command, same order
        self._gathered: set[str] = set()  # plugins whose commands were gathered
        self._watchers: list[Callable[[str], None]] = []
        self._reported = 0  # warnings already handed to the watchers
        self._later: list[tuple[str, str, str, Any]] | None = None
        """Built-in entry points not loaded yet (None once everything is loaded)."""
        self._broken: PluginError | None = None
        self._load_entry_points()
        for module_name in filter(None, os.environ.get("MIXFRAME_PLUGINS", "").split(",")):
            self._load(module_name.strip(), "MIXFRAME_PLUGINS", "", lambda m=module_name.strip(): importlib.import_module(m))
        for name, plugin in plugins:
            self._register(name, plugin, "(in process)", "")
        self._check_pending()
        self._gather_commands()

    # -- what the first phase leaves for later ----------------------------------------------------
    @property
    def failures(self) -> list[LoadFailure]:
        """Plugins that failed to load, or whose hook failed (after loading everything)."""
        self._complete()
        return self._failures

    @property
    def conflicts(self) -> list[Conflict]:
        """Names that several plugins provide (components and commands), in a stable order (after loading everything)."""
        self._complete()
        return self._conflicts

    def _complete(self) -> None:
        """Load the built-ins left for later and gather every component (once; an invalid plugin is an error every time)."""
        if self._broken is not None:
            raise self._broken
        if self._later is None:
            return
        later, self._later = self._later, None
        for name, dist, version, loader in later:
            self._load(name, dist, version, loader)
        try:
            self._check_pending()
        except PluginError as err:
            self._broken = err
            raise
        self._gather_components()
        self._gather_commands()
        self._report()

    def watch_warnings(self, report: Callable[[str], None]) -> Callable[[], None]:
        """Call ``report(line)`` for every warning known now, and for each later one as soon as it is
        known (the command line prints them as they come, without loading what it does not need).
        Returns the function that stops the watch."""
        self._watchers.append(report)
        for line in self._warnings()[: self._reported]:
            report(line)
        self._report()
        return lambda: self._watchers.remove(report)

    def _report(self) -> None:
        lines = self._warnings()
        for line in lines[self._reported:]:
            for report in self._watchers:
                report(line)
        if self._watchers:
            self._reported = len(lines)

    # -- loading ---------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        """Load the first phase's entry points; keep the built-ins that are not ``commands-*`` in ``_later``."""
        seen: set[tuple[str, str]] = set()
        now, self._later = [], []
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.dist is None, e.name)):
            dist = ep.dist.name if ep.dist else "(unknown)"
            version = ep.dist.version if ep.dist else ""
            if (dist, ep.name) in seen:
                continue  # the same distribution seen twice on sys.path
            seen.add((dist, ep.name))
            if not self.autoload and dist != BUILTIN_DISTRIBUTION:
                continue
            later = dist == BUILTIN_DISTRIBUTION and not ep.name.startswith(COMMAND_ENTRY_POINTS)
            (self._later if later else now).append((ep.name, dist, version, ep.load))
        for name, dist, version, loader in now:
            self._load(name, dist, version, loader)

    def _load(self, name: str, dist: str, version: str, loader: Any) -> None:
        try:
            plugin = loader()
        except Exception as err:  # noqa: BLE001 - any import error must be reported, not raised
            self._failures.append(LoadFailure(name=name, distribution=dist, version=version, error=_one_line(err)))
            return
        self._register(name, plugin, dist, version)

    def _register(self, name: str, plugin: Any, dist: str, version: str) -> None:
        if self.manager.is_registered(plugin):
            return
        deferred = {entry[0]: entry[1] for entry in self._later or ()}  # built-ins not loaded yet keep their names
        if self.manager.has_plugin(name) or (name in deferred and dist != BUILTIN_DISTRIBUTION):
            # the same plugin name twice: keep the first (a built-in first), report the second
            taken = self._origin.get(name, (deferred.get(name, "(unknown)"), ""))[0]
            self._failures.append(LoadFailure(name=name, distribution=dist, version=version,
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
            raise PluginError(f"plugin {name!r} from {dist} is invalid: {err}; hooks are named "
                              f"{', '.join(_hook_name(k) for k in (*hookspecs.KINDS, 'command'))}") from None

    def _order(self, plugin: str) -> tuple[bool, str]:
        """The stable order of providers: built-ins first, then by plugin name."""
        return (self._origin.get(plugin, ("",))[0] != BUILTIN_DISTRIBUTION, plugin)

    def _call(self, hook: str, accept: Callable[[Any], bool], what: str, skip: set[str] = frozenset()) -> list[tuple[str, list[Any]]]:
        """Each plugin's checked answers to ``hook`` (but those in ``skip``), in the stable order; a broken answer is a failure."""
        out = []
        impls = [i for i in getattr(self.manager.hook, hook).get_hookimpls() if i.plugin_name not in skip]
        for impl in sorted(impls, key=lambda i: self._order(i.plugin_name)):
            provider = impl.plugin_name
            try:
                provided = list(impl.function() or ())
                for item in provided:
                    if not accept(item):
                        raise TypeError(f"{hook} must return {what}, got {item!r}")
            except Exception as err:  # noqa: BLE001 - a broken plugin must not stop the others
                dist, version = self._origin.get(provider, ("(unknown)", ""))
                self._failures.append(LoadFailure(name=provider, distribution=dist, version=version, error=_one_line(err), hook=hook))
                continue
            out.append((provider, provided))
        return out

    def _gather_components(self) -> None:
        for kind in hookspecs.KINDS:
            def accept(item: Any, kind: str = kind) -> bool:
                return isinstance(item, Component) and item.kind == kind

            for provider, provided in self._call(_hook_name(kind), accept, f"mixframe.Component objects of kind {kind!r}"):
                for comp in provided:
                    self._offers[kind].setdefault(comp.name, {}).setdefault(provider, comp)
        clashes = [(kind, name, list(by)) for kind in hookspecs.KINDS for name, by in sorted(self._offers[kind].items()) if len(by) > 1]
        for kind, name, plugins in clashes:
            self._conflicts.append(Conflict(kind=kind, name=name, providers=tuple(self._provider_info(p) for p in plugins)))

    def _gather_commands(self) -> None:
        """The commands of the plugins registered since the last call; a name that several plugins provide is a conflict."""
        gathered = self._call("mixframe_commands", lambda item: isinstance(item, Command), "mixframe.Command objects", skip=self._gathered)
        self._gathered |= {name for name, _ in self.manager.list_name_plugin()}
        fresh: set[str] = set()
        for provider, commands in gathered:
            for cmd in commands:
                self._commands.setdefault(cmd.name, {}).setdefault(provider, cmd)
                fresh.add(cmd.name)
        for name in sorted(fresh):
            by = self._commands[name]
            if len(by) > 1:
                self._commands[name] = dict(sorted(by.items(), key=lambda item: self._order(item[0])))
                self._conflicts = [c for c in self._conflicts if (c.kind, c.name) != ("command", name)]
                self._conflicts.append(Conflict(kind="command", name=name, providers=tuple(self._provider_info(p) for p in self._commands[name])))

    def _provider_info(self, plugin: str) -> Provider:
        dist, version = self._origin.get(plugin, ("(unknown)", ""))
        return Provider(plugin=plugin, distribution=dist, version=version)

    # -- queries ---------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        """The component names of ``kind`` (a name that several plugins provide appears once)."""
        self._complete()
        return sorted(self._offers[kind])

    def components(self, kind: str) -> list[Component]:
        """One component per name; of a name that several plugins provide, the first provider's
        (see :attr:`conflicts`)."""
        self._complete()
        return [next(iter(self._offers[kind][n].values())) for n in self.names(kind)]

    def providers(self, kind: str, name: str) -> list[str]:
        """The plugins that provide ``kind`` ``name``, in the stable order (empty if none)."""
        self._complete()
        return list(self._offers.get(kind, {}).get(name, {}))

    def provider(self, kind: str, name: str) -> str:
        """The plugin that provides ``name`` (``PLUGIN:NAME`` gives PLUGIN; a name that several
        plugins provide gives the first of them)."""
        self._complete()
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
        self._complete()
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
        self._complete()
        return self._warnings()

    def _warnings(self) -> list[str]:
        """The warnings known so far (without loading what is left for later)."""
        return [f"{f.describe()}; {f.advice()}" for f in self._failures] + [c.describe() for c in self._conflicts]

    def plugins(self) -> list[PluginInfo]:
        self._complete()
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

