"""mixframe: Adversarial Mixup Resynthesis and its baselines, assembled from plugins.

For experiments: :func:`train`, :func:`resume` and :func:`load_run` give a :class:`Run` (encode,
decode, mix, interpolate, evaluate, images in and out); :class:`RunFolder` reads and writes run
folders. For plugin authors: the ``hookimpl`` marker, the :class:`Component` and :class:`Command`
value objects, the component interfaces, the capability protocols and the config helpers.
See docs/api.md and CONTRIBUTING.md.
"""

from mixframe.config import in_range, param, positive
from mixframe.errors import MixframeError
from mixframe.hookspecs import hookimpl
from mixframe.interfaces import (
    BuildContext,
    Callback,
    DataBundle,
    DataSpec,
    Decoder,
    Discriminator,
    Encoder,
    KnowsLineAngles,
    KnowsManifold,
    Metric,
    Mixer,
    MixResult,
    PredictsMasks,
    Regularizer,
    RendersFactors,
    Step,
    blend,
)
from mixframe.registry_types import Command, Component, Provides, Requires
from mixframe.runs import RunFolder
from mixframe.api import Run, load_run, resume, train  # noqa: E402 - after the names plugins import

__version__ = "0.1.0"

__all__ = [
    "BuildContext", "Callback", "Command", "Component", "DataBundle", "DataSpec", "Decoder", "Discriminator", "Encoder",
    "KnowsLineAngles", "KnowsManifold", "Metric", "Mixer", "MixResult", "MixframeError", "PredictsMasks", "Provides", "Regularizer", "Requires",
    "RendersFactors", "Run", "RunFolder", "Step", "blend", "hookimpl", "in_range", "load_run", "param", "positive", "resume", "train",
]
