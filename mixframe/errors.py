"""Errors that carry a message for the user; the CLI prints them without a traceback."""

from __future__ import annotations

from collections.abc import Sequence


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
