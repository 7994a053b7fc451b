"""The library's messages on the terminal while a command runs."""

from __future__ import annotations

import logging
import sys


class _Terminal(logging.Handler):
    """The library's messages (the ``mixframe`` loggers', information and up) on stdout while a command runs, one per
    line as they were written; above a progress bar when one is drawn. Installed once; silent between commands."""

    active = False

    def shown(self) -> None:
        package = logging.getLogger("mixframe")
        if self not in package.handlers:
            package.addHandler(self)
        if package.level == logging.NOTSET:
            package.setLevel(logging.INFO)
        self.active = True

    def emit(self, record: logging.LogRecord) -> None:
        if not self.active or record.levelno < logging.INFO:
            return
        try:
            tqdm = sys.modules.get("tqdm")
            if tqdm is not None:
                tqdm.tqdm.write(record.getMessage(), file=sys.stdout)
            else:
                print(record.getMessage(), flush=True)
        except Exception:  # noqa: BLE001 - logging's rule: a handler never raises
            self.handleError(record)


TERMINAL = _Terminal()
