"""The ``mixframe`` command line: parse, dispatch to a command plugin, print errors. Nothing else.

Every sub-command, the built-in ones included, arrives through the ``mixframe_commands`` hook. A
user's mistake (a bad recipe, a missing dataset folder, an unknown component) is reported as a
message and exit status 2, never as a Python traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mixframe.errors import MixframeError


def build_parser(registry: object) -> argparse.ArgumentParser:
    from mixframe import __version__

    parser = argparse.ArgumentParser(prog="mixframe", description="Adversarial Mixup Resynthesis and its baselines, assembled from plugins.")
    parser.add_argument("--version", action="version", version=f"mixframe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, command in registry.commands().items():  # type: ignore[attr-defined]
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = "mixframe"
    try:
        from mixframe.registry import get_registry

        registry = get_registry()
        for line in registry.warnings():
            print(f"mixframe: warning: {line}", file=sys.stderr)
        args = build_parser(registry).parse_args(argv)
        name = f"mixframe {args.command}"
        return registry.commands()[args.command].run(args)
    except MixframeError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
