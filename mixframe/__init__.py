"""mixframe: Adversarial Mixup Resynthesis and its baselines, assembled from plugins.

The public API for plugin authors: the ``hookimpl`` marker, the :class:`Component` value object,
the component interfaces and the config helpers.
"""

from mixframe.config import in_range, param, positive
from mixframe.errors import MixframeError
from mixframe.hookspecs import hookimpl
from mixframe.interfaces import (
    BuildContext,
    DataBundle,
    DataSpec,
    Decoder,
    Discriminator,
    Encoder,
    Metric,
    Mixer,
    MixResult,
    Regularizer,
    Step,
    TrainedRun,
)
from mixframe.registry_types import Component

__version__ = "0.1.0"

__all__ = [
    "BuildContext", "Component", "DataBundle", "DataSpec", "Decoder", "Discriminator", "Encoder", "Metric",
    "Mixer", "MixResult", "MixframeError", "Regularizer", "Step", "TrainedRun", "hookimpl", "in_range", "param", "positive",
]
