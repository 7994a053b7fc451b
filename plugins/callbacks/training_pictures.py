"""Pictures during and after training: interpolation grids, the final grid and the loss curves.

Grids go to ``grids/epoch_NNNN.png`` every ``every`` epochs and at the end (for 2-D data, decoded
mixes over real points), and to TensorBoard's Images tab (``interpolation/grid``, by step); at the
end the last grid is copied to ``grid.png`` and ``loss_curves.png`` is drawn from metrics.csv. In an
image grid each row is x1, the decoded interpolation, x2; the real x1 and x2 are framed in orange.
A default callback: every recipe gets it unless it lists its own.
"""

from __future__ import annotations

import shutil
from typing import Any

import attrs

from mixframe import BuildContext, Callback, Component, RunFolder, hookimpl, param, positive


@attrs.frozen(kw_only=True)
class TrainingPicturesConfig:
    every: int = param(1, help="save an interpolation grid every this many epochs (and at the end)", validator=positive)
    pairs: int = param(8, help="pairs of validation examples in the grid, one row each", validator=positive)
    steps: int = param(8, help="decoded interpolants per row, ends included", validator=positive)


class TrainingPictures(Callback):
    """Draws the training grid on schedule, then grid.png and loss_curves.png (rank 0 of a run folder only)."""

    def __init__(self, config: TrainingPicturesConfig, context: BuildContext) -> None:
        self.config = config

    def on_epoch_end(self, trainer: Any, means: dict[str, float]) -> None:
        if trainer.run is None or not (trainer.done or trainer.epoch % self.config.every == 0):
            return
        from mixframe.tools.pictures import save_training_grid

        path = trainer.run.file(RunFolder.GRIDS) / f"epoch_{trainer.epoch:04d}.png"
        save_training_grid(trainer.model, trainer.data, path, trainer.device, pairs=self.config.pairs, steps=self.config.steps)
        trainer.model.train()
        self.to_tensorboard(trainer, path)

    def to_tensorboard(self, trainer: Any, path: Any) -> None:
        """The grid just saved, in TensorBoard's Images tab at this step."""
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        writer = trainer.run.tensorboard()
        writer.add_image("interpolation/grid", pixels, trainer.step, dataformats="HWC")
        writer.flush()

    def on_end(self, trainer: Any, summary: dict[str, float]) -> None:
        if trainer.run is None:
            return
        from mixframe.tools.pictures import plot_loss_curves

        plot_loss_curves(trainer.run.epoch_curves(), trainer.run.file(RunFolder.LOSS_CURVES))
        grids = sorted(trainer.run.file(RunFolder.GRIDS).glob("*.png"))
        if grids:
            shutil.copyfile(grids[-1], trainer.run.file(RunFolder.GRID))


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="callback", name="training_pictures", implementation=TrainingPictures, config=TrainingPicturesConfig,
                      summary="interpolation grids during training (run folder and TensorBoard); grid.png and loss_curves.png at the end",
                      default=True)]
