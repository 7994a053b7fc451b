"""The supervised-AMR commands (``mixframe masks``, ``supervised-grid``, ``attribute-accuracy``), registered
from this light module: their arguments and their work live in :mod:`supervised <mixframe_plugins.commands.supervised>`,
which imports torch, and is imported only when one of them is chosen (``mixframe --help`` does not wait for it).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from mixframe import Command


def _from_supervised(name: str) -> Callable[[Any], Any]:
    """A function of the supervised module, imported when it is called."""

    def call(value: argparse.ArgumentParser | argparse.Namespace) -> Any:
        from mixframe_plugins.commands import supervised

        return getattr(supervised, name)(value)

    call.__name__ = call.__qualname__ = name
    return call


def masks() -> Command:
    return Command(name="masks", help="supervised AMR: the class mixer's masks p and sampled m per attribute combination (Figure 6)",
                   add_arguments=_from_supervised("masks_arguments"), run=_from_supervised("cmd_masks"))


def supervised_grid() -> Command:
    return Command(name="supervised-grid", help="supervised AMR: decoded mixes of test pairs aimed at every attribute combination",
                   add_arguments=_from_supervised("grid_arguments"), run=_from_supervised("cmd_supervised_grid"))


def attribute_accuracy() -> Command:
    return Command(name="attribute-accuracy",
                   help="supervised AMR: how often an attribute classifier reads y_mix in decoded mixes (see docs/supervised.md)",
                   add_arguments=_from_supervised("accuracy_arguments"), run=_from_supervised("cmd_attribute_accuracy"))
