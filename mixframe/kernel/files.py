"""The one guarded path for files a user hands us (recipes, run records, CSVs, dataset files).

Everything a user gives us is untrusted. It is read here, and only here, with these guards:

* **kind**: the path must name a regular file. Directories, named pipes (a FIFO would block
  forever), devices (``/dev/zero`` never ends) and sockets are refused after ``os.stat``; the file
  is then opened with ``O_NONBLOCK`` (opening a FIFO swapped in after the check cannot block) and
  checked again with ``os.fstat`` on the open descriptor.
* **size**: a file over ``max_bytes`` is refused from its size before it is read, and reading
  stops one byte past the limit (a file that grows while it is read is refused too).
* **encoding**: text is UTF-8 (a UTF-8 byte-order mark is dropped); UTF-16 and UTF-32 with a
  byte-order mark are decoded. Anything else is refused with the byte offset and line of the
  first undecodable byte. NUL characters are refused (binary files, UTF-16 without a mark).
* **structure** (YAML and JSON): plain data only (``yaml.SafeLoader``: no python tags, nothing is
  imported or run, nothing is ever unpickled); at most ``max_depth`` levels of nesting; at most
  ``max_nodes`` values counting every alias as the whole value it stands for (this defeats
  "billion laughs" alias bombs, which are small on disk and huge once expanded); no alias that
  refers to the value containing it (a recursive structure); lines of at most ``max_line_chars``
  characters (YAML); integers of at most :data:`MAX_INT_DIGITS` digits and floats that are finite
  when written as digits (``1e400`` would silently become infinity).

Every refusal is a :class:`UserFileError` (a :class:`~mixframe.errors.MixframeError`, printed by
the CLI without a traceback) that names the file, what is wrong (with a line, column or key path
where there is one) and how to fix it. Its ``problems`` are ``(where, message)`` pairs, so a
caller with its own error type (``RecipeError``) can re-raise them.

API::

    open_user_file(path, *, what, max_bytes) -> BinaryIO      # a checked, open binary file
    read_user_bytes(path, *, what, max_bytes) -> bytes
    read_user_text(path, *, what, max_bytes) -> str
    decode_user_text(data, path, *, what) -> str               # bytes already read (an archive member)
    open_user_image(path, *, what="image", max_pixels, max_bytes=MAX_IMAGE_BYTES, formats=IMAGE_FORMATS) -> PIL.Image.Image
    convert_image(img, mode, path, *, what="image") -> PIL.Image.Image  # 16-bit scaled, not clipped
    load_user_yaml(path, *, what, max_bytes=MAX_YAML_BYTES, ...) -> Any
    parse_user_yaml(text, *, source, what, ...) -> Any         # YAML already in memory
    load_user_json(path, *, what, max_bytes, max_depth=MAX_DEPTH) -> Any

``what`` names the kind of file in messages ("recipe", "attribute CSV", "run record").
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
import tempfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.composer import ComposerError
from yaml.nodes import Node, ScalarNode, SequenceNode

from mixframe.errors import MixframeError

MAX_YAML_BYTES = 1024 * 1024
"""A recipe is a few KB; 1 MiB is generous."""
MAX_DEPTH = 64
"""Levels of nesting of YAML/JSON values (a recipe uses four or five)."""
MAX_NODES = 20_000
"""Values in one YAML document, each alias counted as the whole value it repeats (a recipe holds a few hundred)."""
MAX_LINE_CHARS = 10_000
"""Characters in one line of a YAML file."""
MAX_INT_DIGITS = 100
"""Digits of one integer literal (an int64 has 19)."""

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable"),
    (b"\x80", "a Python pickle"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"\xfd7zXZ", "an xz archive"),
)
_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)


class UserFileError(MixframeError):
    """A file a user handed us is refused; ``problems`` holds ``(where, message)`` pairs."""

    def __init__(self, path: str | os.PathLike[str], what: str, problems: Sequence[tuple[str, str]]) -> None:
        self.path, self.what, self.problems = str(path), what, list(problems)
        if len(self.problems) == 1 and self.problems[0][0] == "(file)":
            text = f"{what} {self.path} {self.problems[0][1]}"
        else:
            lines = "\n  ".join(f"{where}: {msg}" for where, msg in self.problems)
            count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
            text = f"{what} {self.path} has {count}:\n  {lines}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (to and from worker processes) with its fields
        return (type(self), (self.path, self.what, self.problems))


def _a(noun: str) -> str:
    """``noun`` with its indefinite article."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _refuse(path: str | os.PathLike[str], what: str, message: str, where: str = "(file)") -> UserFileError:
    return UserFileError(path, what, [(where, message)])


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device (like /dev/zero)"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _check_stat(path: str | os.PathLike[str], what: str, st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, what, f"is {_kind(st.st_mode)}, not a regular file; give the path of {_a(what)} file "
                                  "(devices, pipes and folders are not read)")
    if st.st_size > max_bytes:
        raise _refuse(path, what, f"is {st.st_size:,} bytes, over the limit of {max_bytes:,} bytes for {_a(what)}; "
                                  "is it the right file?")


# O_NONBLOCK: opening a FIFO (swapped in after the stat) returns at once instead of waiting for a writer
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)


def open_user_file(path: str | os.PathLike[str], *, what: str, max_bytes: int) -> BinaryIO:
    """Open a user's regular file of at most ``max_bytes`` for reading bytes, without ever blocking.

    Refuses (with :class:`UserFileError`) a missing or unreadable path, anything but a regular
    file, and a file over ``max_bytes``. The caller closes the returned file (``with``).
    """
    try:
        _check_stat(path, what, os.stat(path), max_bytes)
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise _refuse(path, what, "not found; check the path") from None
    except OSError as err:
        raise _refuse(path, what, f"cannot be read: {err.strerror or err}") from None
    except ValueError:  # a NUL character in the path, or one the file system cannot encode
        raise _refuse(path, what, "is not a valid path (it contains a NUL character or cannot be encoded); check the path") from None
    try:
        _check_stat(path, what, os.fstat(fd), max_bytes)  # the path may have been swapped since os.stat
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_user_bytes(path: str | os.PathLike[str], *, what: str, max_bytes: int) -> bytes:
    """The whole content of a user's regular file of at most ``max_bytes`` (see :func:`open_user_file`)."""
    with open_user_file(path, what=what, max_bytes=max_bytes) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as err:
            raise _refuse(path, what, f"cannot be read: {err.strerror or err}") from None
    if len(data) > max_bytes:
        raise _refuse(path, what, f"is over the limit of {max_bytes:,} bytes for {_a(what)} (it grew while it was read); "
                                  "is it the right file?")
    return data


def _looks_like(data: bytes) -> str:
    name = next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)
    return f" (it looks like {name}, not text)" if name else ""


def decode_user_text(data: bytes, path: str | os.PathLike[str], *, what: str) -> str:
    """``data`` decoded as UTF-8 (or UTF-16/32 with a byte-order mark); NUL characters are refused."""
    encoding, label, body = "utf-8", "UTF-8", data
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            encoding, label, body = codec, name, data[len(bom):]
            break
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as err:
        offset = err.start + (len(data) - len(body))
        line = data[:offset].count(b"\n") + 1
        byte = body[err.start:err.start + 1].hex()
        raise _refuse(path, what, f"is not {label} text: the byte 0x{byte} at offset {offset} (line {line}) cannot be decoded"
                                  f"{_looks_like(data)}; {_a(what)} must be UTF-8 text (UTF-16 with a byte-order mark is "
                                  "accepted too): save it as UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise _refuse(path, what, f"contains a NUL character (line {line}, column {column}){_looks_like(data)}: it is not a "
                                  f"text file, or it is UTF-16 without a byte-order mark; {_a(what)} must be UTF-8 text")
    return text


def read_user_text(path: str | os.PathLike[str], *, what: str, max_bytes: int) -> str:
    """A user's text file: regular, at most ``max_bytes``, UTF-8 (or UTF-16/32 with a byte-order mark), no NUL.

    A leading byte-order mark is removed; line endings are left as they are.
    """
    return decode_user_text(read_user_bytes(path, what=what, max_bytes=max_bytes), path, what=what)


# ---------------------------------------------------------------- images

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF", "TIFF", "PPM")
"""Formats PIL may read from a user's image (no EPS: PIL hands it to Ghostscript)."""
MAX_IMAGE_BYTES = 256 * 1024 * 1024
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, IndexError, TypeError, MemoryError)


def _header_size(f: BinaryIO, formats: Sequence[str]) -> tuple[int, int] | None:
    """(width, height) from an image's header without PIL's decompression-bomb check, or None (for messages only)."""
    from PIL import Image

    try:
        Image.init()
        f.seek(0)
        prefix = f.read(16)
        for fmt in formats:
            factory, accept = Image.OPEN.get(fmt, (None, None))
            if factory is None or (accept is not None and not accept(prefix)):
                continue
            f.seek(0)
            try:
                return factory(f, "").size
            except Exception:  # noqa: BLE001 - try the next format
                continue
    except Exception:  # noqa: BLE001 - only a message depends on it
        return None
    return None


def open_user_image(path: str | os.PathLike[str], *, what: str = "image", max_pixels: int, max_bytes: int = MAX_IMAGE_BYTES,
                    formats: Sequence[str] = IMAGE_FORMATS, check_size: Callable[[tuple[int, int]], None] | None = None) -> Any:
    """A user's image, decoded (a ``PIL.Image.Image`` whose file is closed), within ``max_pixels`` and ``max_bytes``.

    The pixel size is read from the header (``Image.open`` is lazy) and checked against
    ``max_pixels`` before anything is decoded, so a 27 KB PNG that claims 15000x15000 pixels is
    refused at once (PIL's own decompression-bomb error becomes the same message); ``check_size``, given
    the header's (width, height), may refuse it too (ValueError: its message) before decoding. A file that
    is not an image in one of ``formats``, or is truncated or damaged, is a :class:`UserFileError`.
    """
    from PIL import Image, UnidentifiedImageError

    with open_user_file(path, what=what, max_bytes=max_bytes) as f:
        def too_big(size: tuple[int, int] | None, pixels: int | None = None) -> UserFileError:
            shown = f"{size[0]}x{size[1]} pixels ({size[0] * size[1]:,})" if size else f"{pixels:,} pixels" if pixels else "too large"
            return _refuse(path, what, f"is {shown}, over the limit of {max_pixels:,} pixels for {_a(what)} here; "
                                       "shrink it (it is resized to the model's size anyway) or remove it")

        try:
            img = Image.open(f, formats=list(formats))
        except Image.DecompressionBombError as err:
            found = re.search(r"\((\d+) pixels\)", str(err))
            raise too_big(_header_size(f, formats), int(found.group(1)) if found else None) from None
        except UnidentifiedImageError:
            raise _refuse(path, what, f"is not an image in a format read here ({', '.join(formats)}); replace or remove it") from None
        except _IMAGE_ERRORS as err:
            raise _refuse(path, what, f"is not an image that can be read ({type(err).__name__}: {err}); replace or remove it") from None
        width, height = img.size
        if width * height > max_pixels:
            raise too_big((width, height))
        if check_size is not None:  # what the caller makes of this size (a resize that keeps the aspect), before decoding
            try:
                check_size((width, height))
            except ValueError as err:
                raise _refuse(path, what, f"is {width}x{height} pixels: {err}") from None
        try:
            img.load()
        except (Image.DecompressionBombError, *_IMAGE_ERRORS) as err:
            raise _refuse(path, what, f"cannot be decoded ({type(err).__name__}: {err}): it is truncated or damaged; "
                                      "replace or remove it") from None
    return img


def convert_image(img: Any, mode: str, path: str | os.PathLike[str], *, what: str = "image") -> Any:
    """``img`` in ``mode`` ("L" or "RGB"), its values scaled rather than clipped: PIL's own ``convert`` clips a 16-bit
    image's 0..65535 to 0..255 (a 16-bit PNG would turn almost white). 16-bit and 32-bit integer images holding
    0..65535 are scaled by 255/65535; floating-point images, whose range is unknown, are refused with a message."""
    import numpy as np
    from PIL import Image

    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(img, dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise _refuse(path, what, f"is a 32-bit integer image with values from {values.min()} to {values.max()}, outside "
                                      "0..65535; save it as an 8- or 16-bit image")
        img = Image.fromarray(np.round(values * (255 / 65535)).astype(np.uint8), mode="L")
    elif img.mode == "F":
        raise _refuse(path, what, "is a floating-point image (mode F), whose value range is unknown; save it as an 8- or 16-bit image")
    return img if img.mode == mode else img.convert(mode)


# ---------------------------------------------------------------- YAML


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"


def _preview(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader with limits: nesting depth, expanded size (aliases count whole), numbers; problems are collected."""

    max_depth = MAX_DEPTH
    max_nodes = MAX_NODES
    what = "file"

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.problems: list[tuple[str, str]] = []
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values it stands for, once composed
        self._paths: dict[int, str] = {}  # id(node) -> key path where it was written
        self._stack: list[str] = []

    # -- composing: depth, size, recursion and key paths

    def _path_of(self, parent: Node | None, index: Any) -> str:
        here = self._stack[-1] if self._stack else ""
        if parent is None:
            return ""
        if isinstance(parent, SequenceNode):
            return f"{here}[{index}]"
        if index is None:
            return f"{here or '(top level)'} (a key)"
        key = _preview(str(index.value), 60) if isinstance(index, ScalarNode) else "?"
        return f"{here}.{key}" if here else key

    def _count(self, size: int, mark: Any) -> None:
        self._nodes += size
        if self._nodes > self.max_nodes:
            raise ComposerError(None, None, f"holds more than {self.max_nodes:,} values (each alias *name counted as the whole "
                                            f"value it repeats); {_a(self.what)} is far smaller: is it the right file? (or remove the "
                                            "repeated aliases)", mark)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise ComposerError(None, None, f"the alias *{event.anchor} refers to the value that contains it (a recursive "
                                                    f"structure); {_a(self.what)} is a plain tree of values", event.start_mark)
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if self._depth >= self.max_depth:
            raise ComposerError(None, None, f"values are nested more than {self.max_depth} levels deep; {_a(self.what)} is not "
                                            "nested that deeply: check the brackets and the indentation", mark)
        path = self._path_of(parent, index)
        before = self._nodes
        self._count(1, mark)
        self._depth += 1
        self._stack.append(path)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._stack.pop()
            self._depth -= 1
        self._sizes[id(node)] = self._nodes - before
        self._paths[id(node)] = path
        return node

    # -- constructing: numbers and values Python cannot build become problems, not exceptions

    def _problem(self, node: Node, message: str) -> None:
        where = self._paths.get(id(node)) or "(top level)"
        self.problems.append((where, f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}: {message}"))

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        old_deep = self.deep_construct
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError, KeyError, IndexError) as err:
            self.deep_construct = old_deep
            self.recursive_objects.pop(node, None)
            self.constructed_objects[node] = None
            tag = node.tag.rsplit(":", 1)[-1]
            value = _preview(str(node.value)) if isinstance(node, ScalarNode) else f"this {tag}"
            self._problem(node, f"{value!r} is not a valid {tag} ({err}); write a valid value or quote it to make it text")
            return None

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key, _ in node.value:
            if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    parent = self._paths.get(id(node)) or ""
                    where = f"{parent}.{_preview(key.value, 60)}" if parent else _preview(key.value, 60)
                    self.problems.append((where, f"line {key.start_mark.line + 1}: written twice (first on line {seen[key.value]}); "
                                                 "the second would silently replace the first: keep one"))
                seen.setdefault(key.value, key.start_mark.line + 1)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: ScalarNode) -> int | None:  # type: ignore[override]  # None: a problem recorded
        digits = sum(c.isalnum() for c in node.value)
        if digits > MAX_INT_DIGITS:
            self._problem(node, f"the integer {_preview(node.value)} has {digits:,} digits, more than the {MAX_INT_DIGITS} allowed; "
                                "write a smaller number (or quote it to make it text)")
            return None
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: ScalarNode) -> float | None:  # type: ignore[override]  # None: a problem recorded
        value = super().construct_yaml_float(node)
        spelled = node.value.lower().lstrip("+-")
        if not math.isfinite(value) and spelled not in (".inf", ".nan"):
            self._problem(node, f"the number {_preview(node.value)} is too large for a float (it would become infinity); "
                                "write a number below 1.8e308 (or .inf if you mean infinity)")
            return None
        return value


_GuardedLoader.add_constructor("tag:yaml.org,2002:int", _GuardedLoader.construct_yaml_int)
_GuardedLoader.add_constructor("tag:yaml.org,2002:float", _GuardedLoader.construct_yaml_float)
# YAML 1.2 floats (1e-4, 1e400, .5e3) are floats here too, not text that a later float() turns into inf.
_GuardedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_user_yaml(text: str, *, source: str, what: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
                    max_line_chars: int = MAX_LINE_CHARS) -> Any:
    """Plain data from YAML text a user wrote (``source`` names it in messages), within the limits above.

    Raises :class:`UserFileError` with every number problem at its key path, or the first syntax
    problem at its line and column.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > max_line_chars:
            message = f"is {len(line):,} characters long, over the limit of {max_line_chars:,}; break it up (YAML text can span lines)"
            raise UserFileError(source, what, [(f"line {number}", message)])
    loader: _GuardedLoader | None = None
    try:
        loader = type("Loader", (_GuardedLoader,), {"max_depth": max_depth, "max_nodes": max_nodes, "what": what})(text)
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        problem = err.problem or str(err)
        if err.context and problem == "second occurrence":  # a duplicate anchor
            problem = f"{err.context} at {_where(err.context_mark)}; anchors (&name) must be unique"
        elif err.context:
            problem = f"{err.context}: {problem}"
        if "could not determine a constructor" in problem:
            custom = "python tags are refused" if "python/" in problem else "custom tags (!name) are refused"
            problem += f" ({_a(what)} is plain data: {custom})"
        raise UserFileError(source, what, [(_where(err.problem_mark), problem)]) from None
    except yaml.reader.ReaderError as err:
        where = "(file)"
        if isinstance(err.position, int) and isinstance(err.character, int):
            line_number = text.count("\n", 0, err.position) + 1
            where = f"line {line_number}, column {err.position - (text.rfind(chr(10), 0, err.position) + 1) + 1}"
            problem = f"the character U+{err.character:04X} is not allowed in YAML text ({err.reason}); remove it"
        else:
            problem = str(err)
        raise UserFileError(source, what, [(where, problem)]) from None
    except yaml.YAMLError as err:
        raise UserFileError(source, what, [("(file)", str(err))]) from None
    except RecursionError:
        raise UserFileError(source, what, [("(file)", f"values are nested too deeply; {_a(what)} is not nested that deeply")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.problems:
        raise UserFileError(source, what, loader.problems)
    return data


def load_user_yaml(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_YAML_BYTES, max_depth: int = MAX_DEPTH,
                   max_nodes: int = MAX_NODES, max_line_chars: int = MAX_LINE_CHARS) -> Any:
    """Plain data from a user's YAML file, read through :func:`read_user_text` and :func:`parse_user_yaml`."""
    text = read_user_text(path, what=what, max_bytes=max_bytes)
    return parse_user_yaml(text, source=str(path), what=what, max_depth=max_depth, max_nodes=max_nodes, max_line_chars=max_line_chars)


# ---------------------------------------------------------------- JSON


class _NumberProblem(ValueError):
    def __init__(self, literal: str, message: str) -> None:
        super().__init__(message)
        self.literal = literal


def _json_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise _NumberProblem(literal, f"the integer {_preview(literal)} has {len(literal.lstrip('-')):,} digits, "
                                      f"more than the {MAX_INT_DIGITS} allowed")
    return int(literal)


def _json_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NumberProblem(literal, f"the number {_preview(literal)} is too large for a float (it would become infinity)")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` levels deep (walked without recursion)."""
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def load_user_json(path: str | os.PathLike[str], *, what: str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Plain data from a user's JSON file (run folders' ``run.json``, ``evaluation.json``), within the limits above.

    ``NaN`` and ``Infinity`` (which Python's ``json`` writes for such floats) are read back; a
    number written with digits that overflows to infinity, an integer of more than
    :data:`MAX_INT_DIGITS` digits, a syntax error (with its line and column) and nesting deeper
    than ``max_depth`` are refused with a :class:`UserFileError`.
    """
    text = read_user_text(path, what=what, max_bytes=max_bytes)
    try:
        data = json.loads(text, parse_int=_json_int, parse_float=_json_float)
    except _NumberProblem as err:
        at = text.find(err.literal)
        where = f"line {text.count(chr(10), 0, at) + 1}" if at >= 0 else "(file)"
        raise UserFileError(path, what, [(where, f"{err}; the file is damaged: restore or remove it")]) from None
    except json.JSONDecodeError as err:
        raise UserFileError(path, what, [(f"line {err.lineno}, column {err.colno}",
                                          f"is not valid JSON ({err.msg}); the file is damaged: restore or remove it")]) from None
    except (RecursionError, ValueError) as err:
        problem = "values are nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise UserFileError(path, what, [("(file)", f"{problem}; the file is damaged: restore or remove it")]) from None
    if _depth_over(data, max_depth):
        raise UserFileError(path, what, [("(file)", f"values are nested more than {max_depth} levels deep; "
                                                    "the file is damaged: restore or remove it")])
    return data


__all__ = [
    "IMAGE_FORMATS", "MAX_DEPTH", "MAX_IMAGE_BYTES", "MAX_INT_DIGITS", "MAX_LINE_CHARS", "MAX_NODES", "MAX_YAML_BYTES",
    "UserFileError", "convert_image", "decode_user_text", "load_user_json", "load_user_yaml", "open_user_file", "open_user_image", "parse_user_yaml",
    "read_user_bytes", "read_user_text",
]


# -- where output goes: checked before any work starts ----------------------------------------------------
def check_output_path(path: Path, *, folder: bool = False, option: str | None = "--out") -> Path:
    """``path`` can be written: a file (or, with ``folder``, a folder that receives new folders) whose
    place is not under a file, and whose nearest existing folder accepts new files (tried, so that a
    read-only file system and a root user's rights answer truly). Returns ``path``."""
    what = f"{option} {path}" if option else str(path)
    try:
        _check_output_path(path, folder, option, what)
    except OSError as err:  # a folder on the way that cannot be searched, say
        raise MixframeError(f"{what} cannot be written: {err.strerror or err}") from None
    return path


def _check_output_path(path: Path, folder: bool, option: str | None, what: str) -> None:
    if path.is_symlink() and not path.exists():
        raise MixframeError(f"{what} is a broken symbolic link (to {os.readlink(path)}); name another path")
    if path.exists():
        if folder and not path.is_dir():
            raise MixframeError(f"{what} is a file; {option or 'it'} names the folder that receives the new folders, "
                                "so name a folder (it is created when missing)")
        if not folder and path.is_dir():
            raise MixframeError(f"{what} is a folder; name a file to write (a new one, or one to replace)")
    existing = path if folder and path.is_dir() else path.parent
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise MixframeError(f"{what} is under {existing}, which is a file, not a folder; name a path in a folder")
    problem = _cannot_write(path) if (not folder and path.is_file()) else _cannot_create_in(existing)
    if problem:
        raise MixframeError(f"{what} cannot be written: {problem}")


def check_writable_folder(path: Path, what: str) -> None:
    """The existing folder ``path`` accepts new files (``what`` names what would be written there)."""
    problem = _cannot_create_in(path)
    if problem:
        raise MixframeError(f"cannot save {what}: {problem}")


def _cannot_create_in(folder: Path) -> str | None:
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".mixframe-write-check-")
    except OSError as err:
        return f"{folder} does not accept new files ({err.strerror or err})"
    os.close(fd)
    Path(name).unlink(missing_ok=True)
    return None


def _cannot_write(file: Path) -> str | None:
    try:
        with file.open("ab"):  # appends nothing: the file is unchanged
            pass
    except OSError as err:
        return f"{file} cannot be replaced ({err.strerror or err})"
    return _cannot_create_in(file.parent)
