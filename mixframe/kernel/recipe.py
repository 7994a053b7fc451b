"""Recipes: YAML files that assemble an experiment from registered components.

A recipe is read with ``yaml.safe_load`` only. Components are named by ``kind:`` and looked up in
the registry (never by import path); each component's parameters are checked by its attrs config
class. Every problem is collected and reported at once, each with its key path, the valid choices
and a close-match suggestion.

Inheritance: ``extends: base.yaml`` (a path relative to the recipe, ``shipped:NAME`` for a recipe
shipped with mixframe, or a list of them, applied in order) merges the recipe over its base with
these rules:

* mappings merge key by key, recursively;
* lists and scalars replace the base's value whole (``regularizers`` is a list: restate it whole);
* a component section whose ``kind`` differs from the base's replaces the base's section whole
  (the other kind's parameters would not apply);
* ``null`` removes a section (``mixer: null`` turns mixing off).

Overrides ``--set a.b=value`` are applied after the merge; values are parsed as YAML; list items
are addressed by index (``regularizers.0.weight=2``); a key that does not exist is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import yaml

from mixframe.errors import MixframeError, RecipeError, suggest
from mixframe.kernel.config import (
    Problems,
    each_in_unit_interval,
    in_range,
    learning_rate,
    param,
    path_fields,
    positive,
    structure,
    unstructure,
)
from mixframe.kernel.registry import Registry, get_registry

SCHEMA_VERSION = 1


@attrs.frozen(kw_only=True)
class ReconstructionConfig:
    loss: Literal["l1", "l2", "bce"] = param("l1", help="reconstruction loss: l1, l2 (mean squared error) or bce (decoder outputs logits)")
    weight: float = param(1.0, help="lambda, the weight of the reconstruction loss", validator=in_range(0))


@attrs.frozen(kw_only=True)
class TrainConfig:
    epochs: int = param(20, help="passes over the training split", validator=positive)
    max_steps: int | None = param(None, help="stop after this many minibatches in all (for smoke tests)", validator=positive)
    batch_size: int = param(64, help="examples per minibatch (per process under torchrun)", validator=positive)
    lr: float = param(1e-4, help="Adam learning rate of the autoencoder (and mixer)", validator=learning_rate)
    critic_lr: float | None = param(None, help="Adam learning rate of critics; null means lr", validator=learning_rate)
    betas: tuple[float, float] = param((0.5, 0.99), help="Adam betas, each in [0, 1)", validator=each_in_unit_interval)
    weight_decay: float = param(1e-5, help="Adam weight decay", validator=in_range(0))
    update_g_every: int = param(1, help="update the autoencoder on one minibatch in this many; critics update on every one", validator=positive)
    order: Literal["critic_first", "autoencoder_first"] = param(
        "critic_first", help="on an autoencoder minibatch, step the critics before the autoencoder (critic_first) or after it "
                             "(autoencoder_first, as the authors' code does); both judge the same detached fakes")
    device: Literal["auto", "cpu", "cuda"] = param("auto", help="auto picks cuda when present")
    amp: bool = param(False, help="mixed precision (bfloat16 autocast) on CUDA")
    checkpoint_every: int = param(1, help="save a checkpoint every this many epochs (and at the end)", validator=positive)
    log_every: int = param(10, help="log scalars every this many minibatches", validator=positive)
    num_workers: int = param(0, help="DataLoader worker processes", validator=in_range(0))
    threads: int | None = param(None, help="CPU threads for torch (torch.set_num_threads); null: $MIXFRAME_THREADS when set, "
                                           "else torch's default (on a busy shared machine fewer threads are often faster)",
                                validator=positive)
    compile: bool = param(False, help="run the step's networks under torch.compile (slow to start; for long runs on a GPU)")
    compile_backend: str = param("inductor", help="torch.compile backend: inductor, or aot_eager to check that a model compiles")
    channels_last: bool | None = param(None, help="channels-last memory format for images; null: on for CUDA")


@attrs.frozen(kw_only=True)
class ComponentSpec:
    """A component section of a recipe: the registry kind, the chosen name and its checked config."""

    kind: str
    name: str
    config: Any
    off: bool = False  # a callback the recipe switches off ({kind: NAME, enabled: false}), a default one included

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.name, "enabled": False} if self.off else {"kind": self.name, **unstructure(self.config)}


@attrs.frozen(kw_only=True)
class Recipe:
    schema: int
    description: str
    seed: int
    data: ComponentSpec
    encoder: ComponentSpec
    decoder: ComponentSpec
    discriminator: ComponentSpec | None
    mixer: ComponentSpec | None
    regularizers: tuple[ComponentSpec, ...]
    metrics: tuple[ComponentSpec, ...]
    callbacks: tuple[ComponentSpec, ...]
    reconstruction: ReconstructionConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe: every default filled in; loading it gives this same recipe."""
        out: dict[str, Any] = {"schema": self.schema, "description": self.description, "seed": self.seed}
        for section in ("data", "encoder", "decoder", "discriminator", "mixer"):
            spec = getattr(self, section)
            out[section] = spec.to_dict() if spec is not None else None
        out["regularizers"] = [r.to_dict() for r in self.regularizers]
        out["metrics"] = [m.to_dict() for m in self.metrics]
        out["callbacks"] = [c.to_dict() for c in self.callbacks]
        out["reconstruction"] = unstructure(self.reconstruction)
        out["train"] = unstructure(self.train)
        return out

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())


# section name -> (registry kind, required)
COMPONENT_SECTIONS = {
    "data": ("dataset", True),
    "encoder": ("encoder", True),
    "decoder": ("decoder", True),
    "discriminator": ("discriminator", False),
    "mixer": ("mixer", False),
}
LIST_SECTIONS = {"regularizers": "regularizer", "metrics": "metric", "callbacks": "callback"}
PLAIN_SECTIONS = {"reconstruction": ReconstructionConfig, "train": TrainConfig}
SCALARS = {"schema", "description", "seed", "extends"}
TOP_LEVEL = [*SCALARS, *COMPONENT_SECTIONS, *LIST_SECTIONS, *PLAIN_SECTIONS]


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def read_yaml(path: Path) -> Any:
    """Parse one recipe file through the guarded path (:func:`mixframe.kernel.files.load_user_yaml`).

    Any refusal becomes a RecipeError and nothing runs: a missing file, a device, pipe or folder,
    a file over 1 MiB, text that is not UTF-8 (UTF-16 with a byte-order mark is accepted), a
    python tag, bad syntax (with its line and column), an alias bomb, deep nesting, overlong
    lines, and numbers Python cannot hold (each at its key path).
    """
    from mixframe.kernel.files import UserFileError, load_user_yaml

    try:
        return load_user_yaml(path, what="recipe")
    except UserFileError as err:
        raise RecipeError(str(path), err.problems) from None


def merge(base: Any, over: Any) -> Any:
    """Merge ``over`` onto ``base`` by the rules in the module docstring."""
    if isinstance(base, dict) and isinstance(over, dict):
        if over.get("kind", base.get("kind")) != base.get("kind"):
            return dict(over)
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base.get(key), value)
        return out
    return over


MAX_RECIPE_READS = 64
"""Recipe files read to resolve one recipe, its whole ``extends`` tree counted (a shipped recipe reads two or three): a
few small files that each extend the next several times over would otherwise be read exponentially many times."""


def resolve_file(path: Path, _seen: tuple[Path, ...] = (), _reads: list[int] | None = None, *, paths: bool = True) -> dict[str, Any]:
    """The recipe at ``path`` (or a shipped recipe's name, see :mod:`mixframe.kernel.shipped`) merged over its
    ``extends`` chain (not yet checked); at most :data:`MAX_RECIPE_READS` files are read in all."""
    from mixframe.kernel import shipped

    path = shipped.recipe_path(path)
    if path.resolve() in _seen:
        raise RecipeError(str(path), [("extends", "recipes extend each other in a cycle: " + " -> ".join(map(str, (*_seen, path))))])
    reads = [0] if _reads is None else _reads
    reads[0] += 1
    if reads[0] > MAX_RECIPE_READS:
        raise RecipeError(str(path), [("extends", f"resolving this recipe reads more than {MAX_RECIPE_READS} recipe files (its extends "
                                                  "lists fan out, each base read once for every recipe that extends it); "
                                                  "extend fewer files, or merge the bases into one")])
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError(str(path), [("(top level)", f"a recipe must be a mapping of sections ({', '.join(TOP_LEVEL)}), got {type(raw).__name__}")])
    bases = raw.pop("extends", None)
    if bases is None:
        return _absolute_paths(raw, raw, path.parent) if paths else raw
    listed = [bases] if isinstance(bases, str) else bases
    if not isinstance(listed, list) or not listed or not all(isinstance(b, str) and b for b in listed):
        raise RecipeError(str(path), [("extends", "must be a recipe file or a list of them (paths relative to this recipe, "
                                                  f"or shipped:NAME), got {bases!r}")])
    merged: dict[str, Any] = {}
    for base in listed:
        if base.startswith(shipped.PREFIX):
            try:
                base_path = shipped.path_of(base)
            except MixframeError as err:
                raise RecipeError(str(path), [("extends", str(err))]) from None
        else:
            base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
        if not base_path.exists():
            raise RecipeError(str(path), [("extends", f"base recipe {base_path} does not exist")])
        try:
            merged = merge(merged, resolve_file(base_path, (*_seen, path.resolve()), reads, paths=paths))
        except RecipeError as err:  # name the recipe that extends it, too
            raise RecipeError(str(path), [(f"extends {base}: {where}", problem) for where, problem in err.problems]) from None
    return _absolute_paths(merge(merged, raw), raw, path.parent) if paths else merge(merged, raw)


def _absolute_paths(resolved: dict[str, Any], written: dict[str, Any], folder: Path, registry: Registry | None = None) -> dict[str, Any]:
    """``resolved`` with each relative folder or file (``param(path=...)``) that ``written`` sets made absolute against
    ``folder``: a recipe's paths are read from the recipe's folder, as its ``extends`` are, whatever folder it is run from."""
    registry = registry or get_registry()
    sections = [(s, k) for s, (k, _) in COMPONENT_SECTIONS.items()] + list(LIST_SECTIONS.items())
    for section, kind in sections:
        got, wrote = resolved.get(section), written.get(section)
        pairs = zip(got, wrote) if isinstance(got, list) and isinstance(wrote, list) else [(got, wrote)]
        for item, own in pairs:
            if not (isinstance(item, dict) and isinstance(own, dict) and isinstance(item.get("kind"), str)):
                continue
            try:
                fields = path_fields(registry.get(kind, item["kind"]).config)
            except MixframeError:
                continue  # an unknown kind: check() says so
            for name, fld in fields.items():
                value = own.get(name)
                if isinstance(value, str) and value and not fld.metadata.get("relative_to"):
                    item[name] = str(absolute(value, folder))
    return resolved


def absolute(value: str, folder: Path) -> Path:
    """``value`` (a user's path, ``~`` allowed) made absolute against ``folder``, normalised."""
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else folder / path))


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise RecipeError("--set", [(text, "an override is written KEY.PATH=VALUE, for example train.epochs=5 or regularizers.0.weight=2")])
    from mixframe.kernel.files import UserFileError, parse_user_yaml

    key, value = text.split("=", 1)
    try:
        parsed = parse_user_yaml(value, source="--set", what="override") if value.strip() else None
    except UserFileError as err:
        raise RecipeError("--set", [(key.strip(), f"value {value!r}: {problem.split(': ', 1)[-1] if where == '(top level)' else problem}")
                                    for where, problem in err.problems]) from None
    return key.strip().split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str], registry: Registry) -> dict[str, Any]:
    """Apply ``--set`` overrides; a path that does not exist (or cannot exist) is an error."""
    problems = Problems()
    for text in overrides:
        keys, value = parse_override(text)
        node: Any = raw
        for depth, key in enumerate(keys):
            here = ".".join(keys[: depth + 1])
            last = depth == len(keys) - 1
            if isinstance(node, list):
                if not key.lstrip("-").isdigit() or not -len(node) <= int(key) < len(node):
                    problems.add(here, f"--set: {key!r} is not an index of this list of {len(node)} items")
                    break
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
                continue
            if not isinstance(node, dict):
                problems.add(here, f"--set: {'.'.join(keys[:depth])} is not a section")
                break
            valid = _valid_keys(keys[:depth], node, registry)
            if key not in node and key not in valid:
                problems.add(here, f"--set: no such key; valid keys here: {', '.join(sorted(valid)) or '(none)'}{suggest(key, valid)}")
                break
            if last:
                node[key] = value
            else:
                if node.get(key) is None:
                    node[key] = {}
                node = node[key]
    if problems:
        raise RecipeError("--set", problems.items)
    return raw


def _valid_keys(parents: list[str], node: dict[str, Any], registry: Registry) -> set[str]:
    """The keys a mapping at this position may hold, for checking override paths."""
    if not parents:
        return set(TOP_LEVEL)
    section = parents[0]
    if len(parents) == 1 and section in PLAIN_SECTIONS:
        return {f.name for f in attrs.fields(PLAIN_SECTIONS[section])}
    kind = COMPONENT_SECTIONS.get(section, (LIST_SECTIONS.get(section),))[0]
    if kind and "kind" in node:
        try:
            return {"kind", *(f.name for f in attrs.fields(registry.get(kind, node["kind"]).config))}
        except MixframeError:
            return {"kind"}
    return {"kind"} if kind else set()


def check(raw: Any, source: str = "recipe", registry: Registry | None = None) -> Recipe:
    """A checked :class:`Recipe` from resolved data, or a RecipeError listing every problem.

    Besides each section on its own, it checks that the components fit together: every need a
    component declares (``Component.requires``) must be met by what the others provide
    (``Component.provides``); see :func:`_check_needs`.
    """
    registry = registry or get_registry()
    problems = Problems()
    if not isinstance(raw, dict):
        raise RecipeError(source, [("(top level)", "a recipe must be a mapping")])
    for key in raw:
        if key not in TOP_LEVEL:
            problems.add(str(key), f"unknown section; valid sections: {', '.join(TOP_LEVEL)}{suggest(key, TOP_LEVEL)}")
    schema = raw.get("schema")
    if schema != SCHEMA_VERSION:
        problems.add("schema", f"must be {SCHEMA_VERSION} (the recipe format this mixframe reads), got {schema!r}; add 'schema: {SCHEMA_VERSION}'")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        problems.add("seed", f"must be an integer from 0 to 2**63 - 1, got {seed!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.add("description", f"must be text, got {description!r}")

    sections: dict[str, Any] = {}
    for section, (kind, required) in COMPONENT_SECTIONS.items():
        value = raw.get(section)
        if value is None:
            if required:
                problems.add(section, f"is required: a mapping with 'kind: NAME'; choices: {', '.join(registry.names(kind))}")
            sections[section] = None
            continue
        sections[section] = _component(kind, value, section, problems, registry)
    for section, kind in LIST_SECTIONS.items():
        value = raw.get(section) or []
        if not isinstance(value, list):
            problems.add(section, f"must be a list of mappings with 'kind: NAME', got {value!r}")
            value = []
        sections[section] = tuple(_component(kind, item, f"{section}[{i}]", problems, registry) for i, item in enumerate(value))
    sections["callbacks"] = (*sections["callbacks"], *_default_callbacks(sections["callbacks"], problems, registry))
    for section, cls in PLAIN_SECTIONS.items():
        sections[section] = structure(cls, raw.get(section), section, problems)
    _check_needs(sections, raw, problems, registry)
    if problems:
        raise RecipeError(source, problems.items)
    return Recipe(schema=SCHEMA_VERSION, description=description, seed=seed, **sections)


def reconstruction_needs(loss: str) -> tuple[Any, ...]:
    """What the recipe's reconstruction loss needs from its components (checked with the components' own needs)."""
    from mixframe.kernel.registry_types import Requires

    if loss == "bce":
        return (Requires("logits_decoder", "binary cross-entropy is computed on the decoder's logits"),
                Requires("unit_range", "binary cross-entropy needs targets in [0, 1]"))
    return (Requires("linear_decoder", f"{loss} compares the decoder's output with the data directly"),)


def _check_needs(sections: dict[str, Any], raw: dict[str, Any], problems: Problems, registry: Registry) -> None:
    """Report every need of a component (``Component.requires``) that no component of the recipe
    meets (``Component.provides``), at the needing component's key path.

    A need is taken as met, and not reported, when a component of the kind that would meet it
    declares nothing (``provides=None``, as third-party components may) or could not be checked
    (its own problem is reported). Only the first unmet need per component and providing kind is
    reported: a component lists its most specific needs first.
    """
    from mixframe.kernel.registry_types import CAPABILITIES

    placed, unknown = _placed_components(sections, raw, registry)
    offered: dict[str, set[str]] = {}
    for path, spec, comp in placed:
        if comp.provides is None:
            unknown.add(spec.kind)
            continue
        for item in comp.provides:
            if _holds(item.when, spec.config, path, spec.name, problems):
                offered.setdefault(spec.kind, set()).add(item.capability)
    needers = [(path, spec.name, spec.config, comp.requires) for path, spec, comp in placed]
    if sections.get("reconstruction") is not None:
        loss = sections["reconstruction"].loss
        needers.append(("reconstruction.loss", f"the {loss} loss", None, reconstruction_needs(loss)))
    for path, who, config, requires in needers:
        reported: set[str | None] = set()
        for need in requires:
            if config is not None and not _holds(need.when, config, path, who, problems):
                continue
            cap = CAPABILITIES.get(need.capability)
            kinds = [cap.kind] if cap else [spec.kind for _, spec, _ in placed]
            if any(k in unknown for k in kinds) or any(need.capability in offered.get(k, ()) for k in kinds):
                continue
            if (cap.kind if cap else None) in reported:
                continue
            reported.add(cap.kind if cap else None)
            problems.add(path, _unmet_message(who, need, placed, registry))


def _placed_components(sections: dict[str, Any], raw: dict[str, Any],
                       registry: Registry) -> tuple[list[tuple[str, ComponentSpec, Any]], set[str]]:
    """The recipe's checked components with their key paths and registry entries, and the kinds of
    those that could not be checked."""
    placed: list[tuple[str, ComponentSpec]] = []
    unknown: set[str] = set()
    for section, (kind, _) in COMPONENT_SECTIONS.items():
        if sections[section] is not None:
            placed.append((section, sections[section]))
        elif raw.get(section) is not None:
            unknown.add(kind)
    for section, kind in LIST_SECTIONS.items():
        written = raw.get(section) or []
        if not isinstance(written, list):
            unknown.add(kind)
            written = []
        for i, spec in enumerate(sections[section]):
            if spec is None:
                unknown.add(kind)
            else:
                placed.append((f"{section}[{i}]" if i < len(written) else f"{section} ({spec.name}, a default)", spec))
    return [(path, spec, registry.get(spec.kind, spec.name)) for path, spec in placed], unknown


def _holds(when: Any, config: Any, path: str, who: str, problems: Problems) -> bool:
    """``when(config)``; a plugin whose condition raises gets a problem instead of a traceback."""
    try:
        return bool(when(config))
    except Exception as err:  # noqa: BLE001 - a plugin's bug, reported with the recipe's problems
        problems.add(path, f"could not check what {who} needs or provides: {type(err).__name__}: {err} (a bug in its plugin)")
        return False


def _unmet_message(who: str, need: Any, placed: Sequence[tuple[str, ComponentSpec, Any]], registry: Registry) -> str:
    """'<who> needs <what> (<capability>), because <why>; <what the recipe has>; <what would do>'."""
    from mixframe.kernel.registry_types import CAPABILITIES, KINDS

    cap = CAPABILITIES.get(need.capability)
    what = f"{cap.meaning} ({need.capability})" if cap else f"a component that provides {need.capability!r}"
    because = f", because {need.why}" if need.why else ""
    kinds = [cap.kind] if cap else list(KINDS)
    have = [(spec, comp) for _, spec, comp in placed if spec.kind in kinds]
    if have:
        situation = "; ".join(_how_it_falls_short(spec, comp, need.capability) for spec, comp in have)
        if " only with " in situation:  # the recipe's own component would do, with another setting
            return f"{who} needs {what}{because}; {situation}"
    elif cap:
        section = next((s for s, (k, _) in COMPONENT_SECTIONS.items() if k == cap.kind), None)
        section = section or next((s for s, k in LIST_SECTIONS.items() if k == cap.kind), cap.kind)
        situation = f"the recipe has no '{section}:' section"
    else:
        situation = "no component of the recipe provides it"
    offers = []
    for kind in kinds:
        for comp in registry.components(kind):
            for item in comp.provides or ():
                if item.capability == need.capability:
                    offers.append(f"{comp.name} ({item.setting})" if item.setting else comp.name)
                    break
    noun = f"{cap.kind}s" if cap else "components"
    offer = f"{noun} that provide it: {', '.join(offers)}" if offers else f"no registered {noun[:-1]} provides it"
    return f"{who} needs {what}{because}; {situation}; {offer}"


def _how_it_falls_short(spec: ComponentSpec, comp: Any, capability: str) -> str:
    settings = [item.setting for item in comp.provides or () if item.capability == capability and item.setting]
    if settings:
        return f"the recipe's {spec.kind} {spec.name!r} provides it only with {' or '.join(settings)}"
    return f"the recipe's {spec.kind} {spec.name!r} does not provide it"


def _default_callbacks(named: Sequence[ComponentSpec | None], problems: Problems, registry: Registry) -> list[ComponentSpec]:
    """Callbacks registered as defaults that the recipe does not name, with their default configs."""
    listed = {registry.get("callback", spec.name).name for spec in named if spec is not None}  # PLUGIN:NAME counts as NAME
    out = []
    for comp in registry.components("callback"):
        if comp.default and comp.name not in listed:
            config = structure(comp.config, {}, f"callbacks ({comp.name}, a default)", problems)
            if config is not None:
                out.append(ComponentSpec(kind="callback", name=comp.name, config=config))
    return out


def _component(kind: str, value: Any, path: str, problems: Problems, registry: Registry) -> ComponentSpec | None:
    if not isinstance(value, dict):
        problems.add(path, f"must be a mapping with 'kind: NAME' (choices: {', '.join(registry.names(kind))}), got {value!r}")
        return None
    name = value.get("kind")
    if name is None:
        problems.add(f"{path}.kind", f"is required; choices: {', '.join(registry.names(kind))}")
        return None
    try:
        comp = registry.get(kind, name)
    except MixframeError as err:
        problems.add(f"{path}.kind", str(err))
        return None
    if kind == "callback" and "enabled" in value:
        enabled = value["enabled"]
        if not isinstance(enabled, bool) or (not enabled and set(value) != {"kind", "enabled"}):
            problems.add(f"{path}.enabled", f"must be false with no other setting beside 'kind' to switch {name!r} off, or true; "
                                            f"got {value!r}")
            return None
        if not enabled:
            return ComponentSpec(kind=kind, name=name, config=None, off=True)
        value = {k: v for k, v in value.items() if k != "enabled"}
    config = structure(comp.config, {k: v for k, v in value.items() if k != "kind"}, path, problems)
    if config is None:
        return None
    relative = {n: str(absolute(getattr(config, n), Path.cwd())) for n, f in path_fields(comp.config).items()
                if isinstance(getattr(config, n), str) and getattr(config, n) and not f.metadata.get("relative_to")}
    # a path still relative here came from --set (or a recipe built in Python): it is read from the current folder
    return ComponentSpec(kind=kind, name=name, config=attrs.evolve(config, **relative) if relative else config)


def path_problems(recipe: Recipe) -> list[tuple[str, str]]:
    """(key path, message) for each folder or file a recipe names (``param(path=...)``) that is missing or of the wrong kind.

    Not part of :func:`check`: a trained run loads without its data. ``mixframe recipe check`` reports these.
    """
    problems = []
    placed = [(s, getattr(recipe, s)) for s in COMPONENT_SECTIONS] + [
        (f"{s}.{i}", spec) for s in LIST_SECTIONS for i, spec in enumerate(getattr(recipe, s))]
    for where, spec in placed:
        if spec is None or spec.off:
            continue
        for name, fld in path_fields(type(spec.config)).items():
            value = getattr(spec.config, name)
            if not isinstance(value, str) or not value:
                continue
            base = fld.metadata.get("relative_to")
            path = Path(value).expanduser()
            if base and not path.is_absolute():
                anchor = getattr(spec.config, base)
                if not isinstance(anchor, str):
                    continue
                path = Path(anchor).expanduser() / path
            want = fld.metadata["path"]
            key = f"{where}.{name}"
            what = "the folder" if want == "folder" else "the file"
            if not path.exists():
                hint = f" (read from {where}.{base}, {getattr(spec.config, base)})" if base and not Path(value).is_absolute() else ""
                problems.append((key, f"{path} does not exist{hint}; put {what} there or set {key} to where it is (a relative path "
                                      "in a recipe file is read from the recipe's folder, one given with --set from the current folder)"))
            elif want == "folder" and not path.is_dir():
                problems.append((key, f"{path} is a file, not a folder; set {key} to the folder that holds the data (perhaps {path.parent})"))
            elif want == "file" and not path.is_file():
                problems.append((key, f"{path} is a folder, not a file; set {key} to the file itself"))
    return problems


def load_recipe(path: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None) -> Recipe:
    """Read, merge, override and check the recipe at ``path``."""
    registry = registry or get_registry()
    raw = resolve_file(Path(path))
    raw = apply_overrides(raw, overrides, registry)
    return check(raw, str(path), registry)


# -- a recipe of one's own, started from a shipped one ------------------------------------------------
def copy_shipped(name: str, dest: str | Path) -> Path:
    """Start your own recipe from the shipped ``name``: write it to ``dest`` (a .yaml file, or an existing
    folder that receives NAME.yaml), its ``extends`` chain merged in so that it stands alone, under a
    header that says where it came from. An existing file is never overwritten. Returns the new file."""
    from mixframe.kernel import shipped
    from mixframe.version import __version__

    source = shipped.path_of(name)
    bare = source.relative_to(shipped.root()).with_suffix("").as_posix()
    dest = Path(dest).expanduser()
    if dest.is_dir():
        dest = dest / f"{Path(bare).name}{shipped.SUFFIX}"
    elif dest.suffix not in (shipped.SUFFIX, ".yml"):
        raise MixframeError(f"{dest}: a recipe is a .yaml file (or give an existing folder, which receives {Path(bare).name}{shipped.SUFFIX})")
    merged = resolve_file(source, paths=False)  # a shipped recipe names no folders of its own; and copying waits for no plugin
    order = [key for key in SECTION_ORDER if key in merged] + [key for key in merged if key not in SECTION_ORDER]
    merged = {key: merged[key] for key in order}
    comments = _leading_comments(source.read_text(encoding="utf-8"))
    header = [f"# Started from the shipped recipe {bare} (mixframe {__version__}), its bases merged in: edit freely.",
              f"# `mixframe recipe show {dest.name} --resolved` lists every parameter with its default;",
              "# `mixframe explain KIND NAME` explains one component's parameters.", *(["#"] + comments if comments else [])]
    text = "\n".join(header) + "\n" + dump_yaml(merged)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("x", encoding="utf-8") as f:  # "x": refuse to replace a file that exists
            f.write(text)
    except FileExistsError:
        raise MixframeError(f"{dest} already exists; it is left as it is (choose another name, or delete it first)") from None
    except OSError as err:
        raise MixframeError(f"cannot write {dest}: {err.strerror or err}") from None
    return dest


SECTION_ORDER = ("schema", "description", "seed", "data", "encoder", "decoder", "discriminator", "mixer", "reconstruction",
                 "regularizers", "metrics", "callbacks", "train")


def _leading_comments(text: str) -> list[str]:
    """The comment lines at the top of a recipe file (its explanation)."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        out.append(line)
    return out
