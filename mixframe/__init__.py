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
from mixframe.version import __version__

# name -> the module that defines it
_HOMES = {
    **dict.fromkeys(("in_range", "param", "positive"), "mixframe.kernel.config"),
    "hookimpl": "mixframe.kernel.hookspecs",
    **dict.fromkeys(("BuildContext", "Callback", "DataBundle", "DataSpec", "Decoder", "Discriminator", "DrawsPanel", "Encoder",
                     "KnowsLineAngles", "KnowsManifold", "Metric", "Mixer", "MixResult", "PredictsMasks", "Regularizer", "RendersFactors",
                     "Step", "TrainerView", "blend", "Launcher", "LaunchContext", "RunTask", "RunView", "DataContext", "CriticSettings"),
                    "mixframe.kernel.interfaces"),
    **dict.fromkeys(("Command", "Component", "Provides", "Requires"), "mixframe.kernel.registry_types"),
    "RunFolder": "mixframe.runs.folder",
    **dict.fromkeys(("Run", "load_run", "resume", "train"), "mixframe.runs.api"),
    "study": "mixframe.tools.study",
    **dict.fromkeys(("results", "compare"), "mixframe.tools.results"),
}

# the documented tool modules, reachable as attributes (``mixframe.report.write_report``) and imported on first use
_MODULES = {"report": "mixframe.tools.report", "sweep": "mixframe.tools.sweep", "stats": "mixframe.tools.stats",
            "interpolate": "mixframe.tools.interpolate", "pictures": "mixframe.tools.pictures", "shipped": "mixframe.kernel.shipped",
            "evaluation": "mixframe.runs.evaluation", "testing": "mixframe.testing"}

__all__ = sorted([*_HOMES, "MixframeError", "__version__"])


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'mixframe' has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES, *_MODULES})


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from mixframe import testing
    from mixframe.kernel import shipped
    from mixframe.kernel.config import in_range, param, positive
    from mixframe.kernel.hookspecs import hookimpl
    from mixframe.kernel.interfaces import (
        BuildContext,
        Callback,
        CriticSettings,
        DataBundle,
        DataContext,
        DataSpec,
        Decoder,
        Discriminator,
        DrawsPanel,
        Encoder,
        KnowsLineAngles,
        KnowsManifold,
        LaunchContext,
        Launcher,
        Metric,
        Mixer,
        MixResult,
        PredictsMasks,
        Regularizer,
        RendersFactors,
        RunTask,
        RunView,
        Step,
        TrainerView,
        blend,
    )
    from mixframe.kernel.registry_types import Command, Component, Provides, Requires
    from mixframe.runs import evaluation
    from mixframe.runs.api import Run, load_run, resume, train
    from mixframe.runs.folder import RunFolder
    from mixframe.tools import interpolate, pictures, report, stats, sweep
    from mixframe.tools.results import compare, results
    from mixframe.tools.study import study
