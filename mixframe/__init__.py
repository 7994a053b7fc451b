"""mixframe: Adversarial Mixup Resynthesis and its baselines, assembled from plugins.

For experiments: :func:`train`, :func:`resume` and :func:`load_run` give a :class:`Run` (encode,
decode, mix, interpolate, evaluate, images in and out); :class:`RunFolder` reads and writes run
folders. For plugin authors: the ``hookimpl`` marker, the :class:`Component` and :class:`Command`
value objects, the component interfaces, the capability protocols and the config helpers.
See docs/api.md and CONTRIBUTING.md.

The names are imported on first use (PEP 562), so that ``import mixframe`` and the command line's
light commands (``--help``, ``plugins``, ``recipes``) do not wait for torch; ``from mixframe import
Mixer`` imports what it needs then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mixframe.errors import MixframeError

__version__ = "0.1.0"

# name -> the module that defines it
_HOMES = {
    **dict.fromkeys(("in_range", "param", "positive"), "mixframe.config"),
    "hookimpl": "mixframe.hookspecs",
    **dict.fromkeys(("BuildContext", "Callback", "DataBundle", "DataSpec", "Decoder", "Discriminator", "Encoder", "KnowsLineAngles",
                     "KnowsManifold", "Metric", "Mixer", "MixResult", "PredictsMasks", "Regularizer", "RendersFactors", "Step",
                     "blend", "Launcher", "LaunchContext", "RunTask"), "mixframe.interfaces"),
    **dict.fromkeys(("Command", "Component", "Provides", "Requires"), "mixframe.registry_types"),
    "RunFolder": "mixframe.runs",
    **dict.fromkeys(("Run", "load_run", "resume", "train"), "mixframe.api"),
}

__all__ = sorted([*_HOMES, "MixframeError"])


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mixframe' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from mixframe.api import Run, load_run, resume, train
    from mixframe.config import in_range, param, positive
    from mixframe.hookspecs import hookimpl
    from mixframe.interfaces import (BuildContext, Callback, DataBundle, DataSpec, Decoder, Discriminator, Encoder, KnowsLineAngles,
                                     KnowsManifold, LaunchContext, Launcher, Metric, Mixer, MixResult, PredictsMasks, Regularizer,
                                     RendersFactors, RunTask, Step, blend)
    from mixframe.registry_types import Command, Component, Provides, Requires
    from mixframe.runs import RunFolder
