"""Pictures during and after training: interpolation grids, the final grid and the loss curves.

Grids go to ``grids/epoch_NNNN.png`` every ``every`` epochs (for 2-D data, decoded mixes over real
points) and to TensorBoard's Images tab (``interpolation/grid``, by step); the last epoch's grid is
``grid.png`` (drawn once: not also in ``grids/``; a resume that trains on moves it there), and at the
end ``loss_curves.png`` is drawn from metrics.csv. In an image grid each row is x1, the decoded
interpolation, x2; the real x1 and x2 are framed in orange, the columns are labelled with the weight a
and a caption says what the rows are. A default callback: every recipe gets it unless it lists its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from mixframe import BuildContext, Callback, Component, RunFolder, hookimpl, param, positive
from mixframe.kernel.interfaces import RunFolderView, TrainerView


@attrs.frozen(kw_only=True)
class TrainingPicturesConfig:
    every: int = param(1, help="save an interpolation grid every this many epochs (and at the end)", validator=positive)
    pairs: int = param(8, help="pairs of validation examples in the grid, one row each", validator=positive)
    steps: int = param(8, help="decoded interpolants per row, ends included", validator=positive)


class TrainingPictures(Callback):
    """Draws the training grid on schedule, then grid.png and loss_curves.png (rank 0 of a run folder only)."""

    order = Callback.DRAW

    def __init__(self, config: TrainingPicturesConfig, context: BuildContext) -> None:
        self.config = config

    def on_start(self, trainer: TrainerView) -> None:
        if trainer.run is None:
            return
        final = trainer.run.file(RunFolder.GRID)
        if final.is_file() and not trainer.done:  # a finished run trained on: its last grid joins grids/
            earlier = trainer.run.file(RunFolder.GRIDS) / f"epoch_{trainer.epoch:04d}.png"
            earlier.parent.mkdir(exist_ok=True)
            final.replace(earlier)

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        if trainer.run is None or not (trainer.done or trainer.epoch % self.config.every == 0):
            return
        from mixframe.tools.pictures import save_training_grid

        path = trainer.run.file(RunFolder.GRID) if trainer.done else trainer.run.file(RunFolder.GRIDS) / f"epoch_{trainer.epoch:04d}.png"
        with trainer.model.evaluating():
            save_training_grid(trainer.model, trainer.data, path, trainer.device, pairs=self.config.pairs, steps=self.config.steps,
                               epoch=trainer.epoch)
        self.to_tensorboard(trainer.run, trainer.step, path)

    def to_tensorboard(self, run: RunFolderView, step: int, path: Path) -> None:
        """The grid just saved, in TensorBoard's Images tab at this step."""
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        writer = run.tensorboard()
        writer.add_image("interpolation/grid", pixels, step, dataformats="HWC")
        writer.flush()

    def on_end(self, trainer: TrainerView, summary: Mapping[str, float]) -> None:
        if trainer.run is None:
            return
        from mixframe.tools.pictures import plot_loss_curves

        plot_loss_curves(trainer.run.epoch_curves(), trainer.run.file(RunFolder.LOSS_CURVES), panels=trainer.panels)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="callback", name="training_pictures", implementation=TrainingPictures, config=TrainingPicturesConfig,
                      summary="interpolation grids during training (run folder and TensorBoard); grid.png and loss_curves.png at the end",
                      default=True)]
