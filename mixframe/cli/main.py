"""The ``mixframe`` command line: parse, dispatch to a command plugin, print errors. Nothing else.

Every sub-command, the built-in ones included, is an entry point of the group ``mixframe.commands``;
only the chosen command's module is imported (all of them for ``mixframe --help``, for their help
lines), and no component is loaded until a command asks for one. A user's mistake (a bad recipe, a missing dataset folder, an unknown component) is reported as a
message and exit status 2, never as a Python traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mixframe.errors import MixframeError

if TYPE_CHECKING:
    from mixframe.kernel.registry import Commands


def build_parser(commands: Commands, only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with ``only``, that command alone is imported and its arguments declared (the
    others are listed by name; ``""``: none is imported); without it, every command is imported for its help line
    (``mixframe --help``)."""
    from mixframe.version import __version__

    parser = argparse.ArgumentParser(prog="mixframe", description="Adversarial Mixup Resynthesis and its baselines, assembled from plugins.")
    parser.add_argument("--version", action="version", version=f"mixframe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in commands.names():
        command = commands.get(name) if only is None or name == only else None
        if only is None and command is None:
            continue  # failed to load: a warning says why
        command_parser = sub.add_parser(name, help=command.help if command else None, description=command.help if command else None)
        if command is not None and name == only:
            command.add_arguments(command_parser)
    return parser


def chosen_command(argv: Sequence[str], names: Sequence[str]) -> str | None:
    """The sub-command named in ``argv``: its first word that is not an option (the top-level options take no value)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in names else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = "mixframe"
    unwatch = None
    try:
        # imported here, once entry() has installed its SIGINT handler: a Ctrl-C during start-up is then one line
        from mixframe.kernel.registry import get_commands, watch_warnings

        # warnings as they are found: a clash of command names now, a plugin that fails when components load
        unwatch = watch_warnings(lambda line: print(f"mixframe: warning: {line}", file=sys.stderr))
        commands = get_commands()
        chosen = chosen_command(argv, commands.names())
        if chosen is None and not {"-h", "--help"} & set(argv):
            chosen = ""  # --version, or no command: no help lines needed
        args = build_parser(commands, only=chosen).parse_args(argv)
        name = f"mixframe {args.command}"
        from mixframe.cli.messages import TERMINAL  # here, not at the top: start-up imports as little as it can

        TERMINAL.shown()
        command = commands.get(args.command)
        if command is None:
            raise MixframeError(f"the command {args.command!r} failed to load (see the warning above)")
        try:
            return command.run(args)
        finally:
            TERMINAL.active = False  # one store: a Ctrl-C as the command ends finds nothing left to undo
    except MixframeError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:  # one line; once a run folder exists it says how to resume (api.RunInterrupted)
        print(f"{name}: {str(err) or 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if unwatch is not None:
            try:
                unwatch()
            except KeyboardInterrupt:  # a Ctrl-C this late changes nothing: the command has returned or failed already
                pass


WORK_DONE = False  # set by entry() once the command has returned: a late or deferred interrupt then changes nothing


def interrupt_unless_importing(signum: int, frame: object) -> None:
    """The program's SIGINT handler: KeyboardInterrupt, but never in the middle of a module's import. Raised into
    the Python code that torch's C++ start-up calls back, the exception cannot be caught there and the process
    aborts ("terminate called after throwing ... KeyboardInterrupt", killed by SIGABRT); so while any import is in
    progress the interrupt waits, looked at again every 50 ms, and arrives as soon as the import is over."""
    if WORK_DONE:
        return
    if any(getattr(getattr(module, "__spec__", None), "_initializing", False) for module in list(sys.modules.values())):
        signal.signal(signal.SIGALRM, interrupt_unless_importing)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    raise KeyboardInterrupt


def entry() -> None:
    """The ``mixframe`` program: run the command, then exit with its status. A Ctrl-C during an import waits for
    it to finish (see ``interrupt_unless_importing``); once the work is done a Ctrl-C during the interpreter's
    shutdown (torch's finalizers take a moment) is ignored, so that it cannot turn a finished command into a
    traceback or a killed-by-signal status."""
    if hasattr(signal, "setitimer") and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt_unless_importing)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # `kill`, a stopping sweep: like Ctrl-C, the run records how it ended
        signal.signal(signal.SIGTERM, interrupt_unless_importing)
    global WORK_DONE
    try:
        code = main()
    except KeyboardInterrupt:  # one that arrived between main's own handlers and its return
        print("mixframe: interrupted", file=sys.stderr)
        code = 130
    finally:  # also when argparse exits (--help, --version)
        WORK_DONE = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)  # a deferred interrupt's timer, if one is pending
    sys.exit(code)


if __name__ == "__main__":
    entry()
