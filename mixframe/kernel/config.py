"""Helpers for component config classes, and the generic checker that fills them from YAML.

A config class is a frozen, keyword-only attrs class; each field says its type, default, validator
and help::

    @attrs.frozen(kw_only=True)
    class MixupConfig:
        per_channel: bool = param(False, help="one weight per example and channel")
        alpha_max: float = param(1.0, help="upper bound of the weight", validator=in_range(0, 1))

The checker never calls ``Config(**raw)``: it checks keys against ``attrs.fields`` first, converts
each value to its declared type, and runs each validator on its own, so that every problem is
reported with its key path.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

import attrs

from mixframe.errors import suggest

MISSING = attrs.NOTHING


def param(default: Any = MISSING, *, help: str, validator: Any = None, factory: Callable[[], Any] | None = None,
          path: Literal["folder", "file"] | None = None, relative_to: str | None = None) -> Any:
    """An attrs field with a help text (shown by ``mixframe explain``).

    ``path`` marks a folder or file on the user's disk: a relative value written in a recipe file is read
    from that file's folder (a ``--set`` value from the current folder) and recorded absolute, and
    ``mixframe recipe check`` checks that it exists and is a folder or a file. With ``relative_to`` (the
    name of another path field) a relative value is read from that field's folder instead, at use.
    """
    metadata = {"help": help, **({"path": path} if path else {}), **({"relative_to": relative_to} if relative_to else {})}
    if factory is not None:
        return attrs.field(factory=factory, validator=validator, metadata=metadata)
    return attrs.field(default=default, validator=validator, metadata=metadata)


def path_fields(cls: type) -> dict[str, attrs.Attribute[Any]]:
    """The fields of config class ``cls`` that name a folder or file (``param(path=...)``)."""
    return {f.name: f for f in attrs.fields(cls) if f.metadata.get("path")} if attrs.has(cls) else {}


def in_range(low: float | None = None, high: float | None = None) -> Callable[[Any, Any, Any], None]:
    """A validator: low <= value <= high (either bound may be None)."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = " and ".join(s for s in (f">= {low}" if low is not None else "", f"<= {high}" if high is not None else "") if s)
            raise ValueError(f"must be {bounds}, got {value!r}")

    return check


def positive(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A validator: value > 0."""
    if value is not None and value <= 0:
        raise ValueError(f"must be > 0, got {value!r}")


MAX_LEARNING_RATE = 10.0
"""Adam moves each weight by about the learning rate a step: above this, training cannot work."""


def learning_rate(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A validator: a learning rate, 0 < value <= MAX_LEARNING_RATE, that float32 holds as a non-zero number."""
    if value is None:
        return
    if not 0 < value <= MAX_LEARNING_RATE:
        raise ValueError(f"must be > 0 and <= {MAX_LEARNING_RATE:g} (Adam moves each weight by about this much a step), got {value!r}")
    if value < 1.2e-38:  # float32's smallest normal number: the optimizer's parameters are float32
        raise ValueError(f"must be at least 1.2e-38 (smaller becomes 0 in float32, so nothing would learn), got {value!r}")


def each_in_unit_interval(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A validator: every item in [0, 1) (Adam's betas: at 1 or more its moment estimates never settle, and it fails)."""
    if value is None:
        return
    bad = [v for v in value if not 0 <= v < 1]
    if bad:
        raise ValueError(f"each value must be >= 0 and < 1, got {list(value)!r}")


class Problems:
    """Problems found in a recipe, each with its key path; collected, then reported at once."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path or "(top level)", message))

    def __bool__(self) -> bool:
        return bool(self.items)


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str, problems: Problems) -> Any:
    """``value`` converted to ``tp``, or ``MISSING`` after recording a problem."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = MISSING
    if tp is Any:
        return value
    if origin is Literal:
        if value in args:
            return value
        choices = [str(a) for a in args]
        problems.add(path, f"must be one of {', '.join(repr(a) for a in args)}, got {value!r}{suggest(str(value), choices)}")
        return bad
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            trial = Problems()
            out = _convert(value, arg, path, trial)
            if not trial:
                return out
        problems.add(path, f"must be {type_name(tp)}, got {value!r}")
        return bad
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            problems.add(path, f"must be a list ({type_name(tp)}), got {value!r}")
            return bad
        if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
            problems.add(path, f"must have {len(args)} items ({type_name(tp)}), got {len(value)}")
            return bad
        if not args:
            item_types = [Any] * len(value)
        elif origin is tuple and args[-1] is not Ellipsis:
            item_types = list(args)
        else:
            item_types = [args[0]] * len(value)
        items = [_convert(v, t, f"{path}[{i}]", problems) for i, (v, t) in enumerate(zip(value, item_types))]
        return bad if any(i is MISSING for i in items) else origin(items)
    if origin is dict:
        if not isinstance(value, dict):
            problems.add(path, f"must be a mapping, got {value!r}")
            return bad
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if isinstance(value, str):  # a quoted number, "1e-4"
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            try:
                number = float(number)
            except OverflowError:
                number = math.inf
            if math.isfinite(number):
                return number
            problems.add(path, f"must be a finite number, got {value!r}")
            return bad
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        return value
    problems.add(path, f"must be {type_name(tp)}, got {value!r}")
    return bad


def structure(cls: type, raw: Any, path: str, problems: Problems, *, ignore: tuple[str, ...] = ()) -> Any:
    """An instance of attrs class ``cls`` from the mapping ``raw``, or None after recording problems."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.add(path, f"must be a mapping of {', '.join(f.name for f in attrs.fields(cls))}, got {raw!r}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    before = len(problems.items)
    for key in raw:
        if isinstance(key, bool):
            problems.add(_join(path, key), "a key read as a boolean: YAML 1.1 reads on/off/yes/no as true/false; quote the key, e.g. 'on':")
        elif key not in fields and key not in ignore:
            problems.add(_join(path, key), f"unknown key; valid keys: {', '.join(fields) or '(none)'}{suggest(str(key), fields)}")
    values: dict[str, Any] = {}
    for name, fld in fields.items():
        sub = _join(path, name)
        if name not in raw:
            if fld.default is MISSING:
                problems.add(sub, f"is required ({type_name(hints[name])}): {fld.metadata.get('help', '')}".rstrip(": "))
            continue
        value = _convert(raw[name], hints[name], sub, problems)
        if value is MISSING:
            continue
        if fld.validator is not None:
            try:
                fld.validator(None, fld, value)
            except (ValueError, TypeError) as err:
                problems.add(sub, _validator_message(err, name))
                continue
        values[name] = value
    if len(problems.items) > before:
        return None
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:  # a cross-field check in __attrs_post_init__
        problems.add(path, str(err))
        return None


def _validator_message(err: Exception, name: str) -> str:
    msg = str(err.args[0]) if err.args else str(err)
    return msg.replace(f"'{name}' ", "")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def unstructure(obj: Any) -> Any:
    """Plain YAML-ready data from an attrs instance (tuples become lists)."""
    if attrs.has(type(obj)):
        return {f.name: unstructure(getattr(obj, f.name)) for f in attrs.fields(type(obj))}
    if isinstance(obj, (list, tuple)):
        return [unstructure(v) for v in obj]
    if isinstance(obj, dict):
        return {k: unstructure(v) for k, v in obj.items()}
    return obj


def describe_fields(cls: type) -> list[dict[str, str]]:
    """Name, type, default and help of each field, for ``mixframe explain``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for fld in attrs.fields(cls):
        if fld.default is MISSING:
            default = "(required)"
        elif isinstance(fld.default, attrs.Factory):  # type: ignore[arg-type]
            default = repr(unstructure(fld.default.factory()))
        else:
            default = repr(unstructure(fld.default))
        rows.append({"name": fld.name, "type": type_name(hints[fld.name]), "default": default, "help": fld.metadata.get("help", "")})
    return rows
