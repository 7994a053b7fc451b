"""The ``mixframe`` command line: parse, dispatch to a command plugin, print errors. Nothing else.

Every sub-command, the built-in ones included, arrives through the ``mixframe_commands`` hook. A
user's mistake (a bad recipe, a missing dataset folder, an unknown component) is reported as a
message and exit status 2, never as a Python traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from mixframe.errors import MixframeError


def build_parser(registry: object, only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with ``only``, the arguments of that command alone are declared (none
    for ``""``; the others are listed with their help), so that ``mixframe --help`` imports no command's helpers."""
    from mixframe.version import __version__

    parser = argparse.ArgumentParser(prog="mixframe", description="Adversarial Mixup Resynthesis and its baselines, assembled from plugins.")
    parser.add_argument("--version", action="version", version=f"mixframe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, command in registry.commands().items():  # type: ignore[attr-defined]
        command_parser = sub.add_parser(name, help=command.help, description=command.help)
        if only is None or name == only:
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
        from mixframe.kernel.registry import get_registry

        registry = get_registry()
        # warnings now, and those found when the components load (only if the command asks for them)
        unwatch = registry.watch_warnings(lambda line: print(f"mixframe: warning: {line}", file=sys.stderr))
        commands = registry.commands()
        args = build_parser(registry, only=chosen_command(argv, list(commands)) or "").parse_args(argv)
        name = f"mixframe {args.command}"
        from mixframe.cli.messages import TERMINAL  # here, not at the top: start-up imports as little as it can

        TERMINAL.shown()
        try:
            return commands[args.command].run(args)
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
