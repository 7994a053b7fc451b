"""The training engine: a loop that raises events, the run folder's callbacks, and multi-process helpers."""

from mixframe.engine.loop import EpochSampler, Trainer, TrainingDiverged

__all__ = ["EpochSampler", "Trainer", "TrainingDiverged"]
