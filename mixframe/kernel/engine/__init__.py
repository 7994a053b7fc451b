"""The training engine: a loop that raises events, the run folder's callbacks, and multi-process helpers."""

from mixframe.kernel.engine.loop import Trainer, TrainingDiverged, epoch_sampler

__all__ = ["Trainer", "TrainingDiverged", "epoch_sampler"]
