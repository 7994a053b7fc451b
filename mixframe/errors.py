"""Errors that carry a message for the user; the CLI prints them without a traceback."""


class MixframeError(Exception):
    """A user-facing error: its message says what is wrong and how to fix it."""

    exit_code = 2
