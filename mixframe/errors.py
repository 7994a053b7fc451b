"""Errors that carry a message for the user; the CLI prints them without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class MixframeError(Exception):
    """A user-facing error: its message says what is wrong and how to fix it."""

    exit_code = 2


class RecipeError(MixframeError):
    """A recipe with problems; the message lists every one of them."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source, self.problems = source, list(problems)
        lines = [f"{path}: {msg}" for path, msg in self.problems]
        count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
        super().__init__(f"recipe {source} has {count}:\n  " + "\n  ".join(lines))


def close_names(name: str, choices: Iterable[str]) -> list[str]:
    """Up to two of ``choices`` that ``name`` looks like a misspelling of (or that differ from it only in case)."""
    name, choices = str(name), [str(c) for c in choices]
    close = difflib.get_close_matches(name, choices, n=2, cutoff=0.6)
    if not close:
        lower = {c.lower(): c for c in choices}
        close = [lower[name.lower()]] if name.lower() in lower else []
    return close


def suggest(name: str, choices: Iterable[str]) -> str:
    """A '; did you mean ...?' phrase to end a message about a misspelt ``name``, or an empty string."""
    close = close_names(name, choices)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
